// The model rules of model_checks.hpp, shared by the YAML and the config.json loaders.
#include "models/model_checks.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>

namespace clustersim {
namespace {

class RuleCheck {
public:
    explicit RuleCheck(const ModelRuleReporter& reporter) : reporter_(reporter) {}

    // A range rule: `value` of `field` must be at least `min`. Returns whether it is.
    bool at_least(ModelField field, std::int64_t value, std::int64_t min) {
        if (value >= min) return true;
        reporter_.report(field, fmt::format("expected a value of at least {}; found {}", min, value));
        return false;
    }
    std::string key(ModelField field) const { return reporter_.key(field); }
    void report(ModelField field, const std::string& message) const { reporter_.report(field, message); }

private:
    const ModelRuleReporter& reporter_;
};

}  // namespace

void check_model(const ModelSpec& m, const ModelFileFacts& facts, const ModelRuleReporter& reporter) {
    using F = ModelField;
    RuleCheck c(reporter);
    const auto& a = m.attention;

    const bool layers_ok = c.at_least(F::layers, m.layers, 1);
    const bool hidden_ok = c.at_least(F::hidden_size, m.hidden, 1);
    c.at_least(F::vocab_size, m.vocab, 1);
    const bool intermediate_ok = c.at_least(F::intermediate_size, m.intermediate, 0);
    c.at_least(F::max_position_embeddings, m.max_seq, 0);
    const bool mtp_ok = c.at_least(F::mtp_layers, m.mtp_layers, 0);

    const bool heads_ok = c.at_least(F::heads, a.heads, 1);
    if (a.kind == AttentionKind::mha) {
        const bool kv_ok = c.at_least(F::kv_heads, a.kv_heads, 1);
        // A derived head_dim is 0 only when hidden_size < heads, which the divisibility rule below reports.
        if (facts.head_dim_given) c.at_least(F::head_dim, a.head_dim, 1);
        // Grouped-query attention shares each key/value head among heads / kv_heads query heads.
        if (heads_ok && kv_ok && a.heads % a.kv_heads != 0)
            c.report(F::kv_heads,
                     fmt::format("{} {} must divide {} {}", c.key(F::kv_heads), a.kv_heads, c.key(F::heads), a.heads));
        // Without head_dim the loaders use hidden_size / heads, as transformers' LlamaAttention does; before
        // head_dim became a config key it raised "hidden_size must be divisible by num_heads" when the
        // quotient was not exact (modeling_llama.py), rather than truncate it.
        if (!facts.head_dim_given && heads_ok && hidden_ok && m.hidden % a.heads != 0)
            c.report(F::heads,
                     fmt::format("{} {} must divide {} {}: {} is not given, and {} / {} would be "
                                 "truncated to {}",
                                 c.key(F::heads), a.heads, c.key(F::hidden_size), m.hidden, c.key(F::head_dim),
                                 c.key(F::hidden_size), c.key(F::heads), m.hidden / a.heads));
    } else {
        c.at_least(F::q_lora_rank, a.q_lora_rank, 0);
        c.at_least(F::kv_lora_rank, a.kv_lora_rank, 1);
        c.at_least(F::qk_nope_head_dim, a.qk_nope_head_dim, 1);
        c.at_least(F::qk_rope_head_dim, a.qk_rope_head_dim, 0);
        c.at_least(F::v_head_dim, a.v_head_dim, 1);
    }
    c.at_least(F::chunk_size, a.chunk_size, 0);
    c.at_least(F::global_layer_interval, a.global_layer_interval, 0);

    bool moe_ok = true;
    if (facts.has_moe) {
        const auto& e = m.moe;
        const bool routed_ok = c.at_least(F::routed_experts, e.routed_experts, 1);
        c.at_least(F::shared_experts, e.shared_experts, 0);
        const bool top_k_ok = c.at_least(F::top_k, e.top_k, 1);
        c.at_least(F::expert_intermediate_size, e.expert_intermediate, 1);
        c.at_least(F::shared_expert_intermediate_size, e.shared_intermediate, 0);  // 0: as a routed expert
        const bool n_group_ok = c.at_least(F::n_group, e.n_group, 1);
        const bool topk_group_ok = c.at_least(F::topk_group, e.topk_group, 1);
        const bool first_dense_ok = c.at_least(F::first_dense_layers, e.first_dense_layers, 0);
        const bool step_ok = c.at_least(F::layer_step, e.layer_step, 1);
        moe_ok = routed_ok && first_dense_ok && step_ok;
        if (routed_ok && top_k_ok && e.top_k > e.routed_experts)
            c.report(F::top_k, fmt::format("{} {} exceeds the {} routed experts ({})", c.key(F::top_k), e.top_k,
                                           e.routed_experts, c.key(F::routed_experts)));
        if (routed_ok && n_group_ok && e.routed_experts % e.n_group != 0)
            c.report(F::n_group, fmt::format("{} {} must divide the {} routed experts ({})", c.key(F::n_group),
                                             e.n_group, e.routed_experts, c.key(F::routed_experts)));
        if (n_group_ok && topk_group_ok && e.topk_group > e.n_group)
            c.report(F::topk_group, fmt::format("{} {} exceeds {} {}", c.key(F::topk_group), e.topk_group,
                                                c.key(F::n_group), e.n_group));
    }

    if (layers_ok && moe_ok) {
        bool has_dense = false;
        for (int i = 0; i < m.layers && !has_dense; ++i) has_dense = !m.is_moe_layer(i);
        if (has_dense && intermediate_ok && m.intermediate <= 0)
            c.report(F::intermediate_size,
                     fmt::format("the model has dense FFN layers, so {} must be given and positive",
                                 c.key(F::intermediate_size)));
        if (mtp_ok && m.mtp_layers > 0 && m.moe.routed_experts > 0 && !m.is_moe_layer(m.layers - 1))
            c.report(F::mtp_layers, "MTP modules are modelled on the last layer's type, which must be an MoE layer");
    }

    if (m.vision) {
        const VisionEncoderSpec& v = *m.vision;
        c.at_least(F::vision_layers, v.layers, 1);
        c.at_least(F::vision_hidden_size, v.hidden, 1);
        c.at_least(F::vision_intermediate_size, v.intermediate, 1);
        c.at_least(F::vision_image_size, v.image_size, 1);
        c.at_least(F::vision_patch_size, v.patch_size, 1);
        c.at_least(F::vision_channels, v.channels, 1);
        c.at_least(F::vision_projector_input_dim, v.projector_input, 1);
        c.at_least(F::vision_projector_output_dim, v.projector_output, 1);
    }
}

}  // namespace clustersim
