// Iteration times of serving instances: an affine model for tests and the execution-level model.
#include "sim/serving/batch_cost_model.hpp"

#include "sim/execution/layer_cost.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace clustersim {
namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
    return (a + b - 1) / b;
}

bool is_attention(OpKind k) {
    return k == OpKind::attn_prefill || k == OpKind::attn_decode || k == OpKind::mla_decode;
}

}  // namespace

Time FixedBatchCostModel::iteration_time(const BatchWork& work) {
    if (work.empty()) return Time::zero();
    return base_ + per_prefill_token_ * work.prefill_tokens +
           per_decode_token_ * (work.decode_requests * work.decode_tokens_per_request);
}

nlohmann::ordered_json FixedBatchCostModel::provenance() const {
    nlohmann::ordered_json j;
    j["method"] = "fixed: iteration time = base + per prefill token + per decode token, as given in the scenario";
    j["base_us"] = base_.us();
    j["per_prefill_token_us"] = per_prefill_token_.us();
    j["per_decode_token_us"] = per_decode_token_.us();
    return j;
}

ExecutionBatchCostModel::ExecutionBatchCostModel(ModelSpec model, std::shared_ptr<const KernelCostModel> kernels,
                                                 ExecutionCostOptions options)
    : model_(std::move(model)), kernels_(std::move(kernels)), options_(std::move(options)) {
    validate_layout(model_, options_.layout);
    if (options_.buckets_per_doubling < 1) throw std::invalid_argument("buckets_per_doubling must be at least 1");
    for (int i = 0; i < model_.layers; ++i) {
        const auto signature = std::make_tuple(model_.is_moe_layer(i), model_.is_chunked_layer(i), model_.uses_rope(i));
        auto [it, inserted] = layer_groups_.try_emplace(signature, i, 0);
        ++it->second.second;
    }
}

std::int64_t ExecutionBatchCostModel::bucket(std::int64_t v) const {
    if (v <= 32) return v;
    const double steps = std::round(std::log2(static_cast<double>(v)) * options_.buckets_per_doubling);
    return std::max<std::int64_t>(
        33, static_cast<std::int64_t>(std::llround(std::exp2(steps / options_.buckets_per_doubling))));
}

Time ExecutionBatchCostModel::iteration_time(const BatchWork& work) {
    if (work.empty()) return Time::zero();
    // Attention data parallelism splits the requests over attn_dp ranks; the busiest rank sets the time.
    const std::int64_t dp = options_.layout.attn_dp;
    // A sequence is not split over DP ranks: the busiest rank has at least the longest chunk.
    const std::int64_t prefill_tokens = std::max(ceil_div(work.prefill_tokens, dp), work.prefill_max_chunk);
    const std::int64_t prefill_sequences =
        work.prefill_tokens > 0 ? std::min(prefill_tokens, ceil_div(work.prefill_sequences, dp)) : 0;
    // The busiest rank's requests and KV when the scheduler says how requests sit on the ranks (the
    // requests stay on the rank they were admitted to), else an even spread at the mean KV length.
    const bool ranked = dp > 1 && work.decode_rank_requests > 0;
    const std::int64_t decode_requests = ranked ? work.decode_rank_requests : ceil_div(work.decode_requests, dp);
    const std::int64_t decode_context =
        ranked ? ceil_div(work.decode_rank_kv_tokens, work.decode_rank_requests) : work.decode_context;
    const std::int64_t per_request = std::max<std::int64_t>(1, work.decode_tokens_per_request);
    // Expert-parallel MoE work is spread over all ranks: each rank's experts see the mean tokens.
    const std::int64_t mean_tokens =
        ceil_div(work.prefill_tokens + work.decode_requests * work.decode_tokens_per_request, dp);
    const Key key{bucket(prefill_tokens),
                  bucket(prefill_sequences),
                  prefill_tokens > 0 ? bucket(work.prefill_context) : 0,
                  bucket(decode_requests),
                  decode_requests > 0 ? bucket(std::max<std::int64_t>(1, decode_context)) : 0,
                  dp > 1 ? bucket(mean_tokens) : 0,
                  decode_requests > 0 ? per_request : 0};
    ++lookups_;
    auto it = memo_.find(key);
    if (it == memo_.end()) it = memo_.emplace(key, price(key)).first;
    const Priced& p = it->second;
    for (int i = 0; i < kProvenanceKinds; ++i)
        provenance_s_[static_cast<std::size_t>(i)] += p.by_provenance[static_cast<std::size_t>(i)].seconds();
    communication_s_ += p.communication.seconds();
    noise_factor_time_s_ += p.noise_factor * p.total.seconds();
    ep_network_s_ += p.ep_network.seconds();
    total_s_ += p.total.seconds();
    return p.total;
}

Time ExecutionBatchCostModel::communication_time(const Operator& op) const {
    const auto& L = options_.layout;
    const auto& links = options_.links;
    const double bytes = op.comm_bytes.bytes();
    if (bytes <= 0) return Time::zero();
    switch (op.comm) {
        case CommKind::tp_all_reduce:
        case CommKind::tp_all_gather:
        case CommKind::tp_reduce_scatter: {
            // Over the collective's own group: attention's TP blocks over attention TP, the dense FFN's
            // over dense_tp, the embedding and LM head over vocab_tp (0: the whole tp).
            const int n = op.group > 0 ? op.group : L.tp;
            if (n <= 1) return Time::zero();
            const bool in_host = n <= links.gpus_per_host;
            const Bandwidth bw = in_host ? links.nvlink : links.network;
            const Time latency = in_host ? links.nvlink_latency : links.network_latency;
            // Ring algorithms: all-reduce moves 2(n-1)/n of the buffer per rank in 2(n-1) steps,
            // all-gather and reduce-scatter (n-1)/n in n-1 steps (nccl-tests doc/PERFORMANCE.md).
            const int factor = op.comm == CommKind::tp_all_reduce ? 2 : 1;
            const double share = factor * static_cast<double>(n - 1) / n;
            return Bytes(bytes * share) / bw + latency * (factor * (n - 1));
        }
        case CommKind::ep_dispatch:
        case CommKind::ep_combine: {
            const int n = L.ep;
            if (n <= 1) return Time::zero();
            // Uniform routing: of the copies a rank sends, (n - local)/n go to other hosts over the
            // network and (local - 1)/n to other GPUs of its host over NVLink; both run at once.
            const int local = std::min(n, links.gpus_per_host);
            const double remote = static_cast<double>(n - local) / n;
            const double nvlink = static_cast<double>(local - 1) / n;
            Time t = Bytes(bytes * nvlink) / links.nvlink;
            if (remote > 0) t = std::max(t, Bytes(bytes * remote) / links.network);
            return t + (remote > 0 ? links.network_latency : links.nvlink_latency);
        }
        case CommKind::none:
            break;
    }
    return Time::zero();
}

double ExecutionBatchCostModel::sm_slowdown() const {
    const auto& sms = kernels_->profile().spec.sm_count;
    if (options_.communication_sms <= 0 || !sms || sms->value <= options_.communication_sms) return 1.0;
    return static_cast<double>(sms->value) / static_cast<double>(sms->value - options_.communication_sms);
}

Time ExecutionBatchCostModel::overlapped_compute(Time compute, Time compute_bound, Time held) const {
    const double s = sm_slowdown();
    if (s <= 1.0 || held <= Time::zero() || compute <= Time::zero()) return compute;
    // While the normal kernels hold their SMs, compute-bound kernels run s times slower (as in training,
    // sim/training: memory-bound ones keep the HBM's rate); over a layer's mix the compute advances at
    // 1 / s_mix of its rate. Compute that finishes under the held time takes s_mix times as long; else it
    // runs slowed for the held time and at full rate after.
    const double s_mix = (compute_bound.seconds() * s + (compute - compute_bound).seconds()) / compute.seconds();
    if (compute * s_mix <= held) return compute * s_mix;
    return held + (compute - held * (1.0 / s_mix));
}

ExecutionBatchCostModel::Priced ExecutionBatchCostModel::price(const Key& key) const {
    const auto [prefill_tokens, prefill_sequences, prefill_context, decode_requests, decode_context, mean_tokens,
                per_request] = key;
    const std::int64_t decode_tokens = decode_requests * per_request;
    const std::int64_t tokens = prefill_tokens + decode_tokens;
    // With attention DP and EP, the routed experts (and their dispatch and combine) process the mean
    // tokens per rank, the rest of the layer the busiest rank's tokens.
    const bool split_experts = options_.layout.attn_dp > 1 && options_.layout.ep > 1 && mean_tokens > 0 &&
                               mean_tokens != tokens && model_.moe.routed_experts > 0;
    auto expert_side = [](const Operator& op) {
        for (const char* part : {".moe.experts.", ".moe.ep_", ".moe.permute", ".moe.unpermute", ".moe.dispatch"})
            if (op.name.find(part) != std::string::npos) return true;
        return false;
    };
    // The busiest GPU's share of the routed work. With routing noise it depends on the tokens of one
    // MoE call: the instance's tokens (every attention-DP rank's), split in two micro-batches when
    // they overlap communication.
    double imbalance = options_.expert_imbalance;
    if (options_.expert_noise && model_.moe.routed_experts > 0 && options_.layout.ep > 1) {
        const std::int64_t instance_tokens =
            options_.layout.attn_dp > 1 ? mean_tokens * options_.layout.attn_dp : tokens;
        const std::int64_t call_tokens = ceil_div(instance_tokens, options_.overlap_communication ? 2 : 1);
        imbalance *= options_.expert_noise(std::max<std::int64_t>(call_tokens, 1));
    }
    // EP calls priced by the network model: which DeepEP kernels this iteration's calls use (SGLang's
    // auto mode picks low-latency kernels for iterations of decode steps only), at the tokens per rank
    // the experts receive.
    const double ep_tokens = static_cast<double>(split_experts ? mean_tokens : tokens);
    const auto& ep_model = options_.expert_comm;
    bool low_latency = options_.expert_comm_kernels == ExpertCommKernels::low_latency ||
                       (options_.expert_comm_kernels == ExpertCommKernels::automatic && prefill_tokens == 0);
    Priced out;
    out.noise_factor = imbalance / options_.expert_imbalance;
    if (ep_model && low_latency && ep_tokens > ep_model->low_latency_max_tokens_per_rank()) {
        low_latency = false;  // more tokens than the low-latency kernels are priced for
        out.ep_flags |= ep_over_range;
    }
    Time mtp_layer;
    for (const auto& [signature, group] : layer_groups_) {
        const auto [layer, count] = group;
        Time compute, compute_bound_time, communication, ep_network, ep_held;
        std::array<Time, kProvenanceKinds> by_provenance{};
        auto account = [&](const OperatorCost& c) {
            compute += c.prediction.time;
            if (compute_bound(c.op, kernels_->profile().spec)) compute_bound_time += c.prediction.time;
            by_provenance[static_cast<std::size_t>(c.prediction.provenance)] += c.prediction.time;
        };
        // Everything but attention scales with the iteration's tokens: price it as one sequence of all of them.
        OperatorGraphOptions linear;
        linear.phase = Phase::prefill;
        linear.precision = options_.precision;
        linear.kv_dtype = options_.kv_dtype;
        linear.layout = options_.layout;
        linear.batch.sequences = 1;
        linear.batch.seq = tokens;
        std::vector<OperatorCost> ops = predict_layer_cost(model_, layer, linear, *kernels_).operators;
        if (split_experts && model_.is_moe_layer(layer)) {
            OperatorGraphOptions mean = linear;
            mean.batch.seq = mean_tokens;
            std::vector<OperatorCost> mean_ops = predict_layer_cost(model_, layer, mean, *kernels_).operators;
            std::erase_if(ops, [&](const OperatorCost& c) { return expert_side(c.op); });
            for (auto& c : mean_ops)
                if (expert_side(c.op)) ops.push_back(std::move(c));
        }
        for (auto& c : ops) {
            if (!c.priced) {
                const bool ep = c.op.comm == CommKind::ep_dispatch || c.op.comm == CommKind::ep_combine;
                if (ep && ep_model) {
                    // The busiest GPU receives `imbalance` times the mean: it sets the call's end.
                    const ExpertCallTime call =
                        ep_model->call(low_latency, c.op.comm == CommKind::ep_dispatch, ep_tokens);
                    out.ep_flags |= low_latency ? ep_low_latency : ep_normal;
                    if (call.extrapolated) out.ep_flags |= ep_extrapolated;
                    const Time t = call.time * imbalance;
                    communication += t;
                    ep_network += t;
                    if (!low_latency) ep_held += t;
                } else {
                    const Time t = communication_time(c.op) * (ep ? imbalance : 1.0);
                    communication += t;
                    if (ep && !low_latency) ep_held += t;
                }
            } else if (!is_attention(c.op.kind)) {
                // The busiest GPU's experts see `imbalance` times the mean tokens.
                if (c.op.kind == OpKind::grouped_gemm && c.op.name.find(".experts.") != std::string::npos &&
                    imbalance != 1.0) {
                    KernelShape shape = kernel_shape(c.op);
                    shape.m = std::max<std::int64_t>(1, std::llround(static_cast<double>(shape.m) * imbalance));
                    c.prediction = kernels_->predict(shape);
                }
                account(c);
            }
        }
        if (prefill_tokens > 0) {
            OperatorGraphOptions prefill = linear;
            prefill.batch.sequences = prefill_sequences;
            prefill.batch.seq = ceil_div(prefill_tokens, prefill_sequences);
            prefill.batch.cached_prefix = prefill_context;
            for (const auto& c : predict_layer_cost(model_, layer, prefill, *kernels_).operators)
                if (c.priced && is_attention(c.op.kind)) account(c);
        }
        if (decode_tokens > 0) {
            OperatorGraphOptions decode = linear;
            decode.phase = Phase::decode;
            decode.batch.kv_lengths.assign(static_cast<std::size_t>(decode_requests), decode_context);
            decode.batch.query_tokens = per_request;  // MTP drafts share their request's cache read (FlashMLA s_q)
            for (const auto& c : predict_layer_cost(model_, layer, decode, *kernels_).operators)
                if (c.priced && is_attention(c.op.kind)) account(c);
        }
        const Time layer_time = options_.overlap_communication
                                    ? std::max(overlapped_compute(compute, compute_bound_time, ep_held), communication)
                                    : compute + communication;
        out.compute += compute * count;
        out.communication += communication * count;
        out.ep_network += ep_network * count;
        out.total += layer_time * count;
        for (std::size_t i = 0; i < by_provenance.size(); ++i) out.by_provenance[i] += by_provenance[i] * count;
        // The MTP module is one decoder layer shaped like the model's last (DeepSeek-V3 section 2.2).
        if (std::get<0>(signature) == model_.is_moe_layer(model_.layers - 1)) mtp_layer = layer_time;
    }

    // LM head: logits for the last prompt token of each prefill sequence and for every decode token, over
    // 1/vocab_tp of the vocabulary. A vocabulary group wider than attention TP computes the rows of its
    // vocab_tp / attn_tp attention ranks, their hidden states gathered first (SGLang's logits processor under
    // DP attention); the logits are all-gathered over the group.
    const auto& L = options_.layout;
    const int vocab_tp = L.vocab_parallel_tp();
    const std::int64_t rows = (prefill_sequences + decode_tokens) * std::max(1, vocab_tp / L.attn_tp());
    KernelShape head;
    head.op = "gemm";
    head.dtype = "bf16";
    head.m = rows;
    head.n = model_.vocab / vocab_tp;
    head.k = model_.hidden;
    const KernelPrediction head_time = kernels_->predict(head);
    out.compute += head_time.time;
    out.by_provenance[static_cast<std::size_t>(head_time.provenance)] += head_time.time;
    Operator hidden;
    hidden.comm = CommKind::tp_all_gather;
    hidden.group = vocab_tp;
    hidden.comm_bytes = rows > prefill_sequences + decode_tokens
                            ? Bytes(static_cast<double>(rows) * static_cast<double>(model_.hidden) * 2.0)
                            : Bytes(0);
    Operator logits;
    logits.comm = CommKind::tp_all_gather;
    logits.group = vocab_tp;
    logits.comm_bytes = Bytes(static_cast<double>(rows) * static_cast<double>(model_.vocab) * 2.0);
    const Time gather = communication_time(hidden) + communication_time(logits);
    out.communication += gather;
    out.total += head_time.time + gather;

    // MTP speculative decoding: each draft token runs the MTP module (one decoder layer like the last).
    if (options_.mtp_depth > 0 && decode_tokens > 0) out.total += mtp_layer * options_.mtp_depth;
    return out;
}

nlohmann::ordered_json ExecutionBatchCostModel::provenance() const {
    nlohmann::ordered_json j;
    const bool network = options_.expert_comm != nullptr;
    j["method"] = fmt::format(
        "execution level: each layer's operator graph for the instance's layout priced with the kernel cost model "
        "(predict_layer_cost), one representative layer per structure; TP communication estimated from the "
        "topology's link bandwidths (ring all-reduce/all-gather); EP dispatch and combine {}; memoized by shape "
        "bucket",
        network ? "from the flow-level network model (DeepEP normal and low-latency calls simulated on the topology "
                  "at anchor token counts, interpolated)"
                : "estimated from the topology's link bandwidths (uniform all-to-all)");
    j["gpu"] = kernels_->profile().spec.name;
    j["overlap_communication"] = options_.overlap_communication;
    j["expert_imbalance"] = options_.expert_imbalance;
    if (options_.overlap_communication && options_.layout.ep > 1 && model_.moe.routed_experts > 0 && sm_slowdown() > 1.0)
        j["communication_sms"] = {
            {"sms", options_.communication_sms},
            {"compute_bound_slowdown", sm_slowdown()},
            {"method", "while DeepEP normal kernels run, the other micro-batch's compute-bound kernels run on the SMs "
                       "left (low-latency kernels hold none)"}};
    if (options_.expert_noise)
        j["routing_noise"] = {
            {"method", "the busiest GPU's expected share at each iteration's tokens per MoE call, normal per-GPU counts "
                       "(sim/moe/batch_expert_imbalance.hpp)"},
            {"mean_factor", total_s_ > 0 ? noise_factor_time_s_ / total_s_ : 1.0}};  // weighted by iteration time
    if (options_.layout.ep > 1 && model_.moe.routed_experts > 0) {
        nlohmann::ordered_json ep;
        ep["method"] = network ? "network" : "estimate";
        ep["reason"] = options_.expert_comm_reason;
        if (network) {
            const char* kernels[] = {"normal", "low_latency", "auto"};
            ep["kernels"] = kernels[static_cast<int>(options_.expert_comm_kernels)];
            // Shapes priced, by the kernels their EP calls used.
            std::size_t low = 0, normal = 0, over = 0, extrapolated = 0;
            for (const auto& [key, p] : memo_) {
                low += (p.ep_flags & ep_low_latency) != 0;
                normal += (p.ep_flags & ep_normal) != 0;
                over += (p.ep_flags & ep_over_range) != 0;
                extrapolated += (p.ep_flags & ep_extrapolated) != 0;
            }
            ep["shapes_low_latency"] = low;
            ep["shapes_normal"] = normal;
            ep["shapes_low_latency_over_range_priced_normal"] = over;
            ep["shapes_extrapolated"] = extrapolated;
            ep["low_latency_max_tokens_per_rank"] = options_.expert_comm->low_latency_max_tokens_per_rank();
            ep["curves"] = options_.expert_comm->describe();
        }
        j["ep_communication"] = ep;
    }
    j["distinct_shapes"] = memo_.size();
    j["lookups"] = lookups_;
    double compute = 0;
    for (double s : provenance_s_) compute += s;
    const double sum = compute + communication_s_;
    nlohmann::ordered_json shares = nlohmann::ordered_json::object();
    for (int i = 0; i < kProvenanceKinds; ++i) {
        const double s = provenance_s_[static_cast<std::size_t>(i)];
        if (s > 0) shares[to_string(static_cast<Provenance>(i))] = sum > 0 ? s / sum : 0.0;
    }
    const double estimated = communication_s_ - ep_network_s_;
    if (estimated > 1e-9 * communication_s_) shares["communication_estimate"] = sum > 0 ? estimated / sum : 0.0;
    if (ep_network_s_ > 0) shares["ep_communication_network"] = sum > 0 ? ep_network_s_ / sum : 0.0;
    j["time_shares"] = shares;
    j["note"] = "shares of compute + communication time before overlap, weighted by how often each shape ran";
    return j;
}

}  // namespace clustersim
