// A language model's architecture as typed data, and the accounting derived from it: parameters
// (total, active, per rank), KV-cache bytes per token, FLOPs per token and activation memory.
//
// The struct holds only architecture numbers read from a model file (models/*.yaml) or a Hugging
// Face config.json (model_loader.hpp); everything else is computed here, so one set of formulas
// serves the `model` report, the operator graphs and the memory planner. See models/README.md for
// the conventions (what "active" and "FLOPs per token" include) and their sources.
#pragma once

#include "sim/core/units.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

enum class AttentionKind { mha, mla };  // mha covers MHA and GQA (kv_heads < heads)
enum class FfnActivation { swiglu, gelu };
enum class NormKind { rmsnorm, layernorm };
enum class PositionKind { rope, learned };
enum class GatingFunction { softmax, sigmoid };

struct AttentionSpec {
    AttentionKind kind = AttentionKind::mha;
    int heads = 0;
    int kv_heads = 0;  // == heads for MHA; MLA keeps one latent per token, not per head
    int head_dim = 0;  // MHA/GQA only
    bool qkv_bias = false;  // Qwen2 (QwQ) and GPT add biases to Q, K, V
    bool qk_norm = false;   // Qwen3 normalizes Q and K per head (RMSNorm with a weight of head_dim)
    // Multi-head latent attention (DeepSeek-V2/V3, arXiv:2405.04434 section 2.1).
    int q_lora_rank = 0;  // 0: queries are projected directly from the hidden state
    int kv_lora_rank = 0;
    int qk_nope_head_dim = 0;
    int qk_rope_head_dim = 0;
    int v_head_dim = 0;
    // Llama 4 chunked local attention: layers with RoPE attend only within chunks of this many
    // tokens; every `global_layer_interval`-th layer is global attention without RoPE (iRoPE).
    int chunk_size = 0;  // 0: every layer attends to the whole context
    int global_layer_interval = 0;

    int qk_head_dim() const { return kind == AttentionKind::mla ? qk_nope_head_dim + qk_rope_head_dim : head_dim; }
    int value_head_dim() const { return kind == AttentionKind::mla ? v_head_dim : head_dim; }
};

struct MoeSpec {
    int routed_experts = 0;  // 0: the model has no MoE layers
    int shared_experts = 0;
    int top_k = 0;
    std::int64_t expert_intermediate = 0;  // moe_intermediate_size
    std::int64_t shared_intermediate = 0;  // per shared expert; defaults to expert_intermediate
    int n_group = 1;     // group-limited routing (DeepSeek-V3 noaux_tc): experts in n_group groups,
    int topk_group = 1;  // tokens may only use experts of the best topk_group groups
    GatingFunction gating = GatingFunction::softmax;
    bool gate_bias = false;    // DeepSeek-V3's e_score_correction_bias (one per routed expert)
    int first_dense_layers = 0;  // first_k_dense_replace
    int layer_step = 1;          // MoE every layer_step-th layer (Llama 4 interleave, Qwen decoder_sparse_step)
};

// Optional vision encoder counted into the total (Llama 4 is natively multimodal, and its published
// totals include the encoder): a ViT with biases and LayerNorms, a pixel-shuffle adapter and a
// projector into the language model, as in transformers' modeling_llama4.py.
struct VisionEncoderSpec {
    int layers = 0;
    std::int64_t hidden = 0;
    std::int64_t intermediate = 0;
    int image_size = 0;
    int patch_size = 0;
    int channels = 3;
    double pixel_shuffle_ratio = 0.5;
    std::int64_t projector_input = 0;
    std::int64_t projector_output = 0;
};

struct ModelSpec {
    std::string name;
    std::string architecture;  // family: deepseek_v3, llama4, qwen3_moe, llama, mixtral, qwen2, gpt
    std::string source;        // file it was read from
    int layers = 0;
    std::int64_t hidden = 0;
    std::int64_t vocab = 0;
    std::int64_t intermediate = 0;  // dense FFN width
    std::int64_t max_seq = 0;       // learned position table size (GPT); informational otherwise
    FfnActivation activation = FfnActivation::swiglu;
    NormKind norm = NormKind::rmsnorm;
    PositionKind position = PositionKind::rope;
    bool tied_embeddings = false;
    bool linear_bias = false;  // GPT: every linear layer has a bias
    AttentionSpec attention;
    MoeSpec moe;
    int mtp_layers = 0;  // DeepSeek multi-token prediction modules (num_nextn_predict_layers)
    std::optional<VisionEncoderSpec> vision;

    bool is_moe_layer(int layer) const;
    // Llama 4: layers using chunked local attention with RoPE; others attend globally.
    bool is_chunked_layer(int layer) const;
    bool uses_rope(int layer) const;
    int moe_layer_count() const;
};

// ---- parameters ----------------------------------------------------------------------------------

// Parameter counts of one decoder layer, split by part.
struct LayerParams {
    double attention = 0;        // projections, biases and attention-internal norms
    double norms = 0;            // the layer's two pre-norms
    double dense_ffn = 0;        // dense FFN (0 in MoE layers)
    double router = 0;           // gate weight (+ correction bias)
    double shared_experts = 0;   // all shared experts
    double routed_experts = 0;   // all routed experts
    double routed_active = 0;    // top_k routed experts
    double total() const { return attention + norms + dense_ffn + router + shared_experts + routed_experts; }
    double active() const { return attention + norms + dense_ffn + router + shared_experts + routed_active; }
};

struct ParameterCounts {
    double embedding = 0;  // input token (and learned position) embeddings
    double lm_head = 0;    // 0 when tied
    double final_norm = 0;
    double layers = 0;
    double vision = 0;     // vision encoder, adapter and projector
    double total = 0;      // embedding + layers + final norm + lm_head + vision; excludes MTP
    double active = 0;     // per text token: everything but unselected routed experts and vision
    double mtp = 0;        // MTP modules as stored in the checkpoint (with their embedding/head copies)
    double mtp_unique = 0;  // MTP modules without the embedding/head they share with the main model
    double total_with_mtp = 0;  // total + mtp: what the Hugging Face checkpoint holds (685B for DeepSeek-V3)
};

LayerParams layer_params(const ModelSpec& m, int layer);
ParameterCounts parameter_counts(const ModelSpec& m);

// A parallel layout of one rank: which part of the model it holds and how it is split.
struct ParallelLayout {
    int tp = 1;         // tensor parallelism of attention, dense FFNs, shared experts, embedding and LM head
                        // (the last three may have their own: dense_tp, vocab_tp)
    int attn_dp = 1;    // attention data parallelism inside the TP group: attention TP is tp / attn_dp
    int ep = 1;         // expert parallelism: routed experts per rank = (routed + redundant) / ep
    int expert_tp = 1;  // tensor parallelism inside each routed expert
    // Tensor parallelism of the dense FFN layers (DeepSeek-V3's first three): 0 means tp. Under attention
    // data parallelism a dense-TP group computes the tokens of its dense_tp / attn_tp attention ranks
    // (gathered, then reduce-scattered back); dense_tp = attn_tp keeps each rank's tokens with a copy of
    // the FFN per attention group (1: a whole copy on every GPU, no communication).
    int dense_tp = 0;
    // Tensor (vocabulary) parallelism of the embedding and the LM head: 0 means tp. Under attention data
    // parallelism a group wider than attention TP gathers the hidden states of its vocab_tp / attn_tp
    // attention ranks, computes their logits over 1/vocab_tp of the vocabulary and all-gathers the logits
    // (SGLang's default under DP attention); vocab_tp = attn_tp keeps each rank's tokens (SGLang's
    // --enable-dp-lm-head; 1: a whole copy of the head on every GPU).
    int vocab_tp = 0;
    // Redundant (replicated) routed experts over the EP group, as DeepSeek's EPLB places them: each
    // rank holds (routed_experts + redundant_experts) / ep physical experts per MoE layer.
    int redundant_experts = 0;
    int first_layer = 0;
    int last_layer = -1;  // exclusive; -1: through the last layer
    bool include_mtp = false;  // the stage also holds the MTP modules (DeepSeek puts them on the last stage)
    bool sequence_parallel = true;  // Megatron sequence parallelism (Korthikanti et al. 2022) for activations

    int attn_tp() const { return attn_dp > 0 ? tp / attn_dp : tp; }
    int dense_ffn_tp() const { return dense_tp > 0 ? dense_tp : tp; }
    int vocab_parallel_tp() const { return vocab_tp > 0 ? vocab_tp : tp; }
    // Physical routed experts one rank holds per MoE layer (redundant replicas included).
    int experts_per_rank(const ModelSpec& m) const;
    int end_layer(const ModelSpec& m) const { return last_layer < 0 ? m.layers : last_layer; }
    bool has_embedding() const { return first_layer == 0; }
    bool has_lm_head(const ModelSpec& m) const { return end_layer(m) == m.layers; }
};

// Throws std::invalid_argument naming the problem when the layout does not divide the model.
void validate_layout(const ModelSpec& m, const ParallelLayout& layout);

// Parameters one rank holds under `layout` (MTP modules included when layout.include_mtp).
double parameters_per_rank(const ModelSpec& m, const ParallelLayout& layout);

// ---- KV cache --------------------------------------------------------------------------------------

// Bytes of KV cache one token adds across all layers of the whole model, at `bytes_per_element`.
// MLA caches the compressed latent and the decoupled RoPE key: (kv_lora_rank + qk_rope_head_dim) per
// layer (DeepSeek-V2 paper, Table 1). MHA/GQA caches K and V: 2 x kv_heads x head_dim per layer.
Bytes kv_bytes_per_token(const ModelSpec& m, double bytes_per_element = 2.0);
// KV bytes of one sequence of `context` tokens, with chunked-attention layers holding at most one
// chunk; per rank under `layout` (GQA heads split over attention TP, MLA latent replicated).
Bytes kv_cache_bytes(const ModelSpec& m, std::int64_t context, const ParallelLayout& layout,
                     double bytes_per_element = 2.0);

// ---- FLOPs -----------------------------------------------------------------------------------------

// Forward FLOPs per token. dense = 2 x (active parameters that multiply activations: every weight
// matrix of the layers and the LM head, not the input-embedding lookup); attention adds the score
// and value products of causal self-attention averaged over a sequence of `seq` tokens
// (2 x heads x (qk_dim + v_dim) x mean attended tokens, per layer). Training is 3x forward
// (backward = 2x forward), the "6N" of Kaplan et al. 2020 for the dense part.
struct FlopsPerToken {
    Flops dense_forward;
    Flops attention_forward;
    Flops forward() const { return dense_forward + attention_forward; }
    Flops training_dense() const { return dense_forward * 3.0; }  // "6N"
    Flops training() const { return forward() * 3.0; }
};
FlopsPerToken flops_per_token(const ModelSpec& m, std::int64_t seq);

// Training FLOPs per token (forward and backward) as Megatron-LM counts them for its reported
// throughput: `num_floating_point_operations` in megatron/training/training.py (r0.8.0), from
// Narayanan et al. 2021 (arXiv:2104.04473, appendix). Per layer 12 x h x q x (1 + kv_heads/heads) for
// the QKV and output projections (q = heads x head_dim), 12 x s x q for attention over the whole
// s x s square (no causal halving), 12 x h x ffn x experts routed to x 3/2 if gated (SwiGLU); plus
// 6 x h x vocabulary for the logits. For a GPT with ffn = 4h and no GQA this is Narayanan's
// 72 B s l h^2 (1 + s/(6h) + V/(12 l h)) per B sequences. MoE layers count their top_k routed experts
// of the expert width plus their shared experts (r0.8.0 knows neither shared experts nor dense
// layers among MoE ones; later Megatron versions count them so), dense layers their FFN. Throws
// std::invalid_argument for MLA, which the formula has no term for.
Flops megatron_training_flops_per_token(const ModelSpec& m, std::int64_t seq);

// Query-key pairs attended by `fresh` new tokens placed after `prefix` cached tokens under causal
// attention, optionally limited to chunks of `chunk` tokens (0 = unlimited).
double attended_pairs(std::int64_t prefix, std::int64_t fresh, std::int64_t chunk);

// ---- activations -----------------------------------------------------------------------------------

// Activation bytes one micro-batch of `micro_batch` sequences of `seq` tokens keeps for the backward
// pass, per rank, for the layers of the stage (no recomputation). Follows Korthikanti et al. 2022,
// "Reducing Activation Recomputation in Large Transformer Models", section 4: per layer
// sbh(34 + 5as/h) bytes for GPT with 16-bit activations and dropout, divided by t with tensor and
// sequence parallelism. The same tensor-by-tensor accounting is applied to SwiGLU, GQA, MLA and MoE;
// with flash attention (the default) the s^2 terms are replaced by the output's softmax statistics.
//
// DeepSeek-V3's memory savings (technical report arXiv 2412.19437, sections 3.2.3 and 3.3.4) are
// options: recomputing RMSNorm outputs and MLA's up-projections in the backward (only the norm
// inputs and the compressed latents are kept), recomputing the SwiGLU output from its cached inputs,
// and caching the inputs of Linear operators in FP8 (1 byte plus one FP32 scale per 128 values), with
// the input of the projection after attention in DeepSeek's 12-bit E5M6.
struct ActivationOptions {
    bool flash_attention = true;
    bool dropout = false;  // GPT (Megatron) keeps dropout masks; modern LLMs train without dropout
    double bytes_per_element = 2.0;
    bool recompute_norms = false;
    bool recompute_up_projections = false;  // MLA: queries, keys and values rebuilt from the latents
    bool recompute_swiglu = false;
    double linear_input_bytes = 0;       // > 0: bytes per element of cached Linear inputs (FP8: 1 + 4/128)
    double attention_output_bytes = 0;   // > 0: bytes per element of the attention output (E5M6: 1.5)
    // Where the router's top-k weights scale a routed expert's contribution: on its output (the output
    // is kept for the weights' gradient), or inside the expert on the SwiGLU output before the down
    // projection (nothing more is kept: the down projection's input is needed anyway).
    bool weights_on_expert_output = true;
};
Bytes activation_bytes_per_layer(const ModelSpec& m, int layer, std::int64_t micro_batch, std::int64_t seq,
                                 const ParallelLayout& layout, const ActivationOptions& options = {});
Bytes activation_bytes(const ModelSpec& m, std::int64_t micro_batch, std::int64_t seq, const ParallelLayout& layout,
                       const ActivationOptions& options = {});

}  // namespace clustersim
