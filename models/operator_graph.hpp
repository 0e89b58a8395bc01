// Operator graphs: the ordered operators of one decoder layer, and of a pipeline stage, for a model,
// a parallel layout, a phase and a precision, with shapes, FLOPs, bytes and communication points.
//
// Shapes follow the kernel cost model's query (kernels/): op,dtype,m,n,k,groups,batch,heads,kv_heads,
// head_dim,seq,context,bytes. gemm: m tokens, n output features, k input features (y = x W^T);
// grouped_gemm: `groups` experts (or heads) each with m tokens; attn_prefill: `batch` sequences of
// `seq` new tokens after `context` cached ones (n: the value head dim where it differs from head_dim);
// attn_decode: `seq` query tokens (1, or 1 + speculative drafts) for each of `batch` requests over
// `context` cached tokens (mean when lengths differ; FLOPs and bytes use every length); mla_decode: the
// same for weight-absorbed MLA, one shared latent of head_dim per cached token, V its first n columns.
// Communication operators (kind collective) mark where the simulator inserts a collective; their
// payload is comm_bytes per rank. Operators run in the order given.
#pragma once

#include "models/model_spec.hpp"
#include "sim/core/units.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace clustersim {

enum class OpKind {
    gemm,
    grouped_gemm,
    attn_prefill,
    attn_prefill_bwd,  // the input-gradient pass of attn_prefill (training): its own kernel, not the forward's
    attn_decode,
    mla_decode,  // weight-absorbed MLA decode (FlashMLA): one latent per cached token is K and V
    rmsnorm,
    layernorm,
    rope,
    silu_mul,
    gelu,
    residual_add,
    quantize_fp8,
    moe_gate,
    moe_topk,
    moe_permute,
    moe_unpermute,
    embedding,
    lm_head,
    cross_entropy,  // the training loss over the LM head's logits (memory-bound; priced by its own bytes)
    collective,
};

enum class CommKind { none, tp_all_reduce, tp_all_gather, tp_reduce_scatter, ep_dispatch, ep_combine };

enum class DType { bf16, fp8, fp32 };
enum class Precision { bf16, fp8 };  // of the GEMMs; FP8 adds quantize operators before them (DeepSeek-V3 4.1)

enum class Phase {
    train_forward,
    train_backward_input,   // B: gradients with respect to activations (zero-bubble / DualPipe split)
    train_backward_weight,  // W: gradients with respect to weights
    prefill,
    decode,
};

const char* to_string(OpKind k);
const char* to_string(CommKind k);
const char* to_string(DType d);
const char* to_string(Phase p);

struct Operator {
    OpKind kind = OpKind::gemm;
    std::string name;  // "L3.attn.q_b_proj", "L3.moe.experts.gate_up", "L3.tp_all_reduce.attn"
    DType dtype = DType::bf16;
    DType kv_dtype = DType::bf16;  // attention: the KV cache's element type (OperatorGraphOptions::kv_dtype)
    int layer = -1;  // -1 for embedding, LM head; layers + i for MTP module i
    std::int64_t m = 0, n = 0, k = 0, groups = 0, batch = 0, heads = 0, kv_heads = 0, head_dim = 0, seq = 0,
                 context = 0;
    Flops flops;
    Bytes bytes_read;
    Bytes bytes_written;
    // The kernel cost model is queried with the forward kernel's shape for the backward of an element-wise
    // operator (no tables exist for those backwards); its answer is multiplied by kernel_scale, the
    // backward's HBM bytes over the forward's (they are memory-bound). 1 for every forward operator, for
    // matmuls (their backward shapes are queried as GEMMs) and for attn_prefill_bwd (its own kernel).
    // Operators without a kernel table (layernorm, gelu, cross_entropy) are priced by their own bytes and ignore it.
    double kernel_scale = 1.0;
    CommKind comm = CommKind::none;
    Bytes comm_bytes;  // payload per rank for collectives
    int group = 0;     // GPUs taking part in a TP collective (attention's, the dense FFN's or the layout's tp)

    bool is_communication() const { return comm != CommKind::none; }
};

// The tokens one rank processes. Training and prefill: `sequences` sequences of `seq` new tokens,
// each after `cached_prefix` tokens already in the KV cache (prefix caching; 0 in training).
// Decode: one new token per request, with `kv_lengths[i]` cached tokens for request i.
struct BatchShape {
    std::int64_t sequences = 1;
    std::int64_t seq = 0;
    std::int64_t cached_prefix = 0;
    std::vector<std::int64_t> kv_lengths;
    // Decode: query tokens per request in one step (1 + speculative drafts); they read the cache once.
    std::int64_t query_tokens = 1;

    std::int64_t tokens(Phase phase) const;
};

struct OperatorGraphOptions {
    Phase phase = Phase::prefill;
    Precision precision = Precision::bf16;
    ParallelLayout layout;
    BatchShape batch;
    DType kv_dtype = DType::bf16;  // the KV cache's element type (inference): what decode attention reads
};

// The operators of decoder layer `layer` on one rank (layer must be inside the layout's range).
std::vector<Operator> layer_operators(const ModelSpec& m, int layer, const OperatorGraphOptions& options);
// The operators of the whole stage: embedding (first stage), its layers, final norm and LM head (last
// stage), and the MTP modules when layout.include_mtp. Backward phases list operators in backward order.
std::vector<Operator> stage_operators(const ModelSpec& m, const OperatorGraphOptions& options);

Flops total_flops(const std::vector<Operator>& ops);

// The operator name the kernel cost model's tables use for `op` (kernels/calibration_table.cpp:
// quantize_fp8 is "fp8_quant", lm_head a "gemm", attn_prefill_bwd its own "attn_prefill_bwd"; the
// backward of an element-wise operator names its forward kernel, scaled by kernel_scale), or "" for
// operators it has no table for
// (layernorm, gelu, embedding, cross_entropy, collectives: the simulator times those by other means).
std::string kernel_op(const Operator& op);

}  // namespace clustersim
