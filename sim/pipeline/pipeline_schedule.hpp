// Pipeline schedules as per-rank instruction streams: GPipe, 1F1B, interleaved 1F1B, ZB1P (ZB-H1),
// DualPipe and DualPipeV, each in the order its published reference issues the work.
//
// A schedule says only *what* each rank computes and in which order; how long things take and when
// they can start is the executor's business (pipeline_executor.hpp). See README.md in this folder
// for the schedules, their sources and the stage numbering.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clustersim {

enum class ScheduleKind { gpipe, one_f_one_b, interleaved_1f1b, zb1p, dualpipe, dualpipev };

// Names as written in scenarios: gpipe, 1f1b, interleaved-1f1b, zb1p, dualpipe, dualpipev.
const char* to_string(ScheduleKind kind);
std::optional<ScheduleKind> parse_schedule_kind(std::string_view name);

enum class WorkKind {
    forward,
    backward,         // the full backward of a chunk: input gradient (B) and weight gradient (W) together
    backward_input,   // B: the input gradient only; its W comes later
    backward_weight,  // W: the weight gradient of an earlier B
};
// "F", "BW" (full backward), "B", "W".
const char* to_string(WorkKind kind);

// One chunk of work: one micro-batch through one global stage.
struct WorkItem {
    WorkKind kind;
    int micro_batch;
    int stage;  // global stage id (see PipelineSchedule)
    bool operator==(const WorkItem&) const = default;
};

// What a rank issues at once: one item, or DualPipe's overlapped forward-and-backward pair (the
// forward item first, the backward second), whose computation and communication overlap.
struct Instruction {
    std::vector<WorkItem> items;
    bool operator==(const Instruction&) const = default;
};
// "F3@s2", or "F3@s2+BW1@s5" for a pair (micro-batch 3 at stage 2).
std::string to_string(const Instruction& instruction);

// Global stages. A micro-batch passes through the global stages of its route in forward order and
// back in reverse. Stage ids by schedule (R ranks):
//   gpipe, 1f1b, zb1p: stage s is part s on rank s (R stages);
//   interleaved-1f1b:  stage s is part s on rank s % R (R*v stages; rank r holds parts r, r+R, ...);
//   dualpipe:          stages 0..R-1 are the forward direction (stage s: part s on rank s), stages
//                      R..2R-1 the reverse direction (stage R+s: part s on rank R-1-s); micro-batches
//                      0..N/2-1 take the first route, N/2..N-1 the second;
//   dualpipev:         stage s is part s, on rank s for s < R and on rank 2R-1-s after (the V).
struct PipelineSchedule {
    ScheduleKind kind;
    int ranks;
    int micro_batches;
    int virtual_stages;           // model chunks per rank: v for interleaved, 2 for DualPipe/DualPipeV, else 1
    int parts;                    // distinct model parts the layers are split into (R, R*v, or 2R for DualPipeV)
    std::vector<int> stage_rank;  // per global stage: the rank holding it
    std::vector<int> stage_part;  // per global stage: which model part it computes
    std::vector<std::vector<int>> route;                      // per micro-batch: its global stages in forward order
    std::vector<std::vector<Instruction>> rank_instructions;  // per rank, in issue order
    std::vector<int> direction;  // per micro-batch: 0, or 1 for DualPipe's reverse direction

    int stages() const { return static_cast<int>(stage_rank.size()); }
};

// Builds the schedule. virtual_stages is the number of chunks per rank for interleaved-1f1b (>= 2)
// and must be 1 otherwise. Throws std::invalid_argument naming the rule for impossible
// combinations: ranks < 1 or micro_batches < 1; interleaved: micro_batches % ranks != 0 (Megatron's
// rule); DualPipe: odd ranks, odd micro-batches or micro_batches < 2*ranks; DualPipeV:
// micro_batches < 2*ranks (the rules the DualPipe reference asserts).
PipelineSchedule make_pipeline_schedule(ScheduleKind kind, int ranks, int micro_batches, int virtual_stages = 1);

// The number of model parts a schedule splits the layers into (PipelineSchedule::parts), known before
// the micro-batch count is: R*v for interleaved 1F1B, 2R for DualPipeV, R otherwise.
int schedule_parts(ScheduleKind kind, int ranks, int virtual_stages = 1);

// Checks that a schedule (built here or by hand) is complete and placed consistently: the tables
// have the right sizes, every item runs on the rank holding its stage, every (micro-batch, stage) of
// every route has exactly one forward and either one full backward or one B and one W, and nothing
// else appears. Order is not checked (the executor reports a deadlock). Throws std::invalid_argument.
void validate_pipeline_schedule(const PipelineSchedule& schedule);

}  // namespace clustersim
