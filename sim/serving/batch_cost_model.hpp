// BatchCostModel: how long one iteration of a serving instance takes, for the request-level simulator.
//
// An iteration (one forward pass of continuous batching) runs prefill chunks and decode steps
// together. ExecutionBatchCostModel prices it from the execution level: the model's operator graph
// for the instance's layout, priced layer by layer with the kernel cost model (predict_layer_cost),
// plus the TP and EP communication (TP collectives estimated from the cluster's link bandwidths; EP
// dispatch and combine from the flow-level network model's DeepEP curves, or estimated); results are memoized by a
// bucketed shape key so a long run prices each distinct shape once. FixedBatchCostModel is an affine
// model for tests and for plugging in measured step times.
#pragma once

#include "kernels/kernel_cost_model.hpp"
#include "models/model_spec.hpp"
#include "models/operator_graph.hpp"
#include "sim/core/units.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace clustersim {

// The work of one iteration of one instance (all its GPUs together).
struct BatchWork {
    std::int64_t prefill_tokens = 0;             // new prompt tokens computed in prefill chunks
    std::int64_t prefill_sequences = 0;          // sequences those chunks belong to
    std::int64_t prefill_context = 0;            // mean tokens already in the KV cache before each chunk
    std::int64_t prefill_max_chunk = 0;          // the longest chunk (a sequence stays on one attention-DP rank)
    std::int64_t decode_requests = 0;            // requests taking a decode step
    std::int64_t decode_context = 0;             // mean KV length of those requests
    std::int64_t decode_tokens_per_request = 1;  // 1 + speculative (MTP) draft tokens verified per step
    // With attention data parallelism, the busiest rank's decode work (0: spread evenly): the most
    // requests on one rank, and the largest sum of KV lengths on one rank. Attention is priced at that
    // sum, the other operators at that count.
    std::int64_t decode_rank_requests = 0;
    std::int64_t decode_rank_kv_tokens = 0;

    bool empty() const { return prefill_tokens == 0 && decode_requests == 0; }
};

class BatchCostModel {
public:
    virtual ~BatchCostModel() = default;
    // The iteration's duration; positive for non-empty work.
    virtual Time iteration_time(const BatchWork& work) = 0;
    // How the times were obtained (summary.json's `provenance`), over every call so far.
    virtual nlohmann::ordered_json provenance() const = 0;
};

// time = base + per_prefill_token x prefill tokens + per_decode_request x decode tokens.
class FixedBatchCostModel : public BatchCostModel {
public:
    FixedBatchCostModel(Time base, Time per_prefill_token, Time per_decode_token)
        : base_(base), per_prefill_token_(per_prefill_token), per_decode_token_(per_decode_token) {}
    Time iteration_time(const BatchWork& work) override;
    nlohmann::ordered_json provenance() const override;

private:
    Time base_, per_prefill_token_, per_decode_token_;
};

// Link figures the communication estimate uses (from the topology, per GPU and direction).
struct CommLinks {
    Bandwidth nvlink;  // effective (nominal x efficiency)
    Time nvlink_latency;
    Bandwidth network;  // InfiniBand per GPU, effective
    Time network_latency;
    int gpus_per_host = 8;
};

// Which DeepEP kernels an instance's expert-parallel calls use, as SGLang's --deepep-mode: normal
// (prefill instances), low_latency (decode instances), or automatic (colocated instances: iterations of
// decode steps only use low-latency kernels, iterations with prefill chunks normal ones).
enum class ExpertCommKernels { normal, low_latency, automatic };

// One EP dispatch or combine priced by a model of the network.
struct ExpertCallTime {
    Time time;
    bool extrapolated = false;  // beyond the largest size the model was run at
};

// EP dispatch and combine times from the flow-level network model (sim/serving/network_expert_comm.hpp
// wires in sim/network/expert_comm_curve.hpp); the cost model uses it instead of its estimate when given.
class ExpertCommTimes {
public:
    virtual ~ExpertCommTimes() = default;
    // One call (dispatch, else combine) with `tokens_per_rank` tokens on every EP rank, in DeepEP's
    // low-latency kernels (else its normal ones).
    virtual ExpertCallTime call(bool low_latency, bool dispatch, double tokens_per_rank) const = 0;
    // The most tokens per rank a low-latency call is priced at; larger batches use normal kernels.
    virtual double low_latency_max_tokens_per_rank() const = 0;
    // The curves used so far, for summary.json's provenance.
    virtual nlohmann::ordered_json describe() const = 0;
};

struct ExecutionCostOptions {
    ParallelLayout layout;  // of one rank of the instance
    Precision precision = Precision::bf16;
    DType kv_dtype = DType::bf16;  // the KV cache's element type: what decode attention reads
    CommLinks links;
    // Two-micro-batch overlap (DeepSeek's prefill and decode): communication hides behind the other
    // micro-batch's compute, so a layer takes max(compute, communication) instead of their sum.
    bool overlap_communication = false;
    int mtp_depth = 0;  // MTP modules run once per decode step per draft token
    // Routed (token, expert) selections of the busiest GPU over the mean (sim/moe: routing model and
    // expert placement); it scales the routed-expert GEMMs and the EP dispatch and combine.
    double expert_imbalance = 1.0;
    // Routing noise of small batches (sim/moe/batch_expert_imbalance.hpp): when set, the factor by
    // which a batch of `tokens` tokens in one MoE call puts the busiest GPU further above the mean
    // than the expected loads do (1 for a large batch). Empty: expected loads only.
    std::function<double(std::int64_t tokens)> expert_noise;
    // EP dispatch and combine: from the network model when set, else estimated from the link bandwidths.
    std::shared_ptr<const ExpertCommTimes> expert_comm;
    ExpertCommKernels expert_comm_kernels = ExpertCommKernels::automatic;
    std::string expert_comm_reason;  // why this method prices EP communication (for provenance)
    // SMs DeepEP's normal kernels hold while they run (DeepEP's Buffer.num_sms, 20 by default). With
    // overlap_communication, the other micro-batch's compute-bound kernels run on the SMs left while a
    // normal-kernel dispatch or combine is in flight; low-latency kernels hold none while data moves.
    int communication_sms = 0;
    int buckets_per_doubling = 16;  // shape-key resolution: token counts and contexts above 32 are
                                    // rounded to a geometric grid of this many points per doubling
};

class ExecutionBatchCostModel : public BatchCostModel {
public:
    ExecutionBatchCostModel(ModelSpec model, std::shared_ptr<const KernelCostModel> kernels,
                            ExecutionCostOptions options);
    Time iteration_time(const BatchWork& work) override;
    nlohmann::ordered_json provenance() const override;

    std::size_t distinct_shapes() const { return memo_.size(); }
    // Compute-bound kernels' slowdown while DeepEP normal kernels hold communication_sms SMs (1: none).
    double sm_slowdown() const;
    // A layer's compute time (`compute_bound` of it in compute-bound kernels) beside `held` of
    // normal-kernel communication under two-micro-batch overlap.
    Time overlapped_compute(Time compute, Time compute_bound, Time held) const;
    std::uint64_t lookups() const { return lookups_; }

    // The grid value a count is priced at (exact up to 32).
    std::int64_t bucket(std::int64_t v) const;

    // The estimate of one communication operator: TP collectives as rings over the operator's group
    // (Operator::group, else the layout's tp), EP calls as a uniform all-to-all over ep.
    Time communication_time(const Operator& op) const;

private:
    static constexpr int kProvenanceKinds = 6;  // Provenance::measured .. roofline
    // How a shape's EP calls were priced by the network model (for provenance).
    enum EpCallFlags : std::uint8_t {
        ep_low_latency = 1,   // low-latency kernels
        ep_normal = 2,        // normal kernels
        ep_over_range = 4,    // low-latency wanted but too many tokens per rank: normal kernels
        ep_extrapolated = 8,  // beyond the network model's largest anchor
    };
    struct Priced {
        Time total;
        Time compute;
        Time communication;  // all of it, before overlap
        Time ep_network;     // of which EP calls priced by the network model
        std::array<Time, kProvenanceKinds> by_provenance{};
        double noise_factor = 1.0;  // routing noise's factor on the expected imbalance
        std::uint8_t ep_flags = 0;
    };
    // Per busiest rank (prefill tokens, prefill sequences, prefill context, decode tokens, decode
    // context), and the mean tokens per rank (what each rank's experts receive under EP).
    // prefill tokens, prefill sequences, prefill context, decode requests, decode context (bucketed), mean
    // tokens per rank for the experts (bucketed), decode tokens per request.
    using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t>;
    Priced price(const Key& key) const;

    ModelSpec model_;
    std::shared_ptr<const KernelCostModel> kernels_;
    ExecutionCostOptions options_;
    // Layers with the same structure priced once: (MoE?, chunked attention?, RoPE?) -> count.
    std::map<std::tuple<bool, bool, bool>, std::pair<int, int>> layer_groups_;  // -> (representative, count)
    std::map<Key, Priced> memo_;
    std::uint64_t lookups_ = 0;
    // Simulated time priced so far, by where it came from.
    std::array<double, kProvenanceKinds> provenance_s_{};
    double communication_s_ = 0;
    double ep_network_s_ = 0;
    double total_s_ = 0;
    double noise_factor_time_s_ = 0;  // routing-noise factors of the iterations priced, times their durations
};

}  // namespace clustersim
