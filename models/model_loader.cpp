// Model files and Hugging Face config.json files read into ModelSpec, with precise diagnostics.
#include "models/model_loader.hpp"

#include "models/model_checks.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kArchitectures = {"deepseek_v3", "llama4", "qwen3_moe", "llama", "mixtral", "qwen2", "gpt"};

// Where a model file keeps each field: the mapping's reader and the key in it. A reader is nullptr for a
// block the file lacks (no moe:, no vision_encoder:); no rule checks those fields then. GPT's kv_heads and
// head_dim are derived, never read, so they meet the rules by construction.
struct YamlKeys {
    MapReader* root = nullptr;
    MapReader* attention = nullptr;  // the root itself for the GPT form, whose `heads` is a top-level key
    MapReader* moe = nullptr;
    MapReader* vision = nullptr;

    std::pair<MapReader*, const char*> at(ModelField f) const {
        using F = ModelField;
        switch (f) {
            case F::layers: return {root, "layers"};
            case F::hidden_size: return {root, "hidden_size"};
            case F::vocab_size: return {root, "vocab_size"};
            case F::intermediate_size: return {root, "intermediate_size"};
            case F::max_position_embeddings: return {root, root == attention ? "seq_length" : "max_position_embeddings"};
            case F::mtp_layers: return {root, "mtp_layers"};
            case F::heads: return {attention, "heads"};
            case F::kv_heads: return {attention, "kv_heads"};
            case F::head_dim: return {attention, "head_dim"};
            case F::q_lora_rank: return {attention, "q_lora_rank"};
            case F::kv_lora_rank: return {attention, "kv_lora_rank"};
            case F::qk_nope_head_dim: return {attention, "qk_nope_head_dim"};
            case F::qk_rope_head_dim: return {attention, "qk_rope_head_dim"};
            case F::v_head_dim: return {attention, "v_head_dim"};
            case F::chunk_size: return {attention, "chunk_size"};
            case F::global_layer_interval: return {attention, "global_layer_interval"};
            case F::routed_experts: return {moe, "routed_experts"};
            case F::shared_experts: return {moe, "shared_experts"};
            case F::top_k: return {moe, "top_k"};
            case F::expert_intermediate_size: return {moe, "expert_intermediate_size"};
            case F::shared_expert_intermediate_size: return {moe, "shared_expert_intermediate_size"};
            case F::n_group: return {moe, "n_group"};
            case F::topk_group: return {moe, "topk_group"};
            case F::first_dense_layers: return {moe, "first_dense_layers"};
            case F::layer_step: return {moe, "layer_step"};
            case F::vision_layers: return {vision, "layers"};
            case F::vision_hidden_size: return {vision, "hidden_size"};
            case F::vision_intermediate_size: return {vision, "intermediate_size"};
            case F::vision_image_size: return {vision, "image_size"};
            case F::vision_patch_size: return {vision, "patch_size"};
            case F::vision_channels: return {vision, "channels"};
            case F::vision_projector_input_dim: return {vision, "projector_input_dim"};
            case F::vision_projector_output_dim: return {vision, "projector_output_dim"};
        }
        return {nullptr, ""};
    }
};

// The shared model rules (model_checks.hpp), each broken one reported at its key unless reading that
// key already recorded a problem.
void check_model_file(const ModelSpec& m, const ModelFileFacts& facts, const YamlKeys& keys) {
    ModelRuleReporter reporter;
    reporter.key = [&](ModelField f) { return std::string(keys.at(f).second); };
    reporter.report = [&](ModelField f, const std::string& message) {
        auto [reader, key] = keys.at(f);
        if (reader == nullptr) reader = keys.root;
        if (!reader->failed(key)) reader->error(key, message);
    };
    check_model(m, facts, reporter);
}

ModelSpec read_gpt(MapReader& r, ModelSpec m) {
    // Megatron-LM's GPT: learned positions, LayerNorm, biases, 4h GELU FFN, tied embeddings
    // (Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters").
    m.layers = r.required<int>("layers", "number of transformer layers", at_least(1));
    m.hidden = r.required<std::int64_t>("hidden_size", "hidden size h", at_least<std::int64_t>(1));
    m.attention.heads = r.required<int>("heads", "attention heads", at_least(1));
    m.vocab = r.required<std::int64_t>("vocab_size", "vocabulary size", at_least<std::int64_t>(1));
    m.max_seq = r.required<std::int64_t>("seq_length", "sequence length (learned position table size)",
                                         at_least<std::int64_t>(1));
    m.intermediate = 4 * m.hidden;
    m.activation = FfnActivation::gelu;
    m.norm = NormKind::layernorm;
    m.position = PositionKind::learned;
    m.tied_embeddings = true;
    m.linear_bias = true;
    m.attention.kind = AttentionKind::mha;
    m.attention.kv_heads = m.attention.heads;
    m.attention.head_dim = m.attention.heads > 0 ? static_cast<int>(m.hidden / m.attention.heads) : 0;
    check_model_file(m, ModelFileFacts{}, YamlKeys{&r, &r, nullptr, nullptr});
    return m;
}

}  // namespace

ModelSpec read_model(MapReader& r) {
    ModelSpec m;
    m.source = r.document()->file();
    m.name = r.required<std::string>("name", "model name");
    r.optional<std::string>("reference", "", "where the numbers come from (URL of the config.json or paper)");
    m.architecture = r.choice("architecture", kArchitectures, std::nullopt, "model family");
    if (m.architecture == "gpt") {
        m = read_gpt(r, m);
        r.finish();
        return m;
    }
    m.layers = r.required<int>("layers", "number of decoder layers (num_hidden_layers)", at_least(1));
    m.hidden = r.required<std::int64_t>("hidden_size", "hidden size", at_least<std::int64_t>(1));
    m.vocab = r.required<std::int64_t>("vocab_size", "vocabulary size", at_least<std::int64_t>(1));
    m.intermediate = r.optional<std::int64_t>("intermediate_size", 0, "width of the dense FFN layers",
                                              at_least<std::int64_t>(0));
    m.max_seq = r.optional<std::int64_t>("max_position_embeddings", 0, "longest context the model supports",
                                         at_least<std::int64_t>(0));
    const std::string act = r.choice("activation", {"swiglu", "gelu"}, "swiglu", "FFN activation");
    m.activation = act == "gelu" ? FfnActivation::gelu : FfnActivation::swiglu;
    m.norm = r.choice("norm", {"rmsnorm", "layernorm"}, "rmsnorm", "normalization") == "layernorm" ? NormKind::layernorm
                                                                                                     : NormKind::rmsnorm;
    m.position = r.choice("position", {"rope", "learned"}, "rope", "position encoding") == "learned"
                     ? PositionKind::learned
                     : PositionKind::rope;
    m.tied_embeddings = r.optional<bool>("tie_embeddings", false, "the LM head shares the embedding table");
    m.linear_bias = r.optional<bool>("linear_bias", false, "every linear layer has a bias");
    m.mtp_layers = r.optional<int>("mtp_layers", 0, "multi-token prediction modules (num_nextn_predict_layers)",
                                   at_least(0));

    MapReader a = r.child("attention", "attention block");
    auto& at = m.attention;
    at.kind = a.choice("kind", {"mha", "mla"}, "mha", "mha (MHA/GQA) or mla (multi-head latent attention)") == "mla"
                  ? AttentionKind::mla
                  : AttentionKind::mha;
    at.heads = a.required<int>("heads", "query heads (num_attention_heads)", at_least(1));
    if (at.kind == AttentionKind::mla) {
        at.kv_heads = at.heads;
        at.q_lora_rank = a.optional<int>("q_lora_rank", 0, "query compression rank (0: no compression)", at_least(0));
        at.kv_lora_rank = a.required<int>("kv_lora_rank", "KV compression rank", at_least(1));
        at.qk_nope_head_dim = a.required<int>("qk_nope_head_dim", "per-head query/key dims without RoPE", at_least(1));
        at.qk_rope_head_dim = a.required<int>("qk_rope_head_dim", "per-head decoupled RoPE dims", at_least(0));
        at.v_head_dim = a.required<int>("v_head_dim", "per-head value dims", at_least(1));
    } else {
        at.kv_heads = a.optional<int>("kv_heads", at.heads, "key/value heads (GQA when fewer than heads)", at_least(1));
        const int fallback = at.heads > 0 ? static_cast<int>(m.hidden / at.heads) : 0;
        at.head_dim = a.optional<int>("head_dim", fallback, "dims per head (default hidden_size / heads)", at_least(1));
    }
    at.qkv_bias = a.optional<bool>("qkv_bias", false, "Q, K and V projections have biases");
    at.qk_norm = a.optional<bool>("qk_norm", false, "per-head RMSNorm of Q and K with weights");
    at.chunk_size = a.optional<int>("chunk_size", 0, "chunked local attention window (0: none)", at_least(0));
    at.global_layer_interval =
        a.optional<int>("global_layer_interval", 0, "every n-th layer attends globally without RoPE", at_least(0));
    a.finish();

    std::optional<MapReader> moe_reader;
    if (r.has("moe")) {
        MapReader& e = moe_reader.emplace(r.child("moe", "mixture-of-experts layers", false));
        auto& moe = m.moe;
        moe.routed_experts = e.required<int>("routed_experts", "routed experts per MoE layer", at_least(1));
        moe.shared_experts = e.optional<int>("shared_experts", 0, "always-active shared experts", at_least(0));
        moe.top_k = e.required<int>("top_k", "routed experts per token", at_least(1));
        moe.expert_intermediate = e.required<std::int64_t>("expert_intermediate_size", "FFN width of one expert",
                                                           at_least<std::int64_t>(1));
        moe.shared_intermediate = e.optional<std::int64_t>("shared_expert_intermediate_size", moe.expert_intermediate,
                                                           "FFN width of one shared expert", at_least<std::int64_t>(1));
        moe.n_group = e.optional<int>("n_group", 1, "expert groups for group-limited routing", at_least(1));
        moe.topk_group = e.optional<int>("topk_group", 1, "groups a token may route to", at_least(1));
        moe.gating = e.choice("gating", {"softmax", "sigmoid"}, "softmax", "router scoring function") == "sigmoid"
                         ? GatingFunction::sigmoid
                         : GatingFunction::softmax;
        moe.gate_bias = e.optional<bool>("gate_bias", false, "per-expert routing bias (aux-loss-free balancing)");
        moe.first_dense_layers = e.optional<int>("first_dense_layers", 0, "leading dense layers (first_k_dense_replace)",
                                                 at_least(0));
        moe.layer_step = e.optional<int>("layer_step", 1, "MoE every n-th layer (Llama 4 interleave step)", at_least(1));
        e.finish();
    }
    std::optional<MapReader> vision_reader;
    if (r.has("vision_encoder")) {
        MapReader& v = vision_reader.emplace(r.child("vision_encoder", "vision encoder counted in the total", false));
        VisionEncoderSpec ve;
        ve.layers = v.required<int>("layers", "encoder layers", at_least(1));
        ve.hidden = v.required<std::int64_t>("hidden_size", "encoder hidden size", at_least<std::int64_t>(1));
        ve.intermediate = v.required<std::int64_t>("intermediate_size", "encoder FFN width", at_least<std::int64_t>(1));
        ve.image_size = v.required<int>("image_size", "input image side in pixels", at_least(1));
        ve.patch_size = v.required<int>("patch_size", "patch side in pixels", at_least(1));
        ve.channels = v.optional<int>("channels", 3, "image channels", at_least(1));
        ve.pixel_shuffle_ratio = v.optional<double>("pixel_shuffle_ratio", 0.5, "pixel-shuffle ratio of the adapter");
        ve.projector_input = v.required<std::int64_t>("projector_input_dim", "adapter output width",
                                                      at_least<std::int64_t>(1));
        ve.projector_output = v.required<std::int64_t>("projector_output_dim", "projector width",
                                                       at_least<std::int64_t>(1));
        v.finish();
        m.vision = ve;
    }
    ModelFileFacts facts;
    facts.has_moe = moe_reader.has_value();
    facts.head_dim_given = a.has("head_dim");
    check_model_file(m, facts, YamlKeys{&r, &a, moe_reader ? &*moe_reader : nullptr,
                                        vision_reader ? &*vision_reader : nullptr});
    r.finish();
    return m;
}

ModelSpec load_model_yaml(const std::string& path, Diagnostics& diagnostics) {
    auto doc = YamlDocument::load_file(path, diagnostics);
    MapReader r = MapReader::root(doc);
    if (!doc->parsed()) return {};
    return read_model(r);
}

ModelSpec load_model_yaml_string(const std::string& text, const std::string& name, Diagnostics& diagnostics) {
    auto doc = YamlDocument::load_string(text, name, diagnostics);
    MapReader r = MapReader::root(doc);
    if (!doc->parsed()) return {};
    return read_model(r);
}

// ---- Hugging Face config.json ----------------------------------------------------------------------

namespace {

using nlohmann::json;

// Reads fields of a config.json object, recording errors that name the file, the key and, when the
// key is present, its line.
class JsonFields {
public:
    JsonFields(const json& obj, std::string prefix, const std::string& file, const std::string& text,
               Diagnostics& diagnostics)
        : obj_(obj), prefix_(std::move(prefix)), file_(file), text_(text), diagnostics_(diagnostics) {}

    bool has(const char* key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }

    std::int64_t integer(const char* key) {
        if (!has(key)) {
            error(key, fmt::format("missing required key \"{}\"", key));
            return 0;
        }
        return as_integer(key);
    }
    std::int64_t integer(const char* key, std::int64_t fallback) { return has(key) ? as_integer(key) : fallback; }
    // An integer the model keeps as an int (counts of layers, heads, experts; head dims).
    int int32(const char* key) { return narrow(key, integer(key)); }
    int int32(const char* key, std::int64_t fallback) { return narrow(key, integer(key, fallback)); }
    bool boolean(const char* key, bool fallback) {
        if (!has(key)) return fallback;
        if (!obj_.at(key).is_boolean()) {
            error(key, fmt::format("expected true or false; found {}", obj_.at(key).dump()));
            return fallback;
        }
        return obj_.at(key).get<bool>();
    }
    double number(const char* key, double fallback) {
        if (!has(key)) return fallback;
        if (!obj_.at(key).is_number()) {
            error(key, fmt::format("expected a number; found {}", obj_.at(key).dump()));
            return fallback;
        }
        return obj_.at(key).get<double>();
    }
    std::string string(const char* key, const std::string& fallback) {
        if (!has(key)) return fallback;
        if (!obj_.at(key).is_string()) {
            error(key, fmt::format("expected a string; found {}", obj_.at(key).dump()));
            return fallback;
        }
        return obj_.at(key).get<std::string>();
    }
    const json& raw(const char* key) const { return obj_.at(key); }

    void error(const std::string& key, const std::string& message) {
        failed_.insert(key);
        diagnostics_.error(locate(key), prefix_.empty() ? key : prefix_ + "." + key, message);
    }
    // Whether `key` already has a problem recorded (missing, wrongly typed, out of range): its value is
    // then a placeholder, and a later check of it would only repeat the problem.
    bool failed(const std::string& key) const { return failed_.count(key) > 0; }

private:
    int narrow(const char* key, std::int64_t v) {
        constexpr std::int64_t lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
        if (v >= lo && v <= hi) return static_cast<int>(v);
        error(key, fmt::format("expected an integer from {} to {}; found {}", lo, hi, v));
        return 0;
    }
    std::int64_t as_integer(const char* key) {
        const json& v = obj_.at(key);
        if (!v.is_number_integer()) {
            error(key, fmt::format("expected an integer; found {}", v.dump()));
            return 0;
        }
        return v.get<std::int64_t>();
    }
    // The line and column of the key's first occurrence in the text (good enough for config files,
    // whose keys are unique per object), or the file alone when absent.
    SourceLocation locate(const std::string& key) const {
        const auto pos = text_.find("\"" + key + "\"");
        if (pos == std::string::npos) return {file_, 0, 0};
        int line = 1;
        std::size_t line_start = 0;
        for (std::size_t i = 0; i < pos; ++i) {
            if (text_[i] == '\n') {
                ++line;
                line_start = i + 1;
            }
        }
        return {file_, line, static_cast<int>(pos - line_start) + 1};
    }

    const json& obj_;
    std::string prefix_;
    const std::string& file_;
    const std::string& text_;
    Diagnostics& diagnostics_;
    std::set<std::string> failed_;
};

void read_common(JsonFields& f, ModelSpec& m) {
    m.layers = f.int32("num_hidden_layers");
    m.hidden = f.integer("hidden_size");
    m.vocab = f.integer("vocab_size");
    m.max_seq = f.integer("max_position_embeddings", 0);
    m.attention.heads = f.int32("num_attention_heads");
    m.attention.kv_heads = f.int32("num_key_value_heads", m.attention.heads);
    const std::int64_t fallback_head_dim = m.attention.heads > 0 ? m.hidden / m.attention.heads : 0;
    m.attention.head_dim = f.int32("head_dim", fallback_head_dim);
    m.tied_embeddings = f.boolean("tie_word_embeddings", false);
    const std::string act = f.string("hidden_act", "silu");
    if (act != "silu" && act != "swish") f.error("hidden_act", fmt::format("expected \"silu\" (SwiGLU); found \"{}\"", act));
}

// The config.json key of a field for each model_type ("" where the family fixes the value: Llama 4's
// one shared expert, Mixtral's MoE in every layer).
const char* hf_key(const std::string& type, ModelField f) {
    using F = ModelField;
    const bool llama4 = type == "llama4";
    switch (f) {
        case F::layers: return "num_hidden_layers";
        case F::hidden_size: return "hidden_size";
        case F::vocab_size: return "vocab_size";
        case F::intermediate_size: return llama4 ? "intermediate_size_mlp" : "intermediate_size";
        case F::max_position_embeddings: return "max_position_embeddings";
        case F::mtp_layers: return "num_nextn_predict_layers";
        case F::heads: return "num_attention_heads";
        case F::kv_heads: return "num_key_value_heads";
        case F::head_dim: return "head_dim";
        case F::q_lora_rank: return "q_lora_rank";
        case F::kv_lora_rank: return "kv_lora_rank";
        case F::qk_nope_head_dim: return "qk_nope_head_dim";
        case F::qk_rope_head_dim: return "qk_rope_head_dim";
        case F::v_head_dim: return "v_head_dim";
        case F::chunk_size: return "attention_chunk_size";
        case F::global_layer_interval: return "no_rope_layer_interval";
        case F::routed_experts:
            return type == "qwen3_moe" ? "num_experts" : type == "deepseek_v3" ? "n_routed_experts" : "num_local_experts";
        case F::shared_experts: return type == "deepseek_v3" ? "n_shared_experts" : "";
        case F::top_k: return "num_experts_per_tok";
        case F::expert_intermediate_size:
            return type == "mixtral" || llama4 ? "intermediate_size" : "moe_intermediate_size";
        case F::shared_expert_intermediate_size: return "";
        case F::n_group: return "n_group";
        case F::topk_group: return "topk_group";
        case F::first_dense_layers: return "first_k_dense_replace";
        case F::layer_step: return llama4 ? "interleave_moe_layer_step" : type == "qwen3_moe" ? "decoder_sparse_step" : "";
        case F::vision_layers: return "num_hidden_layers";
        case F::vision_hidden_size: return "hidden_size";
        case F::vision_intermediate_size: return "intermediate_size";
        case F::vision_image_size: return "image_size";
        case F::vision_patch_size: return "patch_size";
        case F::vision_channels: return "num_channels";
        case F::vision_projector_input_dim: return "projector_input_dim";
        case F::vision_projector_output_dim: return "projector_output_dim";
    }
    return "";
}

bool is_vision_field(ModelField f) {
    using F = ModelField;
    switch (f) {
        case F::vision_layers:
        case F::vision_hidden_size:
        case F::vision_intermediate_size:
        case F::vision_image_size:
        case F::vision_patch_size:
        case F::vision_channels:
        case F::vision_projector_input_dim:
        case F::vision_projector_output_dim:
            return true;
        default:
            return false;
    }
}

ModelSpec from_hf(const json& root, const std::string& file, const std::string& text, Diagnostics& diagnostics) {
    ModelSpec m;
    m.source = file;
    m.name = fs::path(file).parent_path().filename().string();
    if (m.name.empty()) m.name = fs::path(file).stem().string();
    JsonFields top(root, "", file, text, diagnostics);
    std::optional<JsonFields> text_fields;    // Llama 4's text_config
    std::optional<JsonFields> vision_fields;  // Llama 4's vision_config
    const std::string type = top.string("model_type", "");
    if (!top.has("model_type")) {
        top.error("model_type", "missing required key \"model_type\" (expected one of: deepseek_v3, llama4, "
                                "llama4_text, qwen3_moe, llama, mixtral, qwen2)");
        return m;
    }
    if (type == "llama" || type == "qwen2" || type == "mixtral") {
        m.architecture = type;
        read_common(top, m);
        m.intermediate = top.integer("intermediate_size");
        // Qwen2 always adds biases to q, k, v (transformers' Qwen2Attention); Llama has attention_bias.
        m.attention.qkv_bias = type == "qwen2" ? true : top.boolean("attention_bias", false);
        if (type == "mixtral") {
            m.moe.routed_experts = top.int32("num_local_experts");
            m.moe.top_k = top.int32("num_experts_per_tok");
            m.moe.expert_intermediate = m.intermediate;
            m.moe.gating = GatingFunction::softmax;
        }
    } else if (type == "qwen3_moe") {
        m.architecture = type;
        read_common(top, m);
        m.intermediate = top.integer("intermediate_size", 0);
        m.attention.qkv_bias = top.boolean("attention_bias", false);
        m.attention.qk_norm = true;  // Qwen3 always normalizes q and k per head
        m.moe.routed_experts = top.int32("num_experts");
        m.moe.top_k = top.int32("num_experts_per_tok");
        m.moe.expert_intermediate = top.integer("moe_intermediate_size");
        m.moe.layer_step = top.int32("decoder_sparse_step", 1);
        if (top.has("mlp_only_layers") && !(top.raw("mlp_only_layers").is_array() && top.raw("mlp_only_layers").empty()))
            top.error("mlp_only_layers", "only an empty list is supported (every layer follows decoder_sparse_step)");
    } else if (type == "deepseek_v3") {
        m.architecture = type;
        read_common(top, m);
        m.attention.kind = AttentionKind::mla;
        m.attention.kv_heads = m.attention.heads;
        m.attention.head_dim = 0;
        m.intermediate = top.integer("intermediate_size");
        m.attention.q_lora_rank = top.int32("q_lora_rank", 0);  // null in V2-Lite: no compression
        m.attention.kv_lora_rank = top.int32("kv_lora_rank");
        m.attention.qk_nope_head_dim = top.int32("qk_nope_head_dim");
        m.attention.qk_rope_head_dim = top.int32("qk_rope_head_dim");
        m.attention.v_head_dim = top.int32("v_head_dim");
        m.attention.qkv_bias = top.boolean("attention_bias", false);
        m.moe.routed_experts = top.int32("n_routed_experts");
        m.moe.shared_experts = top.int32("n_shared_experts", 0);
        m.moe.top_k = top.int32("num_experts_per_tok");
        m.moe.expert_intermediate = top.integer("moe_intermediate_size");
        m.moe.n_group = top.int32("n_group", 1);
        m.moe.topk_group = top.int32("topk_group", 1);
        m.moe.first_dense_layers = top.int32("first_k_dense_replace", 0);
        // DeepSeek's modeling code makes layer i MoE when i >= first_k_dense_replace and
        // i % moe_layer_freq == 0; every released model uses 1, the only value modelled here.
        if (top.integer("moe_layer_freq", 1) != 1) top.error("moe_layer_freq", "only moe_layer_freq 1 is supported");
        const std::string scoring = top.string("scoring_func", "softmax");
        m.moe.gating = scoring == "sigmoid" ? GatingFunction::sigmoid : GatingFunction::softmax;
        m.moe.gate_bias = top.string("topk_method", "") == "noaux_tc";  // e_score_correction_bias
        m.mtp_layers = top.int32("num_nextn_predict_layers", 0);
    } else if (type == "llama4" || type == "llama4_text") {
        m.architecture = "llama4";
        const bool nested = top.has("text_config");
        const json& text_obj = nested ? top.raw("text_config") : root;
        JsonFields& t = nested ? text_fields.emplace(text_obj, "text_config", file, text, diagnostics) : top;
        read_common(t, m);
        if (nested && top.has("tie_word_embeddings")) m.tied_embeddings = top.boolean("tie_word_embeddings", false);
        m.intermediate = t.integer("intermediate_size_mlp");  // dense layers
        m.moe.expert_intermediate = t.integer("intermediate_size");
        m.moe.routed_experts = t.int32("num_local_experts");
        m.moe.top_k = t.int32("num_experts_per_tok");
        m.moe.shared_experts = 1;  // Llama4TextMoe always has one shared expert of intermediate_size
        m.moe.gating = GatingFunction::sigmoid;
        m.moe.layer_step = t.int32("interleave_moe_layer_step", 1);
        m.attention.chunk_size = t.int32("attention_chunk_size", 0);
        m.attention.global_layer_interval = t.int32("no_rope_layer_interval", 4);
        if (t.has("no_rope_layers") && t.raw("no_rope_layers").is_array() && !t.raw("no_rope_layers").empty()) {
            // An explicit list: 1 = RoPE + chunked, 0 = NoPE + global; take the period of the zeros.
            const auto& list = t.raw("no_rope_layers");
            for (std::size_t i = 0; i < list.size(); ++i) {
                if (list[i].is_number() && list[i].get<int>() == 0) {
                    m.attention.global_layer_interval = static_cast<int>(i) + 1;
                    break;
                }
            }
        }
        m.attention.qkv_bias = t.boolean("attention_bias", false);
        if (nested && top.has("vision_config")) {
            JsonFields& v = vision_fields.emplace(top.raw("vision_config"), "vision_config", file, text, diagnostics);
            VisionEncoderSpec ve;
            ve.layers = v.int32("num_hidden_layers");
            ve.hidden = v.integer("hidden_size");
            ve.intermediate = v.integer("intermediate_size");
            ve.image_size = v.int32("image_size");
            ve.patch_size = v.int32("patch_size");
            ve.channels = v.int32("num_channels", 3);
            ve.pixel_shuffle_ratio = v.number("pixel_shuffle_ratio", 0.5);
            ve.projector_input = v.integer("projector_input_dim");
            ve.projector_output = v.integer("projector_output_dim");
            if (ve.layers > 0) m.vision = ve;
        }
    } else {
        top.error("model_type", fmt::format("unsupported model_type \"{}\"; expected one of: deepseek_v3, llama4, "
                                            "llama4_text, qwen3_moe, llama, mixtral, qwen2",
                                            type));
        return m;
    }

    // The rules a model YAML is held to (model_checks.hpp), each reported at its config.json key unless
    // reading that key already recorded a problem.
    const std::string family = type == "llama4_text" ? "llama4" : type;
    ModelFileFacts facts;
    facts.has_moe = family != "llama" && family != "qwen2";
    JsonFields& text_keys = text_fields ? *text_fields : top;
    facts.head_dim_given = family != "deepseek_v3" && text_keys.has("head_dim");
    ModelRuleReporter reporter;
    reporter.key = [&](ModelField f) {
        const std::string key = hf_key(family, f);
        return key.empty() ? fmt::format("the {} family's fixed value", family) : key;
    };
    reporter.report = [&](ModelField f, const std::string& message) {
        JsonFields& fields = is_vision_field(f) && vision_fields ? *vision_fields : text_keys;
        const std::string key = hf_key(family, f);
        if (key.empty() || !fields.failed(key)) fields.error(key.empty() ? "model_type" : key, message);
    };
    check_model(m, facts, reporter);
    return m;
}

std::string read_text(const std::string& path, Diagnostics& diagnostics, bool& ok) {
    std::ifstream in(path);
    ok = static_cast<bool>(in);
    if (!ok) {
        diagnostics.error({path, 0, 0}, "", "cannot open the file (does it exist, and is it readable?)");
        return {};
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

ModelSpec load_hf_config_string(const std::string& text, const std::string& name, Diagnostics& diagnostics) {
    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& e) {
        // Turn the byte offset into line:column.
        int line = 1;
        int column = 1;
        for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
            if (text[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        diagnostics.error({name, line, column}, "", std::string("not valid JSON: ") + e.what());
        return {};
    }
    if (!root.is_object()) {
        diagnostics.error({name, 1, 1}, "", "expected a JSON object of configuration keys");
        return {};
    }
    return from_hf(root, name, text, diagnostics);
}

ModelSpec load_hf_config(const std::string& path, Diagnostics& diagnostics) {
    bool ok = false;
    const std::string text = read_text(path, diagnostics, ok);
    if (!ok) return {};
    return load_hf_config_string(text, path, diagnostics);
}

std::string models_directory() {
    std::vector<fs::path> candidates = {fs::path("models")};
    if (const char* env = std::getenv("CLUSTERSIM_SOURCE_DIR"); env && *env) candidates.emplace_back(fs::path(env) / "models");
#ifdef CLUSTERSIM_SOURCE_DIR
    candidates.emplace_back(fs::path(CLUSTERSIM_SOURCE_DIR) / "models");
#endif
    for (const auto& c : candidates) {
        std::error_code ec;
        if (fs::exists(c / "deepseek-v3.yaml", ec)) return c.string();
    }
    return {};
}

std::vector<std::string> bundled_model_names() {
    std::vector<std::string> names;
    const std::string dir = models_directory();
    if (dir.empty()) return names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".yaml") names.push_back(entry.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

ModelSpec load_model(const std::string& name_or_path, Diagnostics& diagnostics) {
    std::error_code ec;
    const fs::path p(name_or_path);
    if (fs::is_regular_file(p, ec)) {
        if (p.extension() == ".json") return load_hf_config(name_or_path, diagnostics);
        return load_model_yaml(name_or_path, diagnostics);
    }
    const bool looks_like_name = name_or_path.find('/') == std::string::npos && !p.has_extension();
    if (looks_like_name) {
        const std::string dir = models_directory();
        if (!dir.empty()) {
            const fs::path file = fs::path(dir) / (name_or_path + ".yaml");
            if (fs::is_regular_file(file, ec)) return load_model_yaml(file.string(), diagnostics);
        }
        const auto names = bundled_model_names();
        std::string message = fmt::format("no model named \"{}\"", name_or_path);
        if (auto near = closest_match(name_or_path, names); !near.empty()) message += fmt::format(" (did you mean \"{}\"?)", near);
        if (!names.empty()) message += fmt::format("; bundled models: {}", fmt::join(names, ", "));
        message += "; a path to a model YAML or a Hugging Face config.json also works";
        diagnostics.error({name_or_path, 0, 0}, "", message);
        return {};
    }
    diagnostics.error({name_or_path, 0, 0}, "", "cannot open the file (does it exist, and is it readable?)");
    return {};
}

ModelSpec load_model_or_throw(const std::string& name_or_path) {
    Diagnostics diagnostics;
    ModelSpec m = load_model(name_or_path, diagnostics);
    diagnostics.throw_if_any();
    return m;
}

}  // namespace clustersim
