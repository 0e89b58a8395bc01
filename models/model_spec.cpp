// Parameter, KV-cache, FLOP and activation accounting for a ModelSpec.
#include "models/model_spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace clustersim {

bool ModelSpec::is_moe_layer(int layer) const {
    if (moe.routed_experts <= 0) return false;
    if (layer < moe.first_dense_layers) return false;
    const int step = std::max(1, moe.layer_step);
    // Llama 4 (moe_layers = range(step - 1, layers, step)) and Qwen's decoder_sparse_step agree.
    return (layer + 1) % step == 0;
}

bool ModelSpec::is_chunked_layer(int layer) const {
    if (attention.chunk_size <= 0) return false;
    if (attention.global_layer_interval <= 0) return true;
    // transformers' Llama4TextConfig: no_rope_layers[i] = (i + 1) % no_rope_layer_interval != 0;
    // layers with RoPE use chunked attention, the NoPE layers attend globally.
    return (layer + 1) % attention.global_layer_interval != 0;
}

bool ModelSpec::uses_rope(int layer) const {
    if (position != PositionKind::rope) return false;
    if (attention.chunk_size > 0 && attention.global_layer_interval > 0) return is_chunked_layer(layer);
    return true;
}

int ModelSpec::moe_layer_count() const {
    int n = 0;
    for (int i = 0; i < layers; ++i) n += is_moe_layer(i) ? 1 : 0;
    return n;
}

namespace {

double d(std::int64_t v) { return static_cast<double>(v); }

double norm_params(const ModelSpec& m, double width) { return m.norm == NormKind::layernorm ? 2 * width : width; }

// Weights of the attention block split into what attention TP divides and what it replicates.
struct AttentionWeights {
    double split = 0;       // divided over attention TP (heads)
    double kv_split = 0;    // K/V projections of GQA: divided over min(attn_tp, kv_heads)
    double replicated = 0;  // MLA down-projections and their norms, biases of o_proj
    double matmul = 0;      // weights inside matrices (for FLOPs)
};

AttentionWeights attention_weights(const ModelSpec& m) {
    const auto& a = m.attention;
    const double h = d(m.hidden);
    AttentionWeights w;
    if (a.kind == AttentionKind::mla) {
        const double qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
        double q = 0;
        if (a.q_lora_rank > 0) {
            w.replicated += h * a.q_lora_rank + a.q_lora_rank;  // q_a_proj + q_a_layernorm (RMSNorm)
            q = d(a.q_lora_rank) * a.heads * qk;                // q_b_proj
            w.matmul += h * a.q_lora_rank;
        } else {
            q = h * a.heads * qk;
        }
        const double kv_a = h * (a.kv_lora_rank + a.qk_rope_head_dim);  // kv_a_proj_with_mqa
        w.replicated += kv_a + a.kv_lora_rank;                          // + kv_a_layernorm
        const double kv_b = d(a.kv_lora_rank) * a.heads * (a.qk_nope_head_dim + a.v_head_dim);
        const double o = d(a.heads) * a.v_head_dim * h;
        w.split = q + kv_b + o;
        w.matmul += kv_a + q + kv_b + o;
        return w;
    }
    const double q = h * a.heads * a.head_dim;
    const double kv = 2 * h * a.kv_heads * a.head_dim;
    const double o = d(a.heads) * a.head_dim * h;
    w.split = q + o;
    w.kv_split = kv;
    w.matmul = q + kv + o;
    if (a.qkv_bias || m.linear_bias) {
        w.split += d(a.heads) * a.head_dim;
        w.kv_split += 2.0 * a.kv_heads * a.head_dim;
    }
    if (m.linear_bias) w.replicated += h;                  // o_proj bias
    if (a.qk_norm) w.replicated += 2.0 * a.head_dim;       // q_norm, k_norm (Qwen3)
    return w;
}

double ffn_params(const ModelSpec& m, double width) {
    const double h = d(m.hidden);
    if (m.activation == FfnActivation::swiglu) return 3 * h * width;  // gate, up, down
    double p = 2 * h * width;
    if (m.linear_bias) p += width + h;
    return p;
}
double ffn_matmul(const ModelSpec& m, double width) {
    return (m.activation == FfnActivation::swiglu ? 3.0 : 2.0) * d(m.hidden) * width;
}

double shared_width(const ModelSpec& m) {
    return d(m.moe.shared_intermediate > 0 ? m.moe.shared_intermediate : m.moe.expert_intermediate);
}

double router_params(const ModelSpec& m) {
    return d(m.moe.routed_experts) * d(m.hidden) + (m.moe.gate_bias ? m.moe.routed_experts : 0);
}

// Matrix weights one token multiplies in `layer` (attention, FFN or router + shared + top-k experts).
double layer_matmul_active(const ModelSpec& m, int layer) {
    double w = attention_weights(m).matmul;
    if (m.is_moe_layer(layer)) {
        w += d(m.moe.routed_experts) * d(m.hidden);
        w += m.moe.shared_experts * ffn_matmul(m, shared_width(m));
        w += m.moe.top_k * ffn_matmul(m, d(m.moe.expert_intermediate));
    } else {
        w += ffn_matmul(m, d(m.intermediate));
    }
    return w;
}

double vision_params(const VisionEncoderSpec& v, std::int64_t text_hidden) {
    const double h = d(v.hidden);
    const double i = d(v.intermediate);
    // Per layer: q, k, v, o with biases; fc1, fc2 with biases; two LayerNorms (weight + bias).
    const double per_layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
    const double patches = v.patch_size > 0 ? d(v.image_size / v.patch_size) * d(v.image_size / v.patch_size) : 0;
    double p = v.layers * per_layer;
    p += d(v.channels) * v.patch_size * v.patch_size * h;  // unfold-convolution patch embedding, no bias
    p += h + (patches + 1) * h;                           // class embedding + positional embedding
    p += 4 * h;                                           // layernorm_pre, layernorm_post
    p += i * d(v.projector_input) + d(v.projector_output) * d(v.projector_output);  // pixel-shuffle MLP
    p += d(v.projector_output) * d(text_hidden);          // multi-modal projector into the text model
    return p;
}

double embedding_params(const ModelSpec& m) {
    double e = d(m.vocab) * d(m.hidden);
    if (m.position == PositionKind::learned) e += d(m.max_seq) * d(m.hidden);
    return e;
}

}  // namespace

LayerParams layer_params(const ModelSpec& m, int layer) {
    LayerParams p;
    const AttentionWeights a = attention_weights(m);
    p.attention = a.split + a.kv_split + a.replicated;
    p.norms = 2 * norm_params(m, d(m.hidden));
    if (m.is_moe_layer(layer)) {
        p.router = router_params(m);
        p.shared_experts = m.moe.shared_experts * ffn_params(m, shared_width(m));
        const double expert = ffn_params(m, d(m.moe.expert_intermediate));
        p.routed_experts = m.moe.routed_experts * expert;
        p.routed_active = m.moe.top_k * expert;
    } else {
        p.dense_ffn = ffn_params(m, d(m.intermediate));
    }
    return p;
}

ParameterCounts parameter_counts(const ModelSpec& m) {
    ParameterCounts c;
    c.embedding = embedding_params(m);
    c.lm_head = m.tied_embeddings ? 0 : d(m.vocab) * d(m.hidden);
    c.final_norm = norm_params(m, d(m.hidden));
    double active_layers = 0;
    for (int i = 0; i < m.layers; ++i) {
        const LayerParams l = layer_params(m, i);
        c.layers += l.total();
        active_layers += l.active();
    }
    if (m.vision) c.vision = vision_params(*m.vision, m.hidden);
    c.total = c.embedding + c.layers + c.final_norm + c.lm_head + c.vision;
    c.active = c.embedding + active_layers + c.final_norm + c.lm_head;
    if (m.mtp_layers > 0) {
        // DeepSeek-V3 paper section 2.2 and the checkpoint's layer 61: enorm, hnorm, eh_proj (2h -> h),
        // one MoE decoder layer and shared_head.norm; the checkpoint also stores copies of the
        // embedding and the output head, which the paper counts as shared with the main model.
        const double h = d(m.hidden);
        const double per_module = 3 * norm_params(m, h) + 2 * h * h + layer_params(m, m.layers - 1).total();
        c.mtp_unique = m.mtp_layers * per_module;
        c.mtp = c.mtp_unique + m.mtp_layers * 2 * d(m.vocab) * h;
    }
    c.total_with_mtp = c.total + c.mtp;
    return c;
}

void validate_layout(const ModelSpec& m, const ParallelLayout& l) {
    auto fail = [&](const std::string& why) {
        throw std::invalid_argument(fmt::format("parallel layout for model \"{}\": {}", m.name, why));
    };
    if (l.tp < 1 || l.attn_dp < 1 || l.ep < 1 || l.expert_tp < 1) fail("tp, attn_dp, ep and expert_tp must be at least 1");
    if (l.tp % l.attn_dp != 0) fail(fmt::format("attn_dp {} must divide tp {}", l.attn_dp, l.tp));
    if (m.attention.heads % l.attn_tp() != 0)
        fail(fmt::format("attention TP {} must divide the {} heads", l.attn_tp(), m.attention.heads));
    // GQA key/value heads are split over attention TP, or each replicated on attn_tp / kv_heads ranks: vLLM's
    // and SGLang's attention layers assert one or the other (kv_heads % tp or tp % kv_heads is 0).
    const int kv_heads = m.attention.kv_heads;
    if (m.attention.kind == AttentionKind::mha && kv_heads > 0 && kv_heads % l.attn_tp() != 0 &&
        l.attn_tp() % kv_heads != 0)
        fail(fmt::format("attention TP {} must divide the {} KV heads or be a multiple of them", l.attn_tp(), kv_heads));
    if (l.ep > 1 && m.moe.routed_experts == 0)
        fail(fmt::format("ep {} needs routed experts to spread; the model is dense (use ep 1)", l.ep));
    for (const auto& [key, value] : {std::pair{"dense_tp", l.dense_tp}, std::pair{"vocab_tp", l.vocab_tp}}) {
        if (value < 0) fail(fmt::format("{} must not be negative", key));
        if (value > 0 && (l.tp % value != 0 || value % l.attn_tp() != 0))
            fail(fmt::format("{} {} must divide tp {} and be a multiple of attention TP {} (tp / attn_dp)", key,
                             value, l.tp, l.attn_tp()));
    }
    if (l.redundant_experts < 0) fail("redundant_experts must not be negative");
    if (l.redundant_experts > 0 && m.moe.routed_experts == 0)
        fail(fmt::format("redundant_experts {} needs routed experts; the model has none", l.redundant_experts));
    if (m.moe.routed_experts > 0 && (m.moe.routed_experts + l.redundant_experts) % l.ep != 0)
        fail(l.redundant_experts > 0
                 ? fmt::format("ep {} must divide the {} routed + {} redundant experts", l.ep, m.moe.routed_experts,
                               l.redundant_experts)
                 : fmt::format("ep {} must divide the {} routed experts", l.ep, m.moe.routed_experts));
    if (l.first_layer < 0 || l.end_layer(m) > m.layers || l.first_layer >= l.end_layer(m))
        fail(fmt::format("layer range [{}, {}) is not inside the model's {} layers", l.first_layer, l.end_layer(m),
                         m.layers));
}

int ParallelLayout::experts_per_rank(const ModelSpec& m) const {
    return ep > 0 ? (m.moe.routed_experts + redundant_experts) / ep : 0;
}

double parameters_per_rank(const ModelSpec& m, const ParallelLayout& l) {
    validate_layout(m, l);
    const AttentionWeights a = attention_weights(m);
    const int attn_tp = l.attn_tp();
    const int kv_split = m.attention.kv_heads > 0 ? std::min(attn_tp, m.attention.kv_heads) : attn_tp;
    auto layer_on_rank = [&](int i) {
        const LayerParams p = layer_params(m, i);
        double r = a.split / attn_tp + a.kv_split / kv_split + a.replicated + p.norms;
        // Dense FFNs are split over their own TP group; shared experts run with attention's layout
        // (data-parallel under attention DP), so they are split over attention TP only.
        r += p.dense_ffn / l.dense_ffn_tp() + p.shared_experts / attn_tp + p.router;
        // Redundant experts are whole copies: a rank holds experts_per_rank experts' weights.
        r += l.redundant_experts > 0
                 ? p.routed_experts / m.moe.routed_experts * l.experts_per_rank(m) / l.expert_tp
                 : p.routed_experts / l.ep / l.expert_tp;
        return r;
    };
    double total = 0;
    for (int i = l.first_layer; i < l.end_layer(m); ++i) total += layer_on_rank(i);
    const double h = d(m.hidden);
    if (l.has_embedding()) {
        total += embedding_params(m) / l.vocab_parallel_tp();
        if (m.vision) total += vision_params(*m.vision, m.hidden);
    }
    if (l.has_lm_head(m)) {
        total += norm_params(m, h);
        // With tied embeddings a last stage that is not also the first keeps its own copy of the table.
        if (!m.tied_embeddings || !l.has_embedding()) total += d(m.vocab) * h / l.vocab_parallel_tp();
    }
    if (l.include_mtp && m.mtp_layers > 0) {
        total += m.mtp_layers * (3 * norm_params(m, h) + 2 * h * h / l.tp + layer_on_rank(m.layers - 1));
    }
    return total;
}

Bytes kv_bytes_per_token(const ModelSpec& m, double bytes_per_element) {
    const auto& a = m.attention;
    const double per_layer = a.kind == AttentionKind::mla ? d(a.kv_lora_rank + a.qk_rope_head_dim)
                                                          : 2.0 * a.kv_heads * a.head_dim;
    return Bytes(per_layer * m.layers * bytes_per_element);
}

Bytes kv_cache_bytes(const ModelSpec& m, std::int64_t context, const ParallelLayout& l, double bytes_per_element) {
    const auto& a = m.attention;
    double per_token_layer = 0;
    if (a.kind == AttentionKind::mla) {
        per_token_layer = d(a.kv_lora_rank + a.qk_rope_head_dim);  // the latent is not split over heads
    } else {
        const int heads_on_rank = std::max(1, a.kv_heads / std::max(1, l.attn_tp()));
        per_token_layer = 2.0 * heads_on_rank * a.head_dim;
    }
    double tokens = 0;
    for (int i = l.first_layer; i < l.end_layer(m); ++i) {
        tokens += m.is_chunked_layer(i) ? d(std::min<std::int64_t>(context, a.chunk_size)) : d(context);
    }
    return Bytes(tokens * per_token_layer * bytes_per_element);
}

double attended_pairs(std::int64_t prefix, std::int64_t fresh, std::int64_t chunk) {
    if (fresh <= 0) return 0;
    if (chunk <= 0) return d(fresh) * d(prefix) + d(fresh) * d(fresh + 1) / 2;
    // Each query at position p attends to positions [chunk_start(p), p].
    double pairs = 0;
    const std::int64_t end = prefix + fresh;
    for (std::int64_t start = (prefix / chunk) * chunk; start < end; start += chunk) {
        const std::int64_t a = std::max(prefix, start);
        const std::int64_t b = std::min(end, start + chunk);  // exclusive
        // sum over p in [a, b) of (p - start + 1)
        const double lo = d(a - start + 1);
        const double hi = d(b - start);
        pairs += (lo + hi) * d(b - a) / 2;
    }
    return pairs;
}

FlopsPerToken flops_per_token(const ModelSpec& m, std::int64_t seq) {
    double dense = 0;
    double attention = 0;
    const auto& a = m.attention;
    const double per_pair = 2.0 * a.heads * (a.qk_head_dim() + a.value_head_dim());
    for (int i = 0; i < m.layers; ++i) {
        dense += 2 * layer_matmul_active(m, i);
        const std::int64_t chunk = m.is_chunked_layer(i) ? a.chunk_size : 0;
        if (seq > 0) attention += per_pair * attended_pairs(0, seq, chunk) / d(seq);
    }
    dense += 2 * d(m.vocab) * d(m.hidden);  // LM head (tied or not, it is a matmul per token)
    return {Flops(dense), Flops(attention)};
}

Flops megatron_training_flops_per_token(const ModelSpec& m, std::int64_t seq) {
    const auto& a = m.attention;
    if (a.kind == AttentionKind::mla)
        throw std::invalid_argument(fmt::format(
            "Megatron-LM's FLOP count has no form for multi-head latent attention (model {}); use the causal convention",
            m.name));
    const double h = d(m.hidden);
    const double q = d(a.heads) * d(a.head_dim);  // query_projection_size = kv_channels x heads
    const double gated = m.activation == FfnActivation::swiglu ? 1.5 : 1.0;
    double per_token = 0;
    for (int i = 0; i < m.layers; ++i) {
        // Attention: QKV and output projections, and QK^T and PV over the whole s x s square.
        per_token += 12.0 * h * q * (1.0 + d(a.kv_heads) / d(a.heads)) + 12.0 * d(seq) * q;
        // MLP: two GEMMs of h x ffn (three with a gate), times the experts a token is routed to.
        double ffn = 0;
        if (m.is_moe_layer(i)) {
            ffn = d(m.moe.top_k) * d(m.moe.expert_intermediate) + d(m.moe.shared_experts) * shared_width(m);
        } else {
            ffn = d(m.intermediate);
        }
        per_token += 12.0 * h * ffn * gated;
    }
    per_token += 6.0 * h * d(m.vocab);  // logits: 12 h^2 l x V / (2 l h)
    return Flops(per_token);
}

Bytes activation_bytes_per_layer(const ModelSpec& m, int layer, std::int64_t micro_batch, std::int64_t seq,
                                 const ParallelLayout& l, const ActivationOptions& o) {
    const double e = o.bytes_per_element;
    const double lin = o.linear_input_bytes > 0 ? o.linear_input_bytes : e;  // a cached Linear input
    const double sb = d(seq) * d(micro_batch);
    const double h = d(m.hidden);
    const auto& a = m.attention;
    const double t = l.tp;
    const double at = l.attn_tp();
    // Tensors on the residual path: Korthikanti's "10sbh" counts the two norm inputs and the two norm
    // outputs (the inputs of the first Linear of attention and of the FFN), plus dropout masks.
    // Recomputing the norms keeps only their inputs.
    double replicated = 2 * e * sb * h + (o.recompute_norms ? 0 : 2 * lin * sb * h) + (o.dropout ? 2 * sb * h : 0);
    // Attention, divided over attention TP.
    double attn = 0;
    if (a.kind == AttentionKind::mla) {
        replicated += lin * sb * (a.q_lora_rank + a.kv_lora_rank + a.qk_rope_head_dim);  // latents
        if (!o.recompute_up_projections) attn += e * sb * a.heads * (2.0 * a.qk_head_dim() + a.v_head_dim);  // Q, K, V
    } else {
        attn += e * sb * (d(a.heads) * a.head_dim + 2.0 * a.kv_heads * a.head_dim);  // Q, K, V
    }
    if (o.flash_attention) {
        attn += 4.0 * a.heads * sb;  // fp32 log-sum-exp per query and head (FlashAttention-2)
    } else {
        attn += e * a.heads * d(seq) * sb;                                      // softmax output
        if (o.dropout) attn += (1 + e) * a.heads * d(seq) * sb;                 // mask + dropout output
    }
    const double attn_out = o.attention_output_bytes > 0 ? o.attention_output_bytes : lin;
    attn += attn_out * sb * a.heads * a.value_head_dim();  // attention output, the input of o_proj
    // FFN, divided over attention TP (dense and shared: a dense-TP group of dense_tp ranks computes the
    // tokens of dense_tp / attn_tp attention ranks with 1 / dense_tp of the width; shared experts run
    // with attention's layout) or spread over EP ranks (routed experts). SwiGLU keeps
    // its two inputs and its output (the input of the down projection) unless the output is recomputed.
    double ffn = 0;
    double routed = 0;
    auto ffn_tensors = [&](double width) {
        if (m.activation == FfnActivation::swiglu) return 2 * lin * sb * width + (o.recompute_swiglu ? 0 : lin * sb * width);
        return e * sb * width + lin * sb * width;
    };
    if (m.is_moe_layer(layer)) {
        replicated += 4.0 * sb * m.moe.routed_experts;  // fp32 router logits
        ffn += m.moe.shared_experts * ffn_tensors(shared_width(m));
        const double k = m.moe.top_k;
        // Under uniform routing each EP rank processes as many routed copies as it sent: sb x top_k,
        // each kept as the experts' input (a Linear input) and, when the router weights scale the
        // outputs, as the output too (for the weights' gradient).
        const double kept_per_copy = lin + (o.weights_on_expert_output ? e : 0.0);
        routed += k * (kept_per_copy * sb * h) + k * ffn_tensors(d(m.moe.expert_intermediate)) / l.expert_tp;
    } else {
        ffn += ffn_tensors(d(m.intermediate));
    }
    const double res = l.sequence_parallel ? replicated / t : replicated;
    return Bytes(res + attn / at + ffn / at + routed);
}

Bytes activation_bytes(const ModelSpec& m, std::int64_t micro_batch, std::int64_t seq, const ParallelLayout& l,
                       const ActivationOptions& o) {
    Bytes total;
    for (int i = l.first_layer; i < l.end_layer(m); ++i) total += activation_bytes_per_layer(m, i, micro_batch, seq, l, o);
    return total;
}

}  // namespace clustersim
