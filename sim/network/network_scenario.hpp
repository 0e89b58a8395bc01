// The `network` scenario kind: one collective, or one expert-parallel dispatch or combine, on a
// cluster topology; reports its time, algorithm and bus bandwidth, and for expert parallelism the
// logical bandwidth as DeepEP counts it.
#pragma once

#include "sim/scenario/scenario.hpp"

namespace clustersim {

std::unique_ptr<ScenarioRunner> load_network_scenario(MapReader& root, const ScenarioContext& context);

}  // namespace clustersim
