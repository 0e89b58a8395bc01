// FLOP and byte counts per operator; the formulas are the standard ones (a GEMM is 2mnk FLOPs,
// causal attention does half the QK^T and PV products of the new tokens, and all of them against a
// cached prefix), written out per op in kernels/README.md.
#include "kernels/operator_work.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace clustersim {
namespace {

double need(const KernelShape& s, std::int64_t value, const char* field) {
    if (value <= 0)
        throw std::invalid_argument(fmt::format("operator {} needs a positive \"{}\"", s.op, field));
    return static_cast<double>(value);
}

// Attention's value head dimension: `n` where it differs from head_dim (MLA: 128 against 192), else head_dim.
double value_head_dim(const KernelShape& s) {
    return static_cast<double>(s.n > 0 ? s.n : s.head_dim);
}

// Decode: query tokens per request (`seq`; empty is one).
double query_tokens(const KernelShape& s) {
    return static_cast<double>(std::max<std::int64_t>(1, s.seq));
}

}  // namespace

double element_bytes(const std::string& dtype) {
    if (dtype == "fp8") return 1.0;
    if (dtype == "fp32") return 4.0;
    return 2.0;
}

OperatorWork operator_work(const KernelShape& s) {
    const double e = element_bytes(s.dtype);
    constexpr double kOut = 2.0;  // GEMM and attention outputs are BF16 (FP8 GEMMs write BF16, as DeepGEMM does)
    OperatorWork w;
    if (s.op == "gemm" || s.op == "grouped_gemm" || s.op == "grouped_gemm_skewed") {
        // grouped_gemm_skewed: the same work, m the mean tokens per expert, spread unevenly (the
        // distribution is stated in the table's method line).
        const double g = s.op != "gemm" ? need(s, s.groups, "groups") : 1.0;
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n"), k = need(s, s.k, "k");
        w.flops = Flops(g * 2.0 * m * n * k);
        w.bytes = Bytes(g * ((m * k + n * k) * e + m * n * kOut));
        w.uses_tensor_cores = true;
    } else if (s.op == "attn_prefill" || s.op == "attn_prefill_bwd") {
        const double b = need(s, s.batch, "batch"), h = need(s, s.heads, "heads"), d = need(s, s.head_dim, "head_dim");
        const double kvh = need(s, s.kv_heads, "kv_heads"), t = need(s, s.seq, "seq");
        const double dv = value_head_dim(s);
        const double c = static_cast<double>(std::max<std::int64_t>(0, s.context));  // cached prefix (0 in training)
        // QK^T is 2*d and PV 2*dv FLOPs per (query, key) pair. With `c` cached tokens every new query sees the
        // whole prefix and, causally, the new tokens up to itself: t*(t+1)/2 + t*c pairs per head.
        const double pairs = t * (t + 1.0) / 2.0 + t * c;
        // Forward: read Q and write O over the t new tokens (h heads), read K and V over all t + c tokens.
        const double forward_bytes = b * (h * t * (d + dv) + kvh * (t + c) * (d + dv)) * e;
        if (s.op == "attn_prefill") {
            w.flops = Flops(b * h * 2.0 * (d + dv) * pairs);
            w.bytes = Bytes(forward_bytes);
        } else {
            // FlashAttention-2's backward (Dao 2023, section 3.2) runs five matmuls per pair against the
            // forward's two (S = QK^T recomputed, dV, dP, dQ, dK): 2.5x the forward's FLOPs. It reads Q, K, V,
            // O and dO and writes dQ, dK and dV: eight tensors against the forward's four, the same sizes
            // pairwise (O, dO, dQ like Q; dK, dV like K, V), so twice the forward's bytes.
            w.flops = Flops(2.5 * b * h * 2.0 * (d + dv) * pairs);
            w.bytes = Bytes(2.0 * forward_bytes);
        }
        w.uses_tensor_cores = true;
    } else if (s.op == "attn_decode") {
        // `seq` query tokens per request (1, or 1 + the speculative drafts) over one read of the request's cache.
        const double b = need(s, s.batch, "batch"), h = need(s, s.heads, "heads"), d = need(s, s.head_dim, "head_dim");
        const double kvh = need(s, s.kv_heads, "kv_heads"), c = need(s, s.context, "context");
        const double q = query_tokens(s), dv = value_head_dim(s);
        const double kv_e = s.kv_dtype.empty() ? e : element_bytes(s.kv_dtype);
        w.flops = Flops(b * q * h * 2.0 * (d + dv) * c);
        w.bytes = Bytes(b * (kvh * c * (d + dv) * kv_e + q * h * (d + dv) * e));  // K and V read once; Q in, O out
        w.uses_tensor_cores = true;
    } else if (s.op == "mla_decode") {
        // Weight-absorbed MLA decode (FlashMLA's dense decoding kernel, "MQA mode"): each cached token is one
        // latent of head_dim (576 for DeepSeek-V3: 512 + 64 RoPE) serving as K for every query head, and its
        // first n (512) columns as V. FlashMLA's deep dive (deepseek-ai/FlashMLA,
        // docs/20250422-new-kernel-deep-dive.md) counts 2 h s_q s_k (d_k + d_v) FLOPs and reads the latent once:
        // bytes (h s_q d_k + s_k d_k + h s_q d_v) x 2 per request.
        const double b = need(s, s.batch, "batch"), h = need(s, s.heads, "heads"), d = need(s, s.head_dim, "head_dim");
        const double c = need(s, s.context, "context"), dv = need(s, s.n, "n");
        const double q = query_tokens(s);
        const double kv_e = s.kv_dtype.empty() ? e : element_bytes(s.kv_dtype);
        w.flops = Flops(b * q * h * 2.0 * (d + dv) * c);
        w.bytes = Bytes(b * (c * d * kv_e + q * h * (d + dv) * e));
        w.uses_tensor_cores = true;
    } else if (s.op == "copy") {
        w.bytes = Bytes(2.0 * need(s, s.bytes, "bytes"));  // read and write
    } else if (s.op == "rmsnorm") {
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n");
        w.flops = Flops(4.0 * m * n);
        w.bytes = Bytes((2.0 * m * n + n) * e);  // read x, write y, read the weight
    } else if (s.op == "silu_mul") {
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n");  // n = intermediate size
        w.flops = Flops(6.0 * m * n);
        w.bytes = Bytes(3.0 * m * n * e);  // read gate and up, write the product
    } else if (s.op == "rope") {
        const double m = need(s, s.m, "m"), h = need(s, s.heads, "heads"), d = need(s, s.head_dim, "head_dim");
        w.flops = Flops(3.0 * m * h * d);
        w.bytes = Bytes(2.0 * m * h * d * e + m * d * 4.0);  // in place on q/k; cos/sin tables in fp32
    } else if (s.op == "residual_add") {
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n");
        w.flops = Flops(m * n);
        w.bytes = Bytes(3.0 * m * n * e);
    } else if (s.op == "fp8_quant") {
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n");
        w.flops = Flops(3.0 * m * n);
        w.bytes = Bytes(m * n * 2.0 + m * n * 1.0 + m * (n / 128.0) * 4.0);  // bf16 in, fp8 out, 1x128 fp32 scales
    } else if (s.op == "moe_gate") {
        // Router GEMM (m tokens x n experts x k hidden) in the table's dtype.
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n"), k = need(s, s.k, "k");
        w.flops = Flops(2.0 * m * n * k);
        w.bytes = Bytes((m * k + n * k) * e + m * n * 4.0);
        w.uses_tensor_cores = true;
    } else if (s.op == "moe_topk") {
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n"), k = need(s, s.k, "k");  // n experts, k = top-k
        w.flops = Flops(m * n * 4.0);
        w.bytes = Bytes(m * n * e + m * k * 8.0);  // scores in; (index int32, weight fp32) out
    } else if (s.op == "moe_permute" || s.op == "moe_unpermute") {
        const double m = need(s, s.m, "m"), n = need(s, s.n, "n"), k = need(s, s.k, "k");  // n hidden, k = top-k
        w.flops = Flops(s.op == "moe_unpermute" ? 2.0 * m * k * n : 0.0);  // weighted sum on the way back
        w.bytes = Bytes((m * n + m * k * n) * e + m * k * 8.0);
    } else {
        throw std::invalid_argument("unknown operator \"" + s.op + "\"");
    }
    return w;
}

}  // namespace clustersim
