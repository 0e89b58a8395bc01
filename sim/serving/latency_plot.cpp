// SVG empirical CDFs of latencies (see latency_plot.hpp).
#include "sim/serving/latency_plot.hpp"

#include "sim/core/trace_writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace clustersim {
namespace {

constexpr double kPanelWidth = 300, kPanelHeight = 220, kMarginLeft = 50, kMarginTop = 40, kMarginBottom = 40;
constexpr int kMaxPoints = 400;  // points drawn per curve; enough for a smooth line

// A round number at or above v for the axis end (1, 2 or 5 times a power of ten).
double nice_ceiling(double v) {
    if (!(v > 0)) return 1;
    const double p = std::pow(10.0, std::floor(std::log10(v)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= v) return m * p;
    return 10 * p;
}

std::string panel_svg(const LatencyPanel& panel, double x0) {
    std::string out;
    const double left = x0 + kMarginLeft, top = kMarginTop, width = kPanelWidth - kMarginLeft - 10,
                 height = kPanelHeight - kMarginTop - kMarginBottom;
    out += fmt::format("<text x=\"{:.1f}\" y=\"20\" font-size=\"13\" text-anchor=\"middle\">{} ({})</text>\n",
                       left + width / 2, json_escape(panel.title), json_escape(panel.unit));
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
        "stroke=\"#888\"/>\n",
        left, top, width, height);
    for (double q : {0.0, 0.5, 0.9, 1.0}) {
        const double y = top + height * (1 - q);
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"end\">{:.1f}</text>\n",
                           left - 4, y + 3, q);
        if (q > 0 && q < 1)
            out += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n",
                               left, y, left + width, y);
    }
    if (panel.values.empty()) {
        out +=
            fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">no samples</text>\n",
                        left + width / 2, top + height / 2);
        return out;
    }
    std::vector<double> v = panel.values;
    std::sort(v.begin(), v.end());
    const double x_max = nice_ceiling(v.back());
    for (int i = 0; i <= 4; ++i) {
        const double x = left + width * i / 4.0;
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\">{:g}</text>\n", x,
                           top + height + 14, x_max * i / 4.0);
    }
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"middle\">{} samples, "
        "p50 {:.3g}, p99 {:.3g}</text>\n",
        left + width / 2, top + height + 30, v.size(), v[(v.size() - 1) / 2],
        v[static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(v.size()))) - 1]);
    std::string points;
    const std::size_t n = v.size();
    const std::size_t step = std::max<std::size_t>(1, n / kMaxPoints);
    for (std::size_t i = 0; i < n; i += step) {
        const double x = left + width * v[i] / x_max;
        const double y = top + height * (1 - static_cast<double>(i + 1) / static_cast<double>(n));
        points += fmt::format("{:.1f},{:.1f} ", x, y);
    }
    points += fmt::format("{:.1f},{:.1f}", left + width * v.back() / x_max, top);
    out += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\"/>\n", points);
    return out;
}

}  // namespace

std::string latency_cdf_svg(const std::vector<LatencyPanel>& panels, const std::string& caption) {
    const double width = kPanelWidth * static_cast<double>(std::max<std::size_t>(1, panels.size()));
    const double height = kPanelHeight + 20;
    std::string out = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\">\n",
        width, height);
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (std::size_t i = 0; i < panels.size(); ++i) out += panel_svg(panels[i], kPanelWidth * static_cast<double>(i));
    out += fmt::format(
        "<text x=\"8\" y=\"{:.0f}\" font-size=\"10\" fill=\"#555\">cumulative share of requests; {}</text>\n",
        height - 6, json_escape(caption));
    out += "</svg>\n";
    return out;
}

}  // namespace clustersim
