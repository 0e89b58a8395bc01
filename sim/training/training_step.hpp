// One training step of one pipeline replica: the schedule's instruction streams run on the event
// engine with chunk times from the kernel cost model and the network model, point-to-point sends as
// flows on the cluster's fabric, then the data-parallel gradient reduce-scatter, the optimizer step
// and the ZeRO parameter all-gather. Identical replicas are not simulated twice: every replica runs
// the same timeline, and the data-parallel collectives that tie them together are simulated on the
// fabric among the replicas' GPUs.
//
// What is not modelled (kept visible in README.md): contention between the traffic of different
// kinds (EP all-to-all, pipeline sends, data-parallel collectives) and between EP groups; routing
// skew (training uses balanced routing, as DeepSeek's auxiliary-loss-free balancing aims for);
// CPU launch overheads; the time-varying SM split when a communication kernel starts or ends inside
// a compute kernel (compute runs on the SMs left by communication for the whole overlapped pair).
#pragma once

#include "kernels/kernel_cost_model.hpp"
#include "sim/pipeline/pipeline_executor.hpp"
#include "sim/training/training_costs.hpp"
#include "sim/training/training_memory.hpp"
#include "sim/training/training_plan.hpp"

#include <map>
#include <optional>
#include <vector>

namespace clustersim {

struct RankStep {
    int rank = 0;
    Time pipeline_end;       // the rank's last instruction ends
    Time busy;               // sum of its instructions' spans
    Time compute;            // of which the compute stream was busy
    Time exposed_comm;       // busy - compute: time the compute stream waited for communication
    Time expert_comm;        // EP dispatch/combine time of its chunks (hidden or not)
    Time hidden_expert_comm;
    Time grads_ready;        // the last backward (or W) of its parts ends
    Time last_backward_start;  // the instruction holding that last backward starts
    int dp_buckets = 1;      // gradient buckets (overlap.dp_grad_bucket; 1 without)
    Time dp_reduce;          // gradient reduce-scatter time (dense and expert groups; all its buckets)
    Time dp_reduce_end;
    Time optimizer;          // the AdamW update of its shard
    Time param_gather;       // ZeRO parameter all-gather
    Time param_gather_exposed;
    Time step_end;
    Flops flops;             // compute FLOPs of its chunks
};

// One model part's chunks, each run alone (on all SMs).
struct PartReport {
    int part = 0;
    int first_layer = 0;
    int layers = 0;
    OverlapResult forward, backward, backward_input, backward_weight;
    Flops forward_flops, backward_flops;
    double parameters = 0;
    Bytes activations_per_micro_batch;
};

// An overlapped forward-and-backward pair of one model part, as in deepseek-ai/profile-data.
struct PairReport {
    int part = -1;
    int layers = 0;
    bool overlapped = true;  // false under overlap.ep_with_compute: false (the chunks ran one after the other)
    OverlapResult pair;
    Time forward_alone;
    Time backward_alone;
    Time dispatch_fp8;
    Time dispatch_bf16;
    Time combine;
};

struct TrainingStep {
    PipelineSchedule schedule;
    std::vector<std::vector<int>> parts_of_rank;  // the model parts each pipeline rank holds
    PipelineRun run;
    std::vector<RankStep> ranks;
    MemoryReport memory;
    Time step_time;
    Time pipeline_time;
    Flops model_flops_per_step;  // the plan's FLOP convention's count (flops_convention) x tokens per step
    std::map<Provenance, Time> provenance;  // kernel time priced, by provenance
    std::optional<PairReport> pair;
    std::vector<PartReport> parts;
    double shared_sm_slowdown = 1;
    Time p2p_transfer;  // one activation send alone on the fabric (rank 0 to 1)

    double tokens_per_s_per_gpu = 0;
    double model_tflops_per_gpu = 0;
    double mfu = 0;
    double bubble_fraction = 0;
    // Exposed communication, the most of any rank (exposed_comm_rank): the time a rank's compute stream
    // waited for communication inside chunks plus its exposed gradient reduction and parameter
    // all-gather, over the step time. The rank that exposes the most bounds what communication costs the
    // step; a mean over ranks hid one rank's exposed tail that set the step time.
    double exposed_comm_fraction = 0;
    int exposed_comm_rank = -1;
    double gpu_hours_per_trillion_tokens = 0;
};

// Simulates one step. Memory is first estimated from the schedule run with unit chunk times; when
// that does not fit (and the plan does not say memory_check: report), only `memory`, the schedule and
// parts_of_rank are filled and `step_time` is zero. A simulated step reports the memory of its own
// executed timeline.
TrainingStep simulate_training_step(const TrainingPlan& plan, const KernelCostModel& cost_model, std::uint64_t seed);

// One gradient bucket of a rank: its share of the rank's gradient and the time of its collective.
struct GradientBucket {
    double share = 1;
    Time reduce;
};

// The shares of `parameters` split into buckets of `bucket` parameters, the last one holding the rest
// (Megatron-Core's ParamAndGradBuffer fills buckets up to bucket_size parameters); {1} when bucket is 0
// or holds everything.
std::vector<double> bucket_shares(double parameters, std::int64_t bucket);

// When a rank's bucketed gradient reduction ends. The last backward runs over [backward_start,
// backward_end] and produces gradients at an even rate, filling `buckets` in order; each bucket's
// collective starts once it is full and the previous bucket's is done (one communication stream).
// A single bucket is the whole reduction after the backward: backward_end + its time.
Time bucketed_reduce_end(Time backward_start, Time backward_end, const std::vector<GradientBucket>& buckets);

// The first model part whose layers are all MoE layers (for the pair report), or -1.
int first_all_moe_part(const TrainingPlan& plan);

}  // namespace clustersim
