// The outputs of a serving capacity search (serving_plan.hpp): pools.csv (every pool run),
// plans.csv (every plan), summary.json, the Pareto chart of tokens/s per GPU against tokens/s per
// user, and report.md, which names the best plan and says why it wins.
#pragma once

#include "sim/planning/serving_plan.hpp"

#include <filesystem>
#include <string>

namespace clustersim {

// "disaggregated: 3 x prefill [layout={tp: 32, ...}] + 1 x decode [...]".
std::string describe_plan_row(const ServingPlanResult& result, const ServingPlanRow& row);

void write_serving_plan_outputs(const ServingPlanResult& result, const std::filesystem::path& out_dir);

}  // namespace clustersim
