// HBM a training plan needs on each pipeline rank: weights, gradients and optimizer states per ZeRO
// stage (experts sharded over their own expert-data-parallel group), and the activations the
// schedule keeps in flight at its peak.
//
// Conventions (ZeRO, Rajbhandari et al. 2020, section 5): stage 1 shards the optimizer states (master
// weights and Adam moments) over the data-parallel group, stage 2 also the gradients, stage 3 also
// the working parameters. Non-expert tensors are sharded over dp ranks, routed experts over the
// expert_dp ranks that hold the same experts. Activations: the most bytes the schedule keeps in flight
// on the rank, each micro-batch's activation of a stage weighing what its model part keeps
// (models/model_spec.hpp, Korthikanti et al. 2022).
#pragma once

#include "sim/pipeline/pipeline_executor.hpp"
#include "sim/training/training_plan.hpp"

#include <vector>

namespace clustersim {

struct RankMemory {
    int rank = 0;
    double parameters = 0;         // parameters held (all parts of the rank), before ZeRO-3 sharding
    double expert_parameters = 0;  // of which routed experts
    Bytes weights;
    Bytes gradients;
    Bytes optimizer_states;
    Bytes activations;
    Bytes activations_per_micro_batch;  // the largest of the rank's parts (for reporting)
    int peak_micro_batches = 0;
    Bytes reserve;
    Bytes total() const { return weights + gradients + optimizer_states + activations + reserve; }
};

struct MemoryReport {
    std::vector<RankMemory> ranks;
    Bytes capacity;  // HBM of one GPU
    Bytes peak() const;
    int peak_rank() const;
    bool fits() const { return peak() <= capacity; }
};

// Parameters of one model part on one rank, and the routed-expert share of them.
double part_parameters(const TrainingPlan& plan, int part);
double part_expert_parameters(const TrainingPlan& plan, int part);
// Activation bytes one micro-batch leaves on a rank for model part `part`, under the plan's
// recomputation choice.
Bytes part_activation_bytes(const TrainingPlan& plan, int part);

// The activation accounting options the plan's recomputation and caching choices amount to.
ActivationOptions activation_options(const TrainingPlan& plan);

// Per rank, the most activation bytes held at once in `run` of `schedule`: a micro-batch's activation of
// a stage (part_activation_bytes of the stage's part) is held from the start of its forward to the end
// of its full backward or W, as PipelineRun::peak_activations counts them.
std::vector<Bytes> peak_activation_bytes(const TrainingPlan& plan, const PipelineSchedule& schedule,
                                         const PipelineRun& run);

// `parts_of_rank[r]`: the model parts rank r holds; `peak_activations[r]`: the schedule's peak count of
// micro-batch activations; `peak_bytes[r]`: the peak in bytes (peak_activation_bytes).
MemoryReport training_memory(const TrainingPlan& plan, const std::vector<std::vector<int>>& parts_of_rank,
                             const std::vector<int>& peak_activations, const std::vector<Bytes>& peak_bytes,
                             Bytes capacity);

}  // namespace clustersim
