// Shared helpers of the pipeline tests: an environment with fixed chunk times and transfer latency.
#pragma once

#include "sim/pipeline/fixed_chunk_times.hpp"

#include <vector>

namespace clustersim::test {

using clustersim::FixedPipelineEnvironment;

// Runs `schedule` on a fresh simulator with fixed times.
inline PipelineRun run_fixed(const PipelineSchedule& schedule, int f, int b, int w, int f_and_b,
                             const PipelineRunOptions& options = {}) {
    Simulator sim;
    FixedPipelineEnvironment env(f, b, w, f_and_b);
    return run_pipeline(sim, schedule, env, options);
}

}  // namespace clustersim::test
