// Draws an executed pipeline schedule as SVG text.
#include "sim/pipeline/schedule_svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace clustersim {

namespace {

constexpr double kLabelWidth = 70;   // px left of the time axis, for "rank r"
constexpr double kPlotWidth = 1200;  // px for the makespan
constexpr double kRowHeight = 30;
constexpr double kBoxHeight = 24;
constexpr double kTop = 34;           // px above the first row, for the title
constexpr double kLegendWidth = 250;  // px per legend entry

// Fill colours per kind, [direction]: a light shade for the forward direction, a dark one for
// DualPipe's reverse direction.
struct Shade {
    const char* fill;
    const char* text;
};
constexpr std::array<std::array<Shade, 2>, 4> kShades{{
    {{{"#f9cb9c", "#000000"}, {"#e69138", "#ffffff"}}},  // forward
    {{{"#d5a6bd", "#000000"}, {"#a64d79", "#ffffff"}}},  // full backward (B and W)
    {{{"#b6d7a8", "#000000"}, {"#6aa84f", "#ffffff"}}},  // backward for input (B)
    {{{"#a4c2f4", "#000000"}, {"#3c78d8", "#ffffff"}}},  // backward for weights (W)
}};
constexpr std::array<const char*, 4> kKindNames{"F forward", "B+W full backward", "B input gradient",
                                                "W weight gradient"};

const Shade& shade(WorkKind kind, int direction) {
    return kShades[static_cast<std::size_t>(kind)][static_cast<std::size_t>(direction)];
}

std::string escape(std::string_view text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace

std::string pipeline_svg(const PipelineSchedule& schedule, const PipelineRun& run, const std::string& title) {
    // Micro-batch numbers within their direction: DualPipe's reverse direction counts from 0 again.
    std::vector<int> label(static_cast<std::size_t>(schedule.micro_batches));
    std::array<int, 2> seen{0, 0};
    for (int m = 0; m < schedule.micro_batches; ++m) {
        label[static_cast<std::size_t>(m)] =
            seen[static_cast<std::size_t>(schedule.direction[static_cast<std::size_t>(m)])]++;
    }
    // The darker shade: DualPipe's reverse direction, or the second (upward) half of DualPipeV's V.
    const auto dark = [&](const WorkItem& it) {
        if (schedule.kind == ScheduleKind::dualpipev) return it.stage >= schedule.ranks ? 1 : 0;
        return schedule.direction[static_cast<std::size_t>(it.micro_batch)];
    };

    const double span_ps = static_cast<double>(std::max<std::int64_t>(run.makespan.ps(), 1));
    const double scale = kPlotWidth / span_ps;
    const double legend_top = kTop + kRowHeight * schedule.ranks + 16;
    const double width = kLabelWidth + kPlotWidth + 20;

    // The body first: the picture's height depends on how many legend rows it needs.
    std::string svg;
    svg += fmt::format("<text x=\"{:.0f}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", kLabelWidth,
                       escape(title));
    for (int r = 0; r < schedule.ranks; ++r) {
        svg += fmt::format("<text class=\"rank\" x=\"6\" y=\"{:.1f}\">rank {}</text>\n",
                           kTop + kRowHeight * r + kBoxHeight / 2 + 4, r);
    }

    bool any_pair = false;
    std::array<std::array<bool, 2>, 4> used{};
    for (const ExecutedInstruction& e : run.timeline) {
        const double x = kLabelWidth + static_cast<double>((e.start - run.start).ps()) * scale;
        const double w = static_cast<double>((e.end - e.start).ps()) * scale;
        const double y = kTop + kRowHeight * e.rank;
        const auto n = static_cast<double>(e.instruction.items.size());
        for (std::size_t i = 0; i < e.instruction.items.size(); ++i) {
            const WorkItem& it = e.instruction.items[i];
            const int dir = dark(it);
            used[static_cast<std::size_t>(it.kind)][static_cast<std::size_t>(dir)] = true;
            const Shade& sh = shade(it.kind, dir);
            const double bx = x + w * static_cast<double>(i) / n;
            const double bw = w / n;
            svg += fmt::format("<g><title>rank {} {} micro-batch {} stage {}</title>\n", e.rank, to_string(it.kind),
                               it.micro_batch, it.stage);
            svg += fmt::format(
                "<rect class=\"item\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\" "
                "stroke=\"#666666\" stroke-width=\"0.5\"/>\n",
                bx, y, bw, kBoxHeight, sh.fill);
            svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.1f}\" fill=\"{}\" text-anchor=\"middle\">{}</text>\n",
                               bx + bw / 2, y + kBoxHeight / 2 + 4, sh.text,
                               label[static_cast<std::size_t>(it.micro_batch)]);
            svg += "</g>\n";
        }
        if (e.instruction.items.size() > 1) {
            any_pair = true;
            svg += fmt::format(
                "<rect class=\"pair\" x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"none\" "
                "stroke=\"#000000\" stroke-width=\"2\"/>\n",
                x, y, w, kBoxHeight);
        }
    }

    // Legend: the kinds and shades that appear, in a fixed order.
    double lx = kLabelWidth;
    double ly = legend_top;
    const auto entry = [&](const char* fill, const char* stroke, double stroke_width, const std::string& text) {
        if (lx + kLegendWidth > kLabelWidth + kPlotWidth) {
            lx = kLabelWidth;
            ly += kRowHeight;
        }
        svg += fmt::format(
            "<rect class=\"legend\" x=\"{:.0f}\" y=\"{:.0f}\" width=\"18\" height=\"16\" fill=\"{}\" "
            "stroke=\"{}\" stroke-width=\"{}\"/>\n",
            lx, ly, fill, stroke, stroke_width);
        svg += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\">{}</text>\n", lx + 24, ly + 12, escape(text));
        lx += kLegendWidth;
    };
    const bool v_shape = schedule.kind == ScheduleKind::dualpipev;
    const bool two_directions =
        std::any_of(schedule.direction.begin(), schedule.direction.end(), [](int d) { return d != 0; });
    for (std::size_t k = 0; k < kShades.size(); ++k) {
        for (std::size_t d = 0; d < 2; ++d) {
            if (!used[k][d]) continue;
            std::string text = kKindNames[k];
            if (two_directions) text += d == 0 ? ", forward direction" : ", reverse direction";
            if (v_shape) text += d == 0 ? ", down the V" : ", back up the V";
            entry(kShades[k][d].fill, "#666666", 0.5, text);
        }
    }
    if (any_pair) entry("none", "#000000", 2, "overlapped F&B pair");
    const double height = ly + kRowHeight + 10;
    std::string out = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
        "font-family=\"sans-serif\" font-size=\"11\">\n",
        width, height, width, height);
    out += fmt::format("<title>{}</title>\n", escape(title));
    out += fmt::format(
        "<rect class=\"background\" x=\"0\" y=\"0\" width=\"{:.0f}\" height=\"{:.0f}\" fill=\"#ffffff\"/>\n", width,
        height);
    out += svg;
    out += "</svg>\n";
    return out;
}

}  // namespace clustersim
