// The `serving` scenario kind: a deployment (colocated or disaggregated pools of instances, each
// with its parallel layout, batching limits and KV cache) under a request workload (synthetic or a
// replayed trace), simulated request by request; writes summary.json, requests.csv, iterations.csv
// and, on request, trace.json. The file format is documented in sim/serving/README.md.
#pragma once

#include "sim/scenario/scenario.hpp"

namespace clustersim {

std::unique_ptr<ScenarioRunner> load_serving_scenario(MapReader& root, const ScenarioContext& context);

}  // namespace clustersim
