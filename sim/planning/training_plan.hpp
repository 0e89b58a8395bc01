// The training half of `clustersim plan`: every parallel layout, schedule and micro-batch size a
// training_plan file allows, the impossible ones dropped with their reason, the rest run as
// `training` scenarios through the sweep machinery, and the fastest plan that fits in memory
// reported (plans.csv, best.yaml, report.md).
//
// The plan file format and the outputs are described in sim/planning/README.md ("Plan searches:
// training"). A combination is a point of the search's cartesian product; the ones that pass the
// structural checks become plans of a sweep (sweep_spec.hpp) over the base scenario, run by
// run_sweep (sweep_runner.hpp), so threads, mpirun processes, the journal and resuming are the
// sweep's.
#pragma once

#include "sim/input/diagnostics.hpp"
#include "sim/planning/plan_options.hpp"
#include "sim/planning/process_group.hpp"
#include "sim/planning/sweep_runner.hpp"
#include "sim/planning/sweep_spec.hpp"

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

// One value a search key may take, with its place in the plan file.
template <typename T>
struct SearchValue {
    T value{};
    YAML::Node node;  // the value's node in the plan file (for overrides and error locations)
    std::string key;  // its key path in the plan file: "search.pp[2]"
};

// A pipeline schedule the search tries: its kind and, for interleaved-1f1b, the chunks per rank.
struct ScheduleChoice {
    std::string kind;                // as written in scenarios: 1f1b, interleaved-1f1b, zb1p, dualpipe, ...
    int virtual_stages = 1;          // > 1 only for interleaved-1f1b
    YAML::Node node;                 // the schedule's node in the plan file
    YAML::Node virtual_stages_node;  // the virtual_stages value's node (interleaved-1f1b only)
    std::string key;
};

// A training_plan file, read and checked (everything but the scenario itself).
struct TrainingPlanSpec {
    std::filesystem::path file;
    std::string name;  // the output folder's name (default: the file's stem)
    std::string description;
    std::filesystem::path base;  // the base training scenario, resolved against the plan file's folder
    SourceLocation base_where;
    std::optional<SearchValue<int>> gpus;  // instead of the base's
    std::vector<Override> set;             // values every plan gets, by dotted path (as a sweep's `set`)
    std::size_t top = 10;                  // how many plans report.md ranks

    // The search; an empty list keeps the base's value for that key.
    std::vector<SearchValue<int>> tp;
    std::vector<SearchValue<int>> pp;
    std::vector<SearchValue<int>> ep;
    std::vector<ScheduleChoice> schedules;
    std::vector<SearchValue<int>> micro_batch_size;
    std::vector<SearchValue<int>> zero_stage;
    std::vector<SearchValue<std::string>> recompute;
};

// Reads a training_plan file; throws InputError listing every problem (file:line:col, key).
TrainingPlanSpec read_training_plan_spec(const std::filesystem::path& file);

// Why a combination was dropped before anything ran: each a rule the training scenario's loader
// (sim/training/training_plan.cpp) or the schedule (sim/pipeline) enforces. A combination breaking
// several rules counts under the first, in this order.
enum class DropReason {
    tp_exceeds_host,             // TP spans more than one host
    gpus_not_divisible,          // tp x pp does not divide the GPUs
    ep_not_dividing_stage,       // EP does not divide the dp x tp ranks of a stage
    ep_not_dividing_experts,     // EP does not divide the routed experts (or the model has none)
    batch_not_divisible,         // the global batch is not a multiple of dp x micro-batch size
    too_few_layers,              // fewer decoder layers than the schedule's model parts
    interleaved_micro_batches,   // interleaved 1F1B: micro-batches not a multiple of pp
    dualpipe_odd_pp,             // DualPipe: an odd pp
    dualpipe_odd_micro_batches,  // DualPipe: an odd number of micro-batches
    too_few_micro_batches,       // DualPipe / DualPipeV: fewer than 2 x pp micro-batches
};
inline constexpr int kDropReasons = 10;
// "tp_exceeds_host", ...: the plans.csv status detail.
const char* to_string(DropReason reason);
// A sentence for the report: "TP spans more than one host".
const char* describe(DropReason reason);

// One point of the search's cartesian product.
struct PlanCombination {
    std::size_t index = 0;  // 0-based, tp slowest, then pp, ep, schedule, micro-batch size, ZeRO, recompute
    int tp = 1;
    int pp = 1;
    int ep = 1;
    int dp = 0;  // gpus / (tp x pp); 0 when tp x pp does not divide the GPUs
    std::string schedule;
    int virtual_stages = 1;
    std::int64_t micro_batch_size = 1;
    int micro_batches = 0;  // per pipeline: global batch / (dp x micro-batch size); 0 when not whole
    int zero_stage = 1;
    std::string recompute;
    std::optional<DropReason> dropped;  // set when the combination never ran
    std::string drop_detail;            // the numbers behind the drop
    std::optional<std::size_t> plan;    // the sweep plan it ran as (when not dropped)
    bool base_split = false;            // the base's layers_per_part kept (one entry per model part)
};

// The search expanded: every combination, and the sweep that runs the ones not dropped.
struct TrainingPlanSearch {
    TrainingPlanSpec spec;
    int gpus = 0;
    std::int64_t global_batch = 0;
    std::int64_t sequence_length = 0;
    std::string model;
    std::string gpu;
    std::vector<PlanCombination> combinations;
    std::vector<std::size_t> dropped_by_reason = std::vector<std::size_t>(kDropReasons, 0);
    SweepSpec sweep;  // one plan per combination not dropped, in combination order
};

// Expands the plan file's search over its base scenario (read once, with the plan's `set` and
// `gpus` applied, for the model's layers and experts, the batch and the topology). Nothing runs.
TrainingPlanSearch expand_training_plan(const TrainingPlanSpec& spec);

// What a search found.
struct TrainingPlanResult {
    PlanOutcome outcome;
    TrainingPlanSearch search;
    SweepReport sweep;                // rows of the plans that ran (rank 0)
    std::vector<std::size_t> ranked;  // sweep plans that fit, by tokens/s/GPU, best first (rank 0)
    std::filesystem::path plans_csv, best_yaml, report_md;  // best_yaml empty when no plan fits
};

// The whole search with a given mpirun process group (null: one process). Rank 0 writes into the
// out folder: the sweep's sweep.csv, journal.jsonl and Pareto chart, and plans.csv, best.yaml and
// report.md. Throws InputError for a bad plan file or base scenario.
TrainingPlanResult search_training_plan(const std::filesystem::path& plan_file, const PlanOptions& options,
                                        ProcessGroup* processes);

// `clustersim plan` for kind: training_plan. Starts the mpirun process group itself when run under
// mpirun (start_process_group), so the caller must not have started one.
PlanOutcome run_training_plan(const std::filesystem::path& plan_file, const PlanOptions& options);

}  // namespace clustersim
