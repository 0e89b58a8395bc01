// The charts of a sweep (see sweep_charts.hpp).
#include "sim/planning/sweep_charts.hpp"

#include "sim/charts/gnuplot_chart.hpp"
#include "sim/planning/pareto_chart.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

// One throughput-latency chart: tokens/s/GPU against `x`.
struct LatencyAxis {
    const char* stem;
    const char* what;  // for titles and notes
    ParetoAxis x;
};

const std::vector<LatencyAxis>& latency_axes() {
    static const std::vector<LatencyAxis> axes = {
        {"throughput_latency", "TPOT p90", {"tpot_ms_p90", false}},
        {"throughput_ttft", "TTFT p90", {"ttft_ms_p90", false}},
        {"throughput_interactivity", "output tokens/s per request", {"output_tokens_per_s_per_request_mean", true}},
    };
    return axes;
}

const char* goal_text(const ParetoAxis& a) {
    return a.maximize ? "higher is better" : "lower is better";
}

}  // namespace

std::string plan_label(const SweepSpec& spec, std::size_t plan) {
    std::string values;
    for (const auto& cell : spec.plans[plan].cells)
        if (!cell.empty()) values += (values.empty() ? "" : ", ") + cell;
    std::string out = values.empty() ? std::to_string(plan) : std::to_string(plan) + ": " + values;
    // One line without tabs: labels are a column of tab-separated data files.
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return out;
}

ThroughputLatencyCharts write_throughput_latency_charts(const SweepSpec& spec, const std::vector<PlanRow>& rows,
                                                        const fs::path& dir) {
    ThroughputLatencyCharts charts;
    std::string varied;
    for (const auto& c : spec.columns) varied += (varied.empty() ? "" : ", ") + c;
    std::vector<std::string> failures;
    bool any = false;
    for (const LatencyAxis& axis : latency_axes()) {
        const ParetoSpec pareto{axis.x, {"tokens_per_s_per_gpu", true}};
        const std::vector<ParetoPoint> points = pareto_points(rows, pareto);
        if (points.empty()) continue;
        any = true;
        charts.points = std::max(charts.points, points.size());

        ChartSeries plans{"plans", {}, ChartStyle::points, "#9a9a9a"};
        std::vector<const ParetoPoint*> front;
        for (const auto& p : points) {
            plans.points.emplace_back(p.x, p.y);
            if (p.on_front) front.push_back(&p);
        }
        std::stable_sort(front.begin(), front.end(),
                         [](const ParetoPoint* a, const ParetoPoint* b) { return a->x < b->x; });
        ChartSpec chart;
        chart.title = fmt::format("{}: tokens/s/GPU against {}, {} plans, {} on the Pareto front\nlabels: plan: {}",
                                  spec.name, axis.what, points.size(), front.size(), varied.empty() ? "index" : varied);
        chart.x_label = fmt::format("{} ({})", axis.x.metric, goal_text(axis.x));
        chart.y_label = fmt::format("{} ({})", pareto.y.metric, goal_text(pareto.y));
        ChartSeries line{"Pareto front", {}, ChartStyle::linespoints, "#d62728"};
        for (const auto* p : front) {
            line.points.emplace_back(p->x, p->y);
            chart.labels.push_back({p->x, p->y, plan_label(spec, p->plan)});
        }
        chart.series = {std::move(plans), std::move(line)};
        const ChartFiles files = write_chart(dir, axis.stem, chart);
        if (files.drawn) {
            charts.written.push_back(std::string(axis.stem) + ".svg");
        } else {
            failures.push_back(files.note);
        }
    }
    if (!any) return charts;

    charts.note = fmt::format("Throughput against latency: {} plans", charts.points);
    if (!charts.written.empty()) {
        charts.note += fmt::format("; charts in {}:", dir.string());
        for (std::size_t i = 0; i < charts.written.size(); ++i)
            charts.note += (i == 0 ? " " : ", ") + charts.written[i];
    }
    if (!failures.empty()) {
        charts.note += "; " + failures.front();
        if (failures.size() > 1) charts.note += fmt::format(" (likewise for {} more charts)", failures.size() - 1);
    }
    return charts;
}

std::string write_sweep_charts(const SweepSpec& spec, const std::vector<PlanRow>& rows, const fs::path& dir) {
    std::string notes;
    const auto add = [&](const std::string& note) {
        if (!note.empty()) notes += (notes.empty() ? "" : "\n  ") + note;
    };
    if (spec.pareto) add(write_pareto_chart(spec, rows, dir).note);
    add(write_throughput_latency_charts(spec, rows, dir).note);
    return notes;
}

}  // namespace clustersim
