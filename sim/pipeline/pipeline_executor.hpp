// Runs a pipeline schedule's instruction streams on the event engine and measures makespan, per-rank
// busy time and bubble, and peak in-flight activations.
//
// Model (README.md in this folder has the details and sources):
//   - each rank has one compute stream and issues its instructions strictly in order, one at a time;
//     an instruction starts when the rank is free and every item's dependencies are met;
//   - F of a stage needs F of the previous stage of the micro-batch's route and the activation
//     transferred; the backward (B or full) of a stage needs its own F, and unless it is the route's
//     last stage, the backward (B or full) of the next stage and the gradient transferred; W needs its
//     own B. Between stages on the same rank nothing is transferred;
//   - a point-to-point transfer is handed to the environment when its producing instruction ends
//     (eager send with the receive already posted), or, with P2pRendezvous::receiver_ready, when in
//     addition the receiving rank has reached the consuming instruction (its receive is posted then);
//   - if instructions remain when nothing more can happen, std::logic_error names the stuck ranks.
#pragma once

#include "sim/core/simulator.hpp"
#include "sim/core/units.hpp"
#include "sim/pipeline/pipeline_schedule.hpp"

#include <functional>
#include <vector>

namespace clustersim {

// An activation (forward) or gradient (backward) moving between the ranks of two adjacent stages.
struct P2pTransfer {
    int micro_batch;
    int from_stage, to_stage;
    int from_rank, to_rank;
    bool gradient;  // false: the activation of a forward; true: the input gradient of a backward
};

// What the executor asks of the rest of the simulator: compute times and transfers.
class PipelineEnvironment {
public:
    virtual ~PipelineEnvironment() = default;
    // Compute time of the whole instruction on `rank` (for an F&B pair: the overlapped span). Asked
    // when the instruction starts.
    virtual Time duration(int rank, const Instruction& instruction) = 0;
    // Starts a point-to-point transfer now (sim.now()); must call `arrived` exactly once, when the data
    // is at the receiver. The default delivers at once (zero latency, infinite bandwidth).
    virtual void transfer(Simulator& sim, const P2pTransfer& t, std::function<void()> arrived);
};

// When a transfer may start (see the file comment).
enum class P2pRendezvous { eager, receiver_ready };

struct PipelineRunOptions {
    P2pRendezvous rendezvous = P2pRendezvous::eager;
};

struct ExecutedInstruction {
    int rank;
    Instruction instruction;
    Time start, end;  // simulated times (absolute)
};

struct PipelineRun {
    Time start;                                 // sim.now() when run_pipeline was called
    Time makespan;                              // from `start` to the end of the last instruction
    std::vector<ExecutedInstruction> timeline;  // sorted by (rank, start)
    std::vector<Time> busy;                     // per rank: sum of its instructions' durations
    std::vector<Time> bubble;                   // per rank: makespan - busy
    // Per rank: the most (micro-batch, stage) activations held at once. One is held from the start of
    // its forward to the end of its last backward part (the full backward, or W); a rank counts the
    // stages it holds, so a DualPipe rank counts both directions. Ends are counted before starts at
    // the same instant; an F&B pair holds its forward's and its backward's activation throughout.
    std::vector<int> peak_activations;
};

// Validates the schedule (validate_pipeline_schedule), runs it to completion on `sim` (sim.run()),
// and returns the measurements. Throws std::invalid_argument for an invalid schedule and
// std::logic_error on deadlock or if the environment calls `arrived` twice.
PipelineRun run_pipeline(Simulator& sim, const PipelineSchedule& schedule, PipelineEnvironment& env,
                         const PipelineRunOptions& options = {});

}  // namespace clustersim
