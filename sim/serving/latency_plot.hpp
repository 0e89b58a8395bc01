// An SVG of latency distributions (empirical CDFs of TTFT, TPOT and end-to-end time), for a run's
// results folder. Plain SVG text, no dependencies; panels side by side, each with its own axis.
#pragma once

#include <string>
#include <vector>

namespace clustersim {

struct LatencyPanel {
    std::string title;  // "TTFT"
    std::string unit;   // "ms"
    std::vector<double> values;
};

// One CDF per panel; empty panels say so. Deterministic text for the same input.
std::string latency_cdf_svg(const std::vector<LatencyPanel>& panels, const std::string& caption);

}  // namespace clustersim
