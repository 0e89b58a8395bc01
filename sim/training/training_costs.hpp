// What the pieces of a training step cost: communication calls priced on the flow network, and each
// model part's forward, backward and weight-gradient chunk as a ChunkProgram priced with the kernel
// cost model.
//
// Both are memoized: a DeepSeek-V3 step has thousands of chunks but only a few distinct shapes.
#pragma once

#include "kernels/kernel_cost_model.hpp"
#include "sim/network/collectives.hpp"
#include "sim/network/expert_dispatch.hpp"
#include "sim/pipeline/pipeline_schedule.hpp"
#include "sim/training/chunk_program.hpp"
#include "sim/training/training_plan.hpp"

#include <map>
#include <tuple>
#include <utility>

namespace clustersim {

// Communication calls, each simulated once on the plan's topology (alone on the fabric: traffic of
// other EP groups, pipeline sends and data-parallel collectives is not contending with it).
class CommunicationPricer {
public:
    CommunicationPricer(const TrainingPlan& plan, std::uint64_t seed);

    // One DeepEP normal-mode dispatch or combine of `tokens` tokens per GPU across the plan's EP group
    // (the first ep GPUs of a stage).
    Time expert(ExpertCommPhase phase, bool fp8, std::int64_t tokens);
    // A TP collective (nccl-tests size convention) among the tp GPUs of one host.
    Time tensor_parallel(CollectiveOp op, Bytes size);
    // A collective over the data-parallel replicas of one stage: `expert` selects the expert-data-
    // parallel group (ranks holding the same experts) instead of the full data-parallel group.
    Time data_parallel(CollectiveOp op, Bytes size, bool expert);

    const ExpertParallelSpec& expert_spec() const { return ep_spec_; }
    // The GPU the pipeline's rank `rank` is simulated on (the first GPU of its stage's block).
    int pipeline_gpu(int rank) const;
    std::vector<int> data_parallel_gpus(bool expert) const;

private:
    Time run_dag(const TransferDag& dag) const;

    const TrainingPlan& plan_;
    std::uint64_t seed_;
    ExpertParallelSpec ep_spec_;
    std::map<std::tuple<int, bool, std::int64_t>, Time> expert_;
    std::map<std::pair<int, double>, Time> tp_;
    std::map<std::tuple<int, double, bool>, Time> dp_;
};

// The chunks of each model part, as chains of compute segments and communication calls.
class ChunkPricer {
public:
    ChunkPricer(const TrainingPlan& plan, const KernelCostModel& cost_model, CommunicationPricer& comm);

    // The chain of `kind` for model part `part` over one micro-batch. `shared_sms`: the compute runs on
    // the SMs the communication kernels leave (in an overlapped F&B pair).
    const ChunkProgram& chunk(int part, WorkKind kind, bool shared_sms);

    // FLOPs of the compute operators of one chunk (forward, B or W) of `part`.
    Flops flops(int part, WorkKind kind);
    // Kernel-time share by provenance over everything priced so far.
    const std::map<Provenance, Time>& provenance_time() const { return provenance_; }
    // The factor compute-bound kernels slow down by on the SMs communication leaves (1 without).
    double shared_sm_slowdown() const { return slowdown_; }

    // ZeRO-3's parameter all-gather of one layer of `part` and of all its layers, over the DP groups.
    struct ParameterGather {
        Time first_layer;
        Time total;
    };
    ParameterGather zero3_gather(int part);

private:
    ChunkProgram build(int part, WorkKind kind, bool shared_sms);
    // `program` with ZeRO-3's parameter gathers in front (unchanged below ZeRO-3).
    ChunkProgram with_parameter_gather(int part, const ChunkProgram& program);
    ChunkProgram price(const std::vector<Operator>& ops, bool shared_sms, bool count_provenance);
    Time communication(const Operator& op);

    const TrainingPlan& plan_;
    const KernelCostModel& cost_model_;
    CommunicationPricer& comm_;
    double slowdown_ = 1.0;
    std::map<std::tuple<int, int, bool>, ChunkProgram> cache_;
    std::map<std::pair<int, int>, Flops> flops_;
    std::map<Provenance, Time> provenance_;
};

}  // namespace clustersim
