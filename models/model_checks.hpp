// The rules every model must satisfy, checked in one place for model YAML files and Hugging Face
// config.json files alike; each loader reports a broken rule at its own key, in its own words.
#pragma once

#include "models/model_spec.hpp"

#include <functional>
#include <string>

namespace clustersim {

// The ModelSpec fields a rule can blame. Each loader maps them to its file's keys (the model YAML's
// `attention.kv_heads` is config.json's `num_key_value_heads`).
enum class ModelField {
    layers,
    hidden_size,
    vocab_size,
    intermediate_size,
    max_position_embeddings,
    mtp_layers,
    heads,
    kv_heads,
    head_dim,
    q_lora_rank,
    kv_lora_rank,
    qk_nope_head_dim,
    qk_rope_head_dim,
    v_head_dim,
    chunk_size,
    global_layer_interval,
    routed_experts,
    shared_experts,
    top_k,
    expert_intermediate_size,
    shared_expert_intermediate_size,
    n_group,
    topk_group,
    first_dense_layers,
    layer_step,
    vision_layers,
    vision_hidden_size,
    vision_intermediate_size,
    vision_image_size,
    vision_patch_size,
    vision_channels,
    vision_projector_input_dim,
    vision_projector_output_dim,
};

// What the file said that the ModelSpec no longer shows.
struct ModelFileFacts {
    bool has_moe = false;         // the file declares MoE layers (a `moe:` block, an MoE model_type)
    bool head_dim_given = false;  // head_dim was stated, not derived as hidden_size / heads
};

// How a loader names fields and records problems.
struct ModelRuleReporter {
    std::function<std::string(ModelField)> key;                  // the file's name for a field
    std::function<void(ModelField, const std::string&)> report;  // records `message` at the field's key
};

// Checks `m` against every rule and reports each broken one at the field it blames: value ranges
// (at least one layer, head, expert, ...) and consistency (kv_heads divides heads, top_k at most the
// routed experts, hidden_size a multiple of heads when head_dim defaults to their quotient, ...). A rule
// relating fields is skipped while one of them is out of range, so each problem is reported once.
void check_model(const ModelSpec& m, const ModelFileFacts& facts, const ModelRuleReporter& reporter);

}  // namespace clustersim
