// The work of one pipeline chunk (a stage's forward, backward or weight-gradient pass over one
// micro-batch) as a chain of steps on two GPU streams, and the execution of one or two such chains
// together: the compute stream runs kernels one at a time, the communication stream runs
// collectives (expert-parallel dispatch and combine, TP collectives) one at a time.
//
// A chain alternates compute segments (the kernels between two communication calls, back to back)
// and communication calls; each step waits for the previous step of its chain. Run alone, a chain
// takes the sum of its steps. Run as DualPipe's overlapped forward-and-backward pair, two chains
// share the two streams, so one chunk's all-to-all runs while the other chunk computes (DeepSeek-V3
// technical report section 3.2.1, Figure 4). The streams pick work greedily: whichever step of
// either chain can start first runs first (ties go to the forward chain, listed first), as
// DualPipe's hand-written interleaving of attention, MLP, dispatch and combine does.
#pragma once

#include "models/operator_graph.hpp"
#include "sim/core/units.hpp"

#include <string>
#include <vector>

namespace clustersim {

struct ChunkStep {
    bool communication = false;
    Time time;
    CommKind comm = CommKind::none;  // for communication steps
    std::string label;               // the first operator of a compute segment, or the collective's name
};

struct ChunkProgram {
    std::vector<ChunkStep> steps;
    Time compute_time() const;
    Time communication_time() const;
    // Communication time of expert-parallel dispatch and combine only.
    Time expert_communication_time() const;
};

// Appends `b` after `a` (a chain that runs one after the other).
ChunkProgram concatenate(const ChunkProgram& a, const ChunkProgram& b);

// One step as it ran.
struct ExecutedStep {
    int chain = 0;
    std::size_t index = 0;
    Time start;
    Time end;
};

struct OverlapResult {
    Time span;                 // from the first start to the last end
    Time compute;              // busy time of the compute stream
    Time communication;        // busy time of the communication stream
    Time hidden_communication;  // communication time during which the compute stream was busy
    Time expert_communication;  // of which EP dispatch/combine
    Time hidden_expert_communication;
    std::vector<ExecutedStep> steps;  // in execution order

    Time exposed_communication() const { return span - compute; }  // time the compute stream waited
};

// Runs `chains` (one or two, the forward chain first) on the two streams from time zero.
OverlapResult run_chains(const std::vector<const ChunkProgram*>& chains);

}  // namespace clustersim
