// The Pareto front of a sweep over two of its metrics (by default tokens/s/GPU against a second
// one), as a CSV of the front and an SVG chart drawn by gnuplot.
//
// The chart is a gnuplot script and its data beside the CSV, so it can be redrawn or restyled with
// `gnuplot pareto.gp` in the output folder; the SVG is drawn when gnuplot is on PATH.
#pragma once

#include "sim/planning/sweep_spec.hpp"
#include "sim/planning/sweep_table.hpp"

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace clustersim {

struct ParetoPoint {
    std::size_t plan = 0;
    double x = 0;
    double y = 0;
    bool on_front = false;
};

// The plans with status ok and both metrics, each marked whether no other plan is at least as good
// on both axes and better on one. In plan order.
std::vector<ParetoPoint> pareto_points(const std::vector<PlanRow>& rows, const ParetoSpec& pareto);

// What write_pareto_chart did.
struct ParetoChart {
    std::size_t points = 0;  // plans on the chart
    std::size_t front = 0;   // plans on the front
    bool drawn = false;      // pareto.svg was written
    std::string note;        // a sentence for the user: what was written, or why not
};

// Writes pareto.csv (the front's rows, best y first), pareto.dat and pareto.gp into `dir`, and
// pareto.svg when gnuplot is on PATH.
ParetoChart write_pareto_chart(const SweepSpec& spec, const std::vector<PlanRow>& rows,
                               const std::filesystem::path& dir);

}  // namespace clustersim
