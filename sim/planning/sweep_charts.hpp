// The charts of a sweep: the Pareto chart of its `pareto` section (pareto_chart.hpp) and, when its
// plans are serving plans, throughput per GPU against latency, each drawn by gnuplot
// (sim/charts/gnuplot_chart.hpp) into the sweep's output folder.
#pragma once

#include "sim/planning/sweep_spec.hpp"
#include "sim/planning/sweep_table.hpp"

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace clustersim {

// "9: dualpipe, 1, 16": a plan's index and its varied values, to label a point of a chart.
std::string plan_label(const SweepSpec& spec, std::size_t plan);

// What write_throughput_latency_charts did.
struct ThroughputLatencyCharts {
    std::size_t points = 0;            // plans on the charts (status ok, with tokens_per_s_per_gpu)
    std::vector<std::string> written;  // the SVGs drawn: throughput_latency.svg, ...
    std::string note;                  // a sentence for the user; empty when the rows have no serving metrics
};

// Tokens/s/GPU (`tokens_per_s_per_gpu`, higher is better) of every plan with status ok against
// - throughput_latency.svg: `tpot_ms_p90` (time per output token, lower is better),
// - throughput_ttft.svg: `ttft_ms_p90` (time to first token, lower is better),
// - throughput_interactivity.svg: `output_tokens_per_s_per_request_mean` (higher is better),
// each with its Pareto front as a line through labelled points, written with write_chart (so each
// has its .dat and .gp beside it). A chart is written when some plan has both of its metrics: the
// metrics a `serving` scenario's summary has; sweeps of other kinds get none and an empty note.
ThroughputLatencyCharts write_throughput_latency_charts(const SweepSpec& spec, const std::vector<PlanRow>& rows,
                                                        const std::filesystem::path& dir);

// Every chart of a sweep: the Pareto chart when the sweep has a `pareto` section, then the
// throughput-latency charts. Their notes, one line each; lines after the first are indented by two
// spaces, as `clustersim sweep` prints the first; empty when no chart applies.
std::string write_sweep_charts(const SweepSpec& spec, const std::vector<PlanRow>& rows,
                               const std::filesystem::path& dir);

}  // namespace clustersim
