// Building the operators of a layer and a stage: forward operators first, backward phases derived
// from them (input gradients in reverse order, weight gradients of every GEMM).
#include "models/operator_graph.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace clustersim {

const char* to_string(OpKind k) {
    switch (k) {
        case OpKind::gemm: return "gemm";
        case OpKind::grouped_gemm: return "grouped_gemm";
        case OpKind::attn_prefill: return "attn_prefill";
        case OpKind::attn_prefill_bwd: return "attn_prefill_bwd";
        case OpKind::attn_decode: return "attn_decode";
        case OpKind::mla_decode: return "mla_decode";
        case OpKind::rmsnorm: return "rmsnorm";
        case OpKind::layernorm: return "layernorm";
        case OpKind::rope: return "rope";
        case OpKind::silu_mul: return "silu_mul";
        case OpKind::gelu: return "gelu";
        case OpKind::residual_add: return "residual_add";
        case OpKind::quantize_fp8: return "quantize_fp8";
        case OpKind::moe_gate: return "moe_gate";
        case OpKind::moe_topk: return "moe_topk";
        case OpKind::moe_permute: return "moe_permute";
        case OpKind::moe_unpermute: return "moe_unpermute";
        case OpKind::embedding: return "embedding";
        case OpKind::lm_head: return "lm_head";
        case OpKind::cross_entropy: return "cross_entropy";
        case OpKind::collective: return "collective";
    }
    return "?";
}

const char* to_string(CommKind k) {
    switch (k) {
        case CommKind::none: return "none";
        case CommKind::tp_all_reduce: return "tp_all_reduce";
        case CommKind::tp_all_gather: return "tp_all_gather";
        case CommKind::tp_reduce_scatter: return "tp_reduce_scatter";
        case CommKind::ep_dispatch: return "ep_dispatch";
        case CommKind::ep_combine: return "ep_combine";
    }
    return "?";
}

const char* to_string(DType d) {
    switch (d) {
        case DType::bf16: return "bf16";
        case DType::fp8: return "fp8";
        case DType::fp32: return "fp32";
    }
    return "?";
}

const char* to_string(Phase p) {
    switch (p) {
        case Phase::train_forward: return "train_forward";
        case Phase::train_backward_input: return "train_backward_input";
        case Phase::train_backward_weight: return "train_backward_weight";
        case Phase::prefill: return "prefill";
        case Phase::decode: return "decode";
    }
    return "?";
}

std::int64_t BatchShape::tokens(Phase phase) const {
    if (phase == Phase::decode) return static_cast<std::int64_t>(kv_lengths.size()) * query_tokens;
    return sequences * seq;
}

std::string kernel_op(const Operator& op) {
    switch (op.kind) {
        case OpKind::gemm:
        case OpKind::lm_head: return "gemm";
        case OpKind::grouped_gemm: return "grouped_gemm";
        case OpKind::attn_prefill: return "attn_prefill";
        case OpKind::attn_prefill_bwd: return "attn_prefill_bwd";
        case OpKind::attn_decode: return "attn_decode";
        case OpKind::mla_decode: return "mla_decode";
        case OpKind::rmsnorm: return "rmsnorm";
        case OpKind::rope: return "rope";
        case OpKind::silu_mul: return "silu_mul";
        case OpKind::residual_add: return "residual_add";
        case OpKind::quantize_fp8: return "fp8_quant";
        case OpKind::moe_gate: return "moe_gate";
        case OpKind::moe_topk: return "moe_topk";
        case OpKind::moe_permute: return "moe_permute";
        case OpKind::moe_unpermute: return "moe_unpermute";
        default: return "";
    }
}

Flops total_flops(const std::vector<Operator>& ops) {
    Flops f;
    for (const auto& op : ops) f += op.flops;
    return f;
}

namespace {

double d(std::int64_t v) { return static_cast<double>(v); }

// Where a collective of the forward pass belongs when the backward pass is derived from it.
enum class Role { both, forward_only, backward_only };

struct Tagged {
    Operator op;
    Role role = Role::both;
};

// FP8 activations carry one FP32 scale per 128 elements (DeepSeek-V3 section 3.3.2, 1x128 tiles).
constexpr double kFp8BytesPerElement = 1.0 + 4.0 / 128.0;
// FlashAttention-2 backward runs five matmuls against the forward's two (Dao 2023, section 3.2).
constexpr double kAttentionBackwardRatio = 2.5;

// HBM bytes per logit of the training loss: Megatron-Core's unfused vocab-parallel cross entropy
// (megatron/core/tensor_parallel/cross_entropy.py, VocabParallelCrossEntropy and
// _VocabParallelCrossEntropy, read at NVIDIA/Megatron-LM commit 00611e6e and in a core_r0.9.0 copy,
// which run the same passes; r0.8.0 itself not read), on the BF16 logits the LM head wrote, one
// PyTorch kernel per line, FP32 from the cast on:
//   forward   calculate_logits_max: vocab_parallel_logits.float()      read 2, write 4
//                                   torch.max(..., dim=-1)              read 4
//             calculate_predicted_logits: logits -= logits_max (in place)  read 4, write 4
//                                   torch.exp(logits, out=logits)       read 4, write 4
//                                   exp_logits.sum(dim=-1)              read 4
//             calculate_cross_entropy_loss: exp_logits.div_(sum)        read 4, write 4  (the softmax,
//                                                                       saved for the backward)
//   backward  calculate_gradients: grad_input.mul_(grad_output)         read 4, write 4
//             the FP32 gradient cast to the logits' BF16: the .float() runs inside the autograd
//             Function, so PyTorch's engine converts the returned gradient to the input's dtype
//             (validate_outputs in torch/csrc/autograd/engine.cpp: grad.to(...))  read 4, write 2
// Per-row work (the target gather, grad_2d[arange, target] -= 1, the per-token loss) is one element
// per token and left out. Forward 22 read + 16 written = 38 bytes, backward 8 + 6 = 14.
constexpr double kCrossEntropyForwardRead = 22, kCrossEntropyForwardWritten = 16;
constexpr double kCrossEntropyBackwardRead = 8, kCrossEntropyBackwardWritten = 6;

class LayerBuilder {
public:
    LayerBuilder(const ModelSpec& m, const OperatorGraphOptions& o, std::vector<Tagged>& out)
        : m_(m), o_(o), out_(out) {
        tokens_ = o.batch.tokens(forward_phase());
        fp8_ = o.precision == Precision::fp8;
        act_bytes_ = fp8_ ? kFp8BytesPerElement : 2.0;
        training_ = o.phase == Phase::train_forward || o.phase == Phase::train_backward_input ||
                    o.phase == Phase::train_backward_weight;
        sp_ = training_ && o.layout.sequence_parallel && o.layout.tp > 1;
    }

    Phase forward_phase() const { return o_.phase == Phase::decode ? Phase::decode : o_.phase == Phase::prefill ? Phase::prefill : Phase::train_forward; }
    std::int64_t tokens() const { return tokens_; }

    void layer(int index, const std::string& prefix, int tag_layer) {
        prefix_ = prefix;
        tag_layer_ = tag_layer;
        attention_block(index);
        ffn_block(index);
    }

    // The embedding and the LM head are vocabulary-parallel over vocab_tp GPUs (default tp). Under attention
    // data parallelism a group wider than attention TP works on the tokens of its vocab_tp / attn_tp
    // attention ranks (SGLang's logits processor under DP attention: the hidden states gathered, the logits
    // all-gathered); vocab_tp = attn_tp keeps each rank's tokens (--enable-dp-lm-head).
    int vocab_gathered() const { return std::max(1, o_.layout.vocab_parallel_tp() / o_.layout.attn_tp()); }

    void embedding(const std::string& name) {
        const int tp = o_.layout.vocab_parallel_tp();
        const std::int64_t rows = tokens_ * vocab_gathered();
        Operator op = base(OpKind::embedding, name);
        op.m = rows;
        op.n = m_.hidden;
        op.k = m_.vocab / tp;
        op.bytes_read = Bytes(d(rows) * d(m_.hidden) * 2);
        op.bytes_written = Bytes(d(rows) * d(m_.hidden) * 2);
        push(op);
        if (tp > 1) collective(CommKind::tp_all_reduce, name + ".tp_all_reduce", d(rows) * d(m_.hidden) * 2, Role::forward_only, tp);
    }

    void head(const std::string& prefix) {
        const int tp = o_.layout.vocab_parallel_tp();
        // Prefill needs logits of the last token of each sequence only; training and decode of every token.
        const std::int64_t own = o_.phase == Phase::prefill ? o_.batch.sequences : tokens_;
        const std::int64_t rows = own * vocab_gathered();
        norm(prefix + "final_norm", own, m_.hidden);
        if (rows > own)
            collective(CommKind::tp_all_gather, prefix + "lm_head.dp_all_gather", d(rows) * d(m_.hidden) * 2,
                       Role::forward_only, tp);
        Operator op = gemm_op(OpKind::lm_head, prefix + "lm_head", rows, m_.vocab / tp, m_.hidden, false);
        push(op);
        if (training_) {
            // The loss over this rank's share of the logits, memory-bound (kCrossEntropy*).
            Operator loss = base(OpKind::cross_entropy, prefix + "lm_head.loss");
            loss.dtype = DType::fp32;
            loss.m = rows;
            loss.n = m_.vocab / tp;
            const double logits = d(rows) * d(loss.n);
            loss.flops = Flops(6.0 * logits);  // one operation per logit in each of the six passes
            loss.bytes_read = Bytes(kCrossEntropyForwardRead * logits);
            loss.bytes_written = Bytes(kCrossEntropyForwardWritten * logits);
            push(loss);
        }
        if (tp > 1) {
            if (training_) {
                // Vocab-parallel cross entropy all-reduces three FP32 values per token: the max, the
                // target's logit and the sum of exponentials (_VocabParallelCrossEntropy.forward).
                collective(CommKind::tp_all_reduce, prefix + "lm_head.cross_entropy", d(rows) * 3 * 4, Role::forward_only, tp);
            } else {
                collective(CommKind::tp_all_gather, prefix + "lm_head.logits", d(rows) * d(m_.vocab) * 2, Role::forward_only, tp);
            }
        }
    }

    void mtp_projection(const std::string& prefix) {
        norm(prefix + "enorm", tokens_, m_.hidden);
        norm(prefix + "hnorm", tokens_, m_.hidden);
        quantize(prefix + "eh_proj", tokens_, 2 * m_.hidden);
        push(gemm_op(OpKind::gemm, prefix + "eh_proj", tokens_, m_.hidden, 2 * m_.hidden, true));
    }

    void set_tag_layer(int l) { tag_layer_ = l; }

private:
    Operator base(OpKind kind, const std::string& name) const {
        Operator op;
        op.kind = kind;
        op.name = name;
        op.layer = tag_layer_;
        op.dtype = DType::bf16;
        return op;
    }
    void push(Operator op, Role role = Role::both) { out_.push_back({std::move(op), role}); }

    // y[m, n] = x[m, k] W[n, k]^T. FP8 GEMMs read FP8 inputs and weights and write BF16.
    Operator gemm_op(OpKind kind, const std::string& name, std::int64_t mm, std::int64_t n, std::int64_t k,
                     bool quantizable) const {
        Operator op = base(kind, name);
        const bool f8 = fp8_ && quantizable;
        op.dtype = f8 ? DType::fp8 : DType::bf16;
        op.m = mm;
        op.n = n;
        op.k = k;
        op.flops = Flops(2.0 * d(mm) * d(n) * d(k));
        const double in = f8 ? kFp8BytesPerElement : 2.0;
        op.bytes_read = Bytes(d(mm) * d(k) * in + d(n) * d(k) * in);
        op.bytes_written = Bytes(d(mm) * d(n) * 2.0);
        return op;
    }
    void gemm(const std::string& name, std::int64_t mm, std::int64_t n, std::int64_t k) {
        quantize(name, mm, k);
        push(gemm_op(OpKind::gemm, name, mm, n, k, true));
    }
    // `groups` GEMMs sharing n and k; `rows` tokens in all (m is the per-group mean, rounded up).
    void grouped_gemm(const std::string& name, std::int64_t groups, double rows, std::int64_t n, std::int64_t k,
                      bool quantizable = true, bool input_quantized = false) {
        if (quantizable && !input_quantized) quantize(name, static_cast<std::int64_t>(std::ceil(rows)), k);
        Operator op = gemm_op(OpKind::grouped_gemm, name, static_cast<std::int64_t>(std::ceil(rows / d(groups))), n, k,
                              quantizable);
        op.groups = groups;
        op.flops = Flops(2.0 * rows * d(n) * d(k));
        const double in = op.dtype == DType::fp8 ? kFp8BytesPerElement : 2.0;
        op.bytes_read = Bytes(rows * d(k) * in + d(groups) * d(n) * d(k) * in);
        op.bytes_written = Bytes(rows * d(n) * 2.0);
        push(op);
    }
    void quantize(const std::string& gemm_name, std::int64_t mm, std::int64_t k) {
        if (!fp8_) return;
        Operator op = base(OpKind::quantize_fp8, gemm_name + ".quantize");
        op.m = mm;
        op.n = k;
        op.flops = Flops(2.0 * d(mm) * d(k));  // scale and cast (plus the per-tile max)
        op.bytes_read = Bytes(d(mm) * d(k) * 2);
        op.bytes_written = Bytes(d(mm) * d(k) * kFp8BytesPerElement);
        push(op);
    }
    // Element-wise operator over an m x n tensor, with `inputs` tensors read and one written.
    void elementwise(OpKind kind, const std::string& name, std::int64_t mm, std::int64_t n, double flops_per_element,
                     double inputs = 1) {
        Operator op = base(kind, name);
        op.m = mm;
        op.n = n;
        op.flops = Flops(flops_per_element * d(mm) * d(n));
        op.bytes_read = Bytes(inputs * d(mm) * d(n) * 2);
        op.bytes_written = Bytes(d(mm) * d(n) * 2);
        push(op);
    }
    // Rotary embedding of `heads` heads of `dim` dims for mm tokens (the cost model's rope shape).
    void rope(const std::string& name, std::int64_t mm, std::int64_t heads, std::int64_t dim) {
        elementwise(OpKind::rope, name, mm, heads * dim, 3);
        out_.back().op.heads = heads;
        out_.back().op.head_dim = dim;
    }
    void norm(const std::string& name, std::int64_t mm, std::int64_t n) {
        elementwise(m_.norm == NormKind::layernorm ? OpKind::layernorm : OpKind::rmsnorm, name, mm, n, 4);
    }
    // `group`: the GPUs of a TP collective (0: the layout's tp).
    void collective(CommKind kind, const std::string& name, double payload, Role role, int group = 0) {
        Operator op = base(OpKind::collective, name);
        op.comm = kind;
        op.comm_bytes = Bytes(payload);
        if (kind != CommKind::ep_dispatch && kind != CommKind::ep_combine) op.group = group > 0 ? group : o_.layout.tp;
        op.bytes_read = Bytes(payload);
        op.bytes_written = Bytes(payload);
        push(op, role);
    }

    // Entering a tensor-parallel block: with sequence parallelism the sequence shards are all-gathered;
    // otherwise the block input is replicated and only its gradient is all-reduced (Megatron's f).
    void tp_block_begin(const std::string& name, int tp, std::int64_t rows) {
        if (tp <= 1) return;
        const double payload = d(rows) * d(m_.hidden) * 2;
        if (sp_) {
            collective(CommKind::tp_all_gather, name + ".tp_all_gather", payload, Role::both, tp);
        } else if (training_) {
            collective(CommKind::tp_all_reduce, name + ".tp_all_reduce.grad", payload, Role::backward_only, tp);
        }
    }
    // Leaving it: partial sums are all-reduced (Megatron's g), or reduce-scattered with sequence parallelism.
    void tp_block_end(const std::string& name, int tp, std::int64_t rows) {
        if (tp <= 1) return;
        const double payload = d(rows) * d(m_.hidden) * 2;
        // Without sequence parallelism the backward of this all-reduce is the identity.
        collective(sp_ ? CommKind::tp_reduce_scatter : CommKind::tp_all_reduce,
                   name + (sp_ ? ".tp_reduce_scatter" : ".tp_all_reduce"), payload,
                   sp_ ? Role::both : Role::forward_only, tp);
    }

    // Context lengths seen by a decode step in this layer (chunked layers see at most one chunk).
    std::vector<std::int64_t> decode_contexts(int layer) const {
        std::vector<std::int64_t> c;
        const bool chunked = m_.is_chunked_layer(layer);
        for (auto kv : o_.batch.kv_lengths) {
            const std::int64_t attended = kv + 1;  // the cached tokens and the new one
            c.push_back(chunked ? (kv % m_.attention.chunk_size) + 1 : attended);
        }
        return c;
    }

    // `shared_latent`: weight-absorbed MLA decode, where one cached latent of qk_dim is K and its first
    // v_dim columns are V (FlashMLA); otherwise K and V are separate (cache_dim_per_token counts both).
    void attention_core(int layer, std::int64_t heads, std::int64_t kv_heads, std::int64_t qk_dim, std::int64_t v_dim,
                        std::int64_t cache_dim_per_token, const std::string& name, bool shared_latent = false) {
        const bool decode = o_.phase == Phase::decode;
        const std::int64_t chunk = m_.is_chunked_layer(layer) ? m_.attention.chunk_size : 0;
        Operator op = base(decode ? (shared_latent ? OpKind::mla_decode : OpKind::attn_decode) : OpKind::attn_prefill,
                           name);
        op.heads = heads;
        op.kv_heads = kv_heads;
        op.head_dim = qk_dim;
        op.kv_dtype = o_.kv_dtype;
        const double kv_e = o_.kv_dtype == DType::fp8 ? 1.0 : o_.kv_dtype == DType::fp32 ? 4.0 : 2.0;
        if (v_dim != qk_dim) op.n = v_dim;  // the kernel shape's value head dim (kernels/README.md)
        const double per_pair = 2.0 * d(heads) * d(qk_dim + v_dim);
        if (decode) {
            // Each request's query tokens (1 + speculative drafts) attend to its cache, read once per step.
            const auto ctx = decode_contexts(layer);
            const std::int64_t q = o_.batch.query_tokens;
            double pairs = 0;
            for (auto c : ctx) pairs += d(c);
            op.batch = static_cast<std::int64_t>(ctx.size());
            op.seq = q;
            op.context = ctx.empty() ? 0 : static_cast<std::int64_t>(std::llround(pairs / d(ctx.size())));
            op.flops = Flops(per_pair * pairs * d(q));
            op.bytes_read = Bytes(pairs * d(cache_dim_per_token) * kv_e + d(op.batch * q) * d(heads) * d(qk_dim) * 2);
            op.bytes_written = Bytes(d(op.batch * q) * d(heads) * d(v_dim) * 2);
        } else {
            const auto& b = o_.batch;
            op.batch = b.sequences;
            op.seq = b.seq;
            op.context = b.cached_prefix;
            const double pairs = attended_pairs(b.cached_prefix, b.seq, chunk) * d(b.sequences);
            op.flops = Flops(per_pair * pairs);
            const double kv_tokens = d(b.sequences) * d(chunk > 0 ? std::min(b.cached_prefix + b.seq, chunk)
                                                                  : b.cached_prefix + b.seq);
            op.bytes_read = Bytes(d(tokens_) * d(heads) * d(qk_dim) * 2 + kv_tokens * d(cache_dim_per_token) * kv_e);
            op.bytes_written = Bytes(d(tokens_) * d(heads) * d(v_dim) * 2);
        }
        push(op);
    }

    void attention_block(int layer) {
        const auto& a = m_.attention;
        const int attn_tp = o_.layout.attn_tp();
        const std::int64_t T = tokens_;
        const std::int64_t h = m_.hidden;
        const std::string p = prefix_ + "attn.";
        norm(prefix_ + "input_norm", T, h);
        tp_block_begin(p + "in", attn_tp, T);
        const std::int64_t heads = a.heads / attn_tp;
        if (a.kind == AttentionKind::mla) {
            const std::int64_t qk = a.qk_head_dim();
            if (a.q_lora_rank > 0) {
                gemm(p + "q_a_proj", T, a.q_lora_rank, h);
                norm(p + "q_a_norm", T, a.q_lora_rank);
                gemm(p + "q_b_proj", T, heads * qk, a.q_lora_rank);
            } else {
                gemm(p + "q_proj", T, heads * qk, h);
            }
            gemm(p + "kv_a_proj", T, a.kv_lora_rank + a.qk_rope_head_dim, h);
            norm(p + "kv_a_norm", T, a.kv_lora_rank);
            rope(p + "rope", T, heads + 1, a.qk_rope_head_dim);  // queries' RoPE part and the shared k_pe
            if (o_.phase == Phase::decode) {
                // Weight-absorbed MLA (DeepSeek-V2 section 2.1.2; FlashMLA): W_UK folds into the query and
                // W_UV into the output, so attention runs over the 512 + 64 latent as one shared KV head.
                grouped_gemm(p + "q_absorb_uk", heads, d(T) * d(heads), a.kv_lora_rank, a.qk_nope_head_dim, false);
                attention_core(layer, heads, 1, a.kv_lora_rank + a.qk_rope_head_dim, a.kv_lora_rank,
                               a.kv_lora_rank + a.qk_rope_head_dim, p + "mla_decode", true);
                grouped_gemm(p + "out_absorb_uv", heads, d(T) * d(heads), a.v_head_dim, a.kv_lora_rank, false);
            } else {
                // Naive form: up-project the latent of every attended token (cached prefix included) to K, V.
                const std::int64_t kv_rows = T + o_.batch.sequences * o_.batch.cached_prefix;
                gemm(p + "kv_b_proj", kv_rows, heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank);
                attention_core(layer, heads, heads, qk, a.v_head_dim, a.kv_lora_rank + a.qk_rope_head_dim,
                               p + "mla_prefill");
            }
            gemm(p + "o_proj", T, h, heads * a.v_head_dim);
        } else {
            const std::int64_t kv = std::max<std::int64_t>(1, a.kv_heads / attn_tp);
            gemm(p + "qkv_proj", T, (heads + 2 * kv) * a.head_dim, h);
            if (a.qk_norm) norm(p + "qk_norm", T, (heads + kv) * a.head_dim);
            if (m_.uses_rope(layer)) rope(p + "rope", T, heads + kv, a.head_dim);
            attention_core(layer, heads, kv, a.head_dim, a.head_dim, 2 * kv * a.head_dim, p + "attention");
            gemm(p + "o_proj", T, h, heads * a.head_dim);
        }
        tp_block_end(p + "out", attn_tp, T);
        elementwise(OpKind::residual_add, prefix_ + "attn.residual_add", T, h, 1, 2);
    }

    void dense_ffn(const std::string& p, std::int64_t width, int tp, std::int64_t rows) {
        const std::int64_t w = width / tp;
        if (m_.activation == FfnActivation::swiglu) {
            gemm(p + "gate_up_proj", rows, 2 * w, m_.hidden);
            elementwise(OpKind::silu_mul, p + "silu_mul", rows, w, 5, 2);
        } else {
            gemm(p + "fc1", rows, w, m_.hidden);
            elementwise(OpKind::gelu, p + "gelu", rows, w, 8);
        }
        gemm(p + (m_.activation == FfnActivation::swiglu ? "down_proj" : "fc2"), rows, m_.hidden, w);
    }

    void ffn_block(int layer) {
        const std::int64_t T = tokens_;
        const std::int64_t h = m_.hidden;
        const auto& L = o_.layout;
        norm(prefix_ + "post_attention_norm", T, h);
        if (!m_.is_moe_layer(layer)) {
            const std::string p = prefix_ + "mlp.";
            // The dense FFN runs tensor-parallel over its own group of dense_tp GPUs (default: the whole
            // tp). Under attention data parallelism that group gathers the tokens of its dense_tp / attn_tp
            // attention ranks and reduce-scatters the result back; with dense_tp = attn_tp each attention
            // group keeps its tokens (dense_tp 1: a whole copy of the FFN on every GPU, no communication).
            const int dense_tp = L.dense_ffn_tp();
            const int gathered = dense_tp / L.attn_tp();
            const std::int64_t rows = T * gathered;
            if (gathered > 1)
                collective(CommKind::tp_all_gather, p + "dp_all_gather", d(rows) * d(h) * 2, Role::both, dense_tp);
            else
                tp_block_begin(p + "in", dense_tp, T);
            dense_ffn(p, m_.intermediate, dense_tp, rows);
            if (gathered > 1)
                collective(CommKind::tp_reduce_scatter, p + "dp_reduce_scatter", d(rows) * d(h) * 2, Role::both,
                           dense_tp);
            else
                tp_block_end(p + "out", dense_tp, T);
        } else {
            const auto& e = m_.moe;
            const std::string p = prefix_ + "moe.";
            Operator gate = gemm_op(OpKind::moe_gate, p + "gate", T, e.routed_experts, h, false);
            gate.bytes_written = Bytes(d(T) * e.routed_experts * 4);  // FP32 router logits
            push(gate);
            Operator topk = base(OpKind::moe_topk, p + "topk");
            topk.m = T;
            topk.n = e.routed_experts;
            topk.k = e.top_k;
            topk.groups = e.n_group;
            topk.flops = Flops(d(T) * e.routed_experts * 4);  // score function, bias, group and top-k selection
            topk.bytes_read = Bytes(d(T) * e.routed_experts * 4);
            topk.bytes_written = Bytes(d(T) * e.top_k * 8);  // expert index and weight
            topk.dtype = DType::fp32;
            push(topk);
            const int attn_tp = L.attn_tp();
            if (e.shared_experts > 0) {
                const std::int64_t width = e.shared_experts * (e.shared_intermediate > 0 ? e.shared_intermediate : e.expert_intermediate);
                tp_block_begin(p + "shared.in", attn_tp, T);
                dense_ffn(p + "shared_experts.", width, attn_tp, T);
                tp_block_end(p + "shared.out", attn_tp, T);
            }
            const double routed = d(T) * e.top_k;  // copies this rank sends, and (uniform routing) receives
            // Physical experts on this rank (redundant replicas included): the groups of its GEMMs,
            // over which the rank's routed tokens spread.
            const std::int64_t local = L.experts_per_rank(m_);
            // FP8 tokens are quantized once, before the dispatch (DeepEP sends FP8 with scales).
            if (fp8_) quantize(p + "dispatch", T, h);
            // Permute / unpermute shapes as the cost model reads them: m tokens, n hidden, k top-k.
            elementwise(OpKind::moe_permute, p + "permute", static_cast<std::int64_t>(routed), h, 0);
            out_.back().op.m = T;
            out_.back().op.k = e.top_k;
            if (L.ep > 1) collective(CommKind::ep_dispatch, p + "ep_dispatch", routed * d(h) * act_bytes_, Role::both);
            const std::int64_t w = e.expert_intermediate / L.expert_tp;
            if (m_.activation == FfnActivation::swiglu) {
                grouped_gemm(p + "experts.gate_up_proj", local, routed, 2 * w, h, true, fp8_);
                elementwise(OpKind::silu_mul, p + "experts.silu_mul", static_cast<std::int64_t>(routed), w, 5, 2);
            } else {
                grouped_gemm(p + "experts.fc1", local, routed, w, h, true, fp8_);
                elementwise(OpKind::gelu, p + "experts.gelu", static_cast<std::int64_t>(routed), w, 8);
            }
            grouped_gemm(p + "experts.down_proj", local, routed, h, w);
            if (L.ep > 1) collective(CommKind::ep_combine, p + "ep_combine", routed * d(h) * 2, Role::both);
            // Weighted sum of the top-k expert outputs back into token order.
            elementwise(OpKind::moe_unpermute, p + "unpermute", static_cast<std::int64_t>(routed), h, 2);
            out_.back().op.m = T;
            out_.back().op.k = e.top_k;
        }
        elementwise(OpKind::residual_add, prefix_ + "ffn.residual_add", T, h, 1, 2);
    }

    const ModelSpec& m_;
    const OperatorGraphOptions& o_;
    std::vector<Tagged>& out_;
    std::int64_t tokens_ = 0;
    bool fp8_ = false;
    double act_bytes_ = 2;
    bool training_ = false;
    bool sp_ = false;
    std::string prefix_;
    int tag_layer_ = -1;
};

bool is_matmul(OpKind k) {
    return k == OpKind::gemm || k == OpKind::grouped_gemm || k == OpKind::moe_gate || k == OpKind::lm_head;
}

// Backward operators from the forward ones (given in forward order).
std::vector<Operator> derive(const std::vector<Tagged>& fwd, Phase phase) {
    std::vector<Operator> out;
    if (phase == Phase::train_forward || phase == Phase::prefill || phase == Phase::decode) {
        for (const auto& t : fwd)
            if (t.role != Role::backward_only) out.push_back(t.op);
        return out;
    }
    for (auto it = fwd.rbegin(); it != fwd.rend(); ++it) {
        const Tagged& t = *it;
        Operator op = t.op;
        if (phase == Phase::train_backward_weight) {
            // dW[n, k] = dY[m, n]^T X[m, k]: the token dimension becomes the reduction.
            if (!is_matmul(op.kind) && op.kind != OpKind::embedding) continue;
            op.name += ".wgrad";
            if (op.kind == OpKind::embedding) {
                op.flops = Flops(d(op.m) * d(op.n));  // scatter-add of the output gradient into the table
                out.push_back(op);
                continue;
            }
            const std::int64_t rows = op.m;
            op.m = t.op.n;
            op.n = t.op.k;
            op.k = rows;
            out.push_back(op);
            continue;
        }
        // B: input gradients, in reverse order.
        if (op.kind == OpKind::embedding) continue;
        if (op.kind == OpKind::collective) {
            if (t.role == Role::forward_only) continue;
            switch (op.comm) {
                case CommKind::tp_all_gather: op.comm = CommKind::tp_reduce_scatter; break;
                case CommKind::tp_reduce_scatter: op.comm = CommKind::tp_all_gather; break;
                case CommKind::ep_dispatch: op.comm = CommKind::ep_combine; break;
                case CommKind::ep_combine: op.comm = CommKind::ep_dispatch; break;
                default: break;
            }
            op.name += ".bwd";
            out.push_back(op);
            continue;
        }
        if (t.role == Role::backward_only) continue;
        op.name += is_matmul(op.kind) ? ".dgrad" : ".bwd";
        if (is_matmul(op.kind)) {
            // dX[m, k] = dY[m, n] W[n, k]
            op.n = t.op.k;
            op.k = t.op.n;
        } else if (op.kind == OpKind::attn_prefill) {
            // FlashAttention-2's backward: S = QK^T recomputed, then dV, dP, dQ and dK, five matmuls against
            // the forward's two. It reads Q, K, V, O and dO and writes dQ, dK and dV (kernels/operator_work.cpp
            // counts the same eight tensors): twice the forward's bytes.
            op.kind = OpKind::attn_prefill_bwd;
            op.flops = op.flops * kAttentionBackwardRatio;
            op.bytes_read = t.op.bytes_read + t.op.bytes_written * 2.0;  // Q, K, V; O and dO
            op.bytes_written = t.op.bytes_read;                          // dQ, dK, dV
        } else if (op.kind == OpKind::cross_entropy) {
            // The softmax times the loss gradient, then cast to BF16 for the LM head's dgrad (kCrossEntropy*).
            const double logits = d(op.m) * d(op.n);
            op.flops = Flops(2.0 * logits);
            op.bytes_read = Bytes(kCrossEntropyBackwardRead * logits);
            op.bytes_written = Bytes(kCrossEntropyBackwardWritten * logits);
        } else if (op.kind == OpKind::attn_decode || op.kind == OpKind::mla_decode) {
            throw std::logic_error("decode has no backward pass");
        } else {
            // Element-wise: the input gradient reads the output gradient and the forward's inputs again.
            // No table measures these backwards; the forward kernel's time is scaled by the bytes.
            op.flops = op.flops * 2.0;
            op.bytes_read = op.bytes_read * 2.0;
            const Bytes forward = t.op.bytes_read + t.op.bytes_written;
            if (forward.value() > 0) op.kernel_scale = (op.bytes_read + op.bytes_written) / forward;
        }
        out.push_back(op);
    }
    return out;
}

void check(const ModelSpec& m, const OperatorGraphOptions& o) {
    validate_layout(m, o.layout);
    if (o.phase == Phase::decode) {
        if (o.batch.kv_lengths.empty()) throw std::invalid_argument("decode needs at least one request in kv_lengths");
        if (o.batch.query_tokens < 1) throw std::invalid_argument("decode needs query_tokens >= 1 per request");
    } else if (o.batch.sequences < 1 || o.batch.seq < 1) {
        throw std::invalid_argument(fmt::format("{} needs sequences >= 1 and seq >= 1", to_string(o.phase)));
    }
    if ((o.phase == Phase::train_forward || o.phase == Phase::train_backward_input ||
         o.phase == Phase::train_backward_weight) && o.batch.cached_prefix != 0)
        throw std::invalid_argument("training has no cached prefix");
}

}  // namespace

std::vector<Operator> layer_operators(const ModelSpec& m, int layer, const OperatorGraphOptions& o) {
    check(m, o);
    if (layer < o.layout.first_layer || layer >= o.layout.end_layer(m))
        throw std::invalid_argument(fmt::format("layer {} is outside the stage's layers [{}, {})", layer,
                                                o.layout.first_layer, o.layout.end_layer(m)));
    std::vector<Tagged> fwd;
    LayerBuilder b(m, o, fwd);
    b.layer(layer, fmt::format("L{}.", layer), layer);
    return derive(fwd, o.phase);
}

std::vector<Operator> stage_operators(const ModelSpec& m, const OperatorGraphOptions& o) {
    check(m, o);
    std::vector<Tagged> fwd;
    LayerBuilder b(m, o, fwd);
    const auto& L = o.layout;
    if (L.has_embedding()) {
        b.set_tag_layer(-1);
        b.embedding("embedding");
    }
    for (int i = L.first_layer; i < L.end_layer(m); ++i) b.layer(i, fmt::format("L{}.", i), i);
    if (L.has_lm_head(m)) {
        b.set_tag_layer(-1);
        b.head("");
    }
    if (L.include_mtp && m.mtp_layers > 0) {
        // DeepSeek-V3 MTP module k (section 2.2): embed the shifted tokens, combine with the previous
        // depth's hidden state (eh_proj over the concatenation), one MoE layer, the shared head.
        for (int k = 0; k < m.mtp_layers; ++k) {
            const std::string p = fmt::format("MTP{}.", k);
            b.set_tag_layer(m.layers + k);
            b.embedding(p + "embedding");
            b.mtp_projection(p);
            b.layer(m.layers - 1, p, m.layers + k);
            b.set_tag_layer(m.layers + k);
            b.head(p);
        }
    }
    return derive(fwd, o.phase);
}

}  // namespace clustersim
