// Text and JSON forms of the model report printed by `clustersim model`.
#include "models/model_report.hpp"

#include <fmt/format.h>

#include <vector>

namespace clustersim {
namespace {

std::string billions(double v) { return fmt::format("{:.2f}B", v * 1e-9); }

std::string attention_label(const ModelSpec& m, int layer) {
    const auto& a = m.attention;
    std::string s;
    if (a.kind == AttentionKind::mla) {
        s = fmt::format("MLA {}h q_lora {} kv_lora {} rope {}", a.heads, a.q_lora_rank, a.kv_lora_rank, a.qk_rope_head_dim);
    } else {
        s = fmt::format("{} {}q/{}kv x {}", a.kv_heads == a.heads ? "MHA" : "GQA", a.heads, a.kv_heads, a.head_dim);
    }
    if (a.chunk_size > 0) s += m.is_chunked_layer(layer) ? fmt::format(", chunked {} RoPE", a.chunk_size) : ", global NoPE";
    return s;
}

std::string ffn_label(const ModelSpec& m, int layer) {
    if (!m.is_moe_layer(layer)) return fmt::format("dense {} {}", m.activation == FfnActivation::gelu ? "GELU" : "SwiGLU", m.intermediate);
    const auto& e = m.moe;
    std::string s = fmt::format("MoE {} routed x {} top-{}", e.routed_experts, e.expert_intermediate, e.top_k);
    if (e.shared_experts > 0) s += fmt::format(" + {} shared", e.shared_experts);
    if (e.n_group > 1) s += fmt::format(", groups {}/{}", e.topk_group, e.n_group);
    s += e.gating == GatingFunction::sigmoid ? ", sigmoid" : ", softmax";
    return s;
}

// Runs of consecutive layers with the same structure.
struct LayerGroup {
    int first = 0;
    int last = 0;  // inclusive
};
std::vector<LayerGroup> layer_groups(const ModelSpec& m) {
    std::vector<LayerGroup> groups;
    for (int i = 0; i < m.layers; ++i) {
        const bool same = !groups.empty() && m.is_moe_layer(i) == m.is_moe_layer(groups.back().last) &&
                          m.is_chunked_layer(i) == m.is_chunked_layer(groups.back().last);
        // Alternating patterns (Llama 4) would give one group per layer; keep at most one row per layer.
        if (same) {
            groups.back().last = i;
        } else {
            groups.push_back({i, i});
        }
    }
    return groups;
}

std::string kv_formula(const ModelSpec& m, double bytes) {
    const auto& a = m.attention;
    if (a.kind == AttentionKind::mla)
        return fmt::format("({} + {}) x {} layers x {} B", a.kv_lora_rank, a.qk_rope_head_dim, m.layers, bytes);
    return fmt::format("2 x {} kv heads x {} x {} layers x {} B", a.kv_heads, a.head_dim, m.layers, bytes);
}

}  // namespace

std::string model_report_text(const ModelSpec& m, const ModelReportOptions& o) {
    const ParameterCounts p = parameter_counts(m);
    const FlopsPerToken f = flops_per_token(m, o.seq);
    const Bytes kv = kv_bytes_per_token(m, o.kv_bytes_per_element);
    std::string out;
    out += fmt::format("model {} ({}), from {}\n", m.name, m.architecture, m.source);
    out += fmt::format("  {} layers, hidden {}, vocabulary {}, {} embeddings\n", m.layers, m.hidden, m.vocab,
                       m.tied_embeddings ? "tied" : "untied");
    out += "parameters\n";
    out += fmt::format("  total              {:>10}", billions(p.total));
    out += m.mtp_layers > 0 ? fmt::format("  (without the {} MTP module{})\n", m.mtp_layers, m.mtp_layers > 1 ? "s" : "")
                            : "\n";
    if (m.mtp_layers > 0) {
        out += fmt::format("  total with MTP     {:>10}  (as in the Hugging Face checkpoint: MTP {} incl. its "
                           "embedding and head copies, {} without)\n",
                           billions(p.total_with_mtp), billions(p.mtp), billions(p.mtp_unique));
    }
    out += fmt::format("  active per token   {:>10}  (all but unselected routed experts and the vision encoder)\n",
                       billions(p.active));
    out += fmt::format("  embedding {}, LM head {}, layers {}, vision encoder {}\n", billions(p.embedding),
                       billions(p.lm_head), billions(p.layers), billions(p.vision));
    out += fmt::format("FLOPs per token (forward; training = 3x forward)\n");
    out += fmt::format("  dense, 2 x active matmul weights  {:>10.2f} GFLOP  (training 6N-style: {:.2f} GFLOP)\n",
                       f.dense_forward.flops() * 1e-9, f.training_dense().flops() * 1e-9);
    out += fmt::format("  causal attention at seq {:<8} {:>10.2f} GFLOP\n", o.seq, f.attention_forward.flops() * 1e-9);
    out += fmt::format("  forward total                     {:>10.2f} GFLOP  (training: {:.2f} GFLOP)\n",
                       f.forward().flops() * 1e-9, f.training().flops() * 1e-9);
    out += fmt::format("KV cache per token  {:.0f} B = {:.1f} KiB  ({})\n", kv.bytes(), kv.bytes() / 1024,
                       kv_formula(m, o.kv_bytes_per_element));
    out += "layers\n";
    out += fmt::format("  {:<9} {:<44} {:<52} {:>9} {:>9}\n", "index", "attention", "ffn", "params", "active");
    for (const auto& g : layer_groups(m)) {
        const LayerParams l = layer_params(m, g.first);
        const std::string index = g.first == g.last ? fmt::format("{}", g.first) : fmt::format("{}-{}", g.first, g.last);
        out += fmt::format("  {:<9} {:<44} {:<52} {:>9} {:>9}\n", index, attention_label(m, g.first),
                           ffn_label(m, g.first), billions(l.total()), billions(l.active()));
    }
    return out;
}

nlohmann::ordered_json model_report_json(const ModelSpec& m, const ModelReportOptions& o) {
    const ParameterCounts p = parameter_counts(m);
    const FlopsPerToken f = flops_per_token(m, o.seq);
    nlohmann::ordered_json j;
    j["name"] = m.name;
    j["architecture"] = m.architecture;
    j["source"] = m.source;
    j["parameters"] = {{"total", p.total},
                       {"active", p.active},
                       {"total_with_mtp", p.total_with_mtp},
                       {"mtp", p.mtp},
                       {"mtp_without_shared_embedding_and_head", p.mtp_unique},
                       {"embedding", p.embedding},
                       {"lm_head", p.lm_head},
                       {"layers", p.layers},
                       {"vision_encoder", p.vision}};
    j["flops_per_token"] = {{"convention",
                             "forward FLOPs per token; dense = 2 x active matmul weights (incl. LM head, excl. "
                             "embedding lookup); attention = causal QK^T and AV averaged over seq; training = 3 x forward"},
                            {"seq", o.seq},
                            {"dense_forward", f.dense_forward.flops()},
                            {"attention_forward", f.attention_forward.flops()},
                            {"forward", f.forward().flops()},
                            {"training_6n", f.training_dense().flops()},
                            {"training", f.training().flops()}};
    j["kv_cache"] = {{"bytes_per_element", o.kv_bytes_per_element},
                     {"bytes_per_token", kv_bytes_per_token(m, o.kv_bytes_per_element).bytes()},
                     {"formula", kv_formula(m, o.kv_bytes_per_element)}};
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (int i = 0; i < m.layers; ++i) {
        const LayerParams l = layer_params(m, i);
        layers.push_back({{"index", i},
                          {"attention", attention_label(m, i)},
                          {"ffn", ffn_label(m, i)},
                          {"moe", m.is_moe_layer(i)},
                          {"params", l.total()},
                          {"active_params", l.active()},
                          {"attention_params", l.attention},
                          {"ffn_params", l.dense_ffn + l.shared_experts + l.routed_experts + l.router}});
    }
    j["layers"] = layers;
    return j;
}

}  // namespace clustersim
