// A training plan: the model, the cluster, the parallel layout, the pipeline schedule, the batch and
// the numerical choices of one training run, as the `training` scenario kind reads them.
//
// The plan describes one training step. Its degrees multiply to the GPU count: gpus = pp x dp x tp.
// Expert parallelism reuses the data-parallel ranks of a stage (DeepSeek-V3: EP64 inside DP128), so
// experts are replicated over expert_dp = dp x tp / ep ranks and gradients of experts are reduced
// over those only.
#pragma once

#include "models/model_spec.hpp"
#include "models/operator_graph.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/core/units.hpp"
#include "sim/pipeline/pipeline_schedule.hpp"
#include "topologies/topology.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

class MapReader;
struct ScenarioContext;

// none; selective: DeepSeek-V3's recomputation of RMSNorm outputs, MLA up-projections and the SwiGLU
// output in the backward (technical report 3.2.3, 3.3.4); full: each layer's whole forward again.
enum class Recompute { none, selective, full };

// How the reported model FLOPs (model_tflops_per_gpu, mfu) are counted. causal: 3 x the forward FLOPs
// per token with causal attention (flops_per_token; DeepSeek's convention). megatron: Megatron-LM's
// num_floating_point_operations (megatron_training_flops_per_token), attention over the whole s x s
// square, the figure Megatron-Core's weak-scaling table reports. Neither changes the simulated time.
enum class FlopsConvention { causal, megatron };
const char* to_string(FlopsConvention c);

struct TrainingParallel {
    int tp = 1;
    int pp = 1;
    int ep = 1;
    int dp = 1;  // derived: gpus / (pp x tp)
    bool sequence_parallel = true;
    int zero_stage = 1;  // 0: replicated optimizer; 1: states sharded; 2: + gradients; 3: + parameters
    int expert_dp() const { return dp * tp / ep; }
};

struct TrainingOptimizer {
    double master_bytes = 4;  // FP32 master weights (DeepSeek-V3 3.3.3 keeps them in FP32)
    double state_bytes = 4;   // per Adam moment; DeepSeek-V3 tracks both in BF16 (2)
    double grad_bytes = 4;    // accumulated gradients (FP32 in DeepSeek-V3 and Megatron)
    double param_bytes = 2;   // the BF16 copy the forward reads
};

// The most gradient buckets (overlap.dp_grad_bucket) a plan may split the model's parameters into.
inline constexpr std::int64_t kMaxGradBuckets = 1'000'000;

struct TrainingOverlap {
    bool ep_with_compute = true;  // DualPipe's F&B pairs hide EP all-to-all under the other chunk's compute
    bool dp_grad_reduce = true;   // gradient reduce-scatter starts as a stage's last backward ends
    bool param_gather = true;     // ZeRO parameter all-gather overlapped with the next step's warm-up
    bool tp_with_compute = false;  // TP collectives overlapped with GEMMs (Megatron tp-comm-overlap)
    // Parameters per gradient bucket (Megatron-Core's --overlap-grad-reduce): on the first pipeline rank
    // each bucket is reduced once the rank's last backward has filled it, so the reduction runs under
    // that backward. 0 (default): the whole gradient once the last backward ends. Needs dp_grad_reduce.
    std::int64_t dp_grad_bucket = 0;
};

struct TrainingPlan {
    std::string name;
    ModelSpec model;
    std::string gpu;                         // kernels/gpus/<gpu>.yaml
    std::shared_ptr<const Topology> topology;
    std::string topology_file;
    int gpus = 0;
    TrainingParallel parallel;
    ScheduleKind schedule = ScheduleKind::one_f_one_b;
    int virtual_stages = 1;
    std::vector<int> layers_per_part;  // decoder layers of each model part, in order (MTP rides on the last)
    std::int64_t seq = 4096;
    std::int64_t micro_batch_size = 1;  // sequences per micro-batch
    std::int64_t global_batch = 0;      // sequences per step
    int micro_batches = 0;              // per pipeline: global_batch / (dp x micro_batch_size)
    Precision precision = Precision::bf16;
    Recompute recompute = Recompute::none;
    bool fp8_activation_cache = false;
    bool router_weights_on_output = true;  // false: applied to the SwiGLU output inside the expert  // Linear inputs cached in FP8 for the backward (DeepSeek-V3 3.3.4)
    int communication_sms = 0;  // SMs DeepEP-style kernels hold while they run
    int node_limit = 0;         // hosts one token may be dispatched to (0: the model's topk_group or all)
    bool include_mtp = true;    // DeepSeek MTP modules on the last part, when the model has them
    TrainingOptimizer optimizer;
    TrainingOverlap overlap;
    Bytes memory_reserve;       // HBM kept free for the framework, workspaces and fragmentation
    bool simulate_if_over_memory = false;  // memory_check: report — simulate a plan over capacity, flagged
    FlopsConvention flops_convention = FlopsConvention::causal;  // how model FLOPs are counted for the MFU
    // Where batch.sequence_length is written: a step whose simulated time leaves Time's range (2^63 ps)
    // is reported there, as the key that sets how much work a step holds.
    SourceLocation sequence_length_at;

    std::int64_t tokens_per_micro_batch() const { return micro_batch_size * seq; }
    std::int64_t tokens_per_step() const { return global_batch * seq; }
};

// Reads a training plan from a scenario's root mapping; every problem goes to the document's
// diagnostics with file, line and key.
TrainingPlan read_training_plan(MapReader& root, const ScenarioContext& context);

// The default split of `layers` decoder layers into `parts`: as even as possible, the extra layers
// going to the middle parts (the first part also embeds, the last holds the LM head and MTP).
std::vector<int> default_layer_split(int layers, int parts);

// The layout of one model part: its layers and what else it holds.
ParallelLayout part_layout(const TrainingPlan& plan, int part);

}  // namespace clustersim
