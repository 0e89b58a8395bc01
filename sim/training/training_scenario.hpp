// The `training` scenario kind: one training step of a parallel plan (training_plan.hpp), simulated
// by training_step.hpp. Outputs: summary.json (step time, tokens/s/GPU, MFU with its convention,
// bubble and exposed-communication fractions, peak memory, GPU-hours per trillion tokens, the
// overlapped F&B pair of an MoE part), stages.csv (per pipeline rank), schedule.svg (the executed
// schedule) and, with --trace, trace.json (every rank of the replica).
#pragma once

#include "sim/scenario/scenario.hpp"

namespace clustersim {

std::unique_ptr<ScenarioRunner> load_training_scenario(MapReader& root, const ScenarioContext& context);

}  // namespace clustersim
