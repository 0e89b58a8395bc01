// Loading models by name, from YAML and from Hugging Face config.json files, and the diagnostics
// that bad model files produce.
#include "models/model_loader.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

using namespace clustersim;

namespace {

const std::string kFixtures = std::string(CLUSTERSIM_SOURCE_DIR) + "/tests/models/fixtures/";

std::string all_messages(const Diagnostics& d) {
    std::string out;
    for (const auto& e : d.errors()) out += format(e) + "\n";
    return out;
}

}  // namespace

TEST_CASE("the DeepSeek-R1 config.json gives the same counts as the bundled YAML") {
    Diagnostics d;
    const ModelSpec hf = load_model(kFixtures + "deepseek-r1.config.json", d);
    INFO(all_messages(d));
    REQUIRE(d.empty());
    const ModelSpec yaml = load_model_or_throw("deepseek-r1");
    const ParameterCounts a = parameter_counts(hf);
    const ParameterCounts b = parameter_counts(yaml);
    CHECK(a.total == b.total);
    CHECK(a.active == b.active);
    CHECK(a.total_with_mtp == b.total_with_mtp);
    CHECK(kv_bytes_per_token(hf).bytes() == kv_bytes_per_token(yaml).bytes());
    CHECK(hf.moe.gating == GatingFunction::sigmoid);
    CHECK(hf.moe.n_group == 8);
    CHECK(hf.moe.topk_group == 4);
    CHECK(hf.moe.first_dense_layers == 3);
    CHECK(hf.mtp_layers == 1);
}

TEST_CASE("the Llama 3.1 70B config.json gives the same counts as the bundled YAML") {
    Diagnostics d;
    const ModelSpec hf = load_model(kFixtures + "llama3.1-70b.config.json", d);
    INFO(all_messages(d));
    REQUIRE(d.empty());
    const ModelSpec yaml = load_model_or_throw("llama3-70b");
    CHECK(parameter_counts(hf).total == parameter_counts(yaml).total);
    CHECK(kv_bytes_per_token(hf).bytes() == kv_bytes_per_token(yaml).bytes());
}

TEST_CASE("a nested Llama 4 config.json reads text_config and matches Maverick's dense and MoE layers") {
    Diagnostics d;
    const ModelSpec hf = load_model(kFixtures + "llama4-maverick-2-layers.config.json", d);
    INFO(all_messages(d));
    REQUIRE(d.empty());
    const ModelSpec yaml = load_model_or_throw("llama4-maverick");
    REQUIRE(hf.layers == 2);
    CHECK_FALSE(hf.is_moe_layer(0));
    CHECK(hf.is_moe_layer(1));
    CHECK(layer_params(hf, 0).total() == layer_params(yaml, 0).total());
    CHECK(layer_params(hf, 1).total() == layer_params(yaml, 1).total());
    CHECK(hf.attention.chunk_size == 8192);
    CHECK(hf.attention.global_layer_interval == 2);  // this cut-down copy sets no_rope_layer_interval 2
    CHECK_FALSE(hf.vision.has_value());               // its vision encoder has 0 layers
}

TEST_CASE("a model name with a typo is answered with the closest bundled model") {
    Diagnostics d;
    load_model("deepseek-v4", d);
    REQUIRE(d.size() == 1);
    CHECK_THAT(format(d.errors()[0]), Catch::Contains("did you mean \"deepseek-v3\"?"));
}

TEST_CASE("a misspelt key in a model file names the file, line, key and the key it resembles") {
    Diagnostics d;
    load_model(kFixtures + "bad-typo.yaml", d);
    const std::string all = all_messages(d);
    INFO(all);
    CHECK_THAT(all, Catch::Contains("bad-typo.yaml:5:1: hiden_size: unknown key \"hiden_size\" (did you mean \"hidden_size\"?)"));
    CHECK_THAT(all, Catch::Contains("missing required key \"hidden_size\""));
}

TEST_CASE("an unknown gating function is an error at its line with a suggestion") {
    Diagnostics d;
    load_model(kFixtures + "bad-moe.yaml", d);
    const std::string all = all_messages(d);
    INFO(all);
    CHECK_THAT(all, Catch::Contains("bad-moe.yaml:14:11: moe.gating: expected one of: softmax, sigmoid; found \"sigmod\""));
}

TEST_CASE("inconsistent MoE numbers are errors on the moe key") {
    Diagnostics d;
    load_model_yaml_string("name: x\narchitecture: mixtral\nlayers: 1\nhidden_size: 8\nvocab_size: 8\n"
                           "attention: {heads: 2}\nmoe: {routed_experts: 4, top_k: 8, expert_intermediate_size: 8}\n",
                           "inline.yaml", d);
    INFO(all_messages(d));
    CHECK(d.size() == 1);
    CHECK_THAT(all_messages(d),
               Catch::Contains("inline.yaml:7:33: moe.top_k: top_k 8 exceeds the 4 routed experts (routed_experts)"));
}

// ---- config.json files are held to the rules a model YAML is ----------------------------------------

namespace {

// A Llama 3 8B-like config.json (https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json)
// with one field set to `value`, one key per line.
std::string llama_json(const std::string& key, nlohmann::json value) {
    nlohmann::json j = {{"model_type", "llama"},        {"hidden_act", "silu"},       {"hidden_size", 4096},
                        {"intermediate_size", 14336},   {"num_attention_heads", 32},  {"num_key_value_heads", 8},
                        {"num_hidden_layers", 32},      {"vocab_size", 128256}};
    j[key] = std::move(value);
    return j.dump(1);
}

// The one problem found in `json` read as `name`, formatted.
std::string only_message(const std::string& json, const std::string& name) {
    Diagnostics d;
    load_hf_config_string(json, name, d);
    INFO(all_messages(d));
    CHECK(d.size() == 1);
    return all_messages(d);
}

}  // namespace

TEST_CASE("a config.json Mixtral with more experts per token than experts is rejected like the YAML") {
    const std::string json =
        R"({"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
"num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 32000, "num_local_experts": 8,
"num_experts_per_tok": 9})";
    CHECK_THAT(only_message(json, "mx.json"),
               Catch::Contains("mx.json:3:1: num_experts_per_tok: num_experts_per_tok 9 exceeds the 8 routed experts "
                               "(num_local_experts)"));
}

TEST_CASE("a config.json with zero attention heads is rejected at num_attention_heads") {
    CHECK_THAT(only_message(llama_json("num_attention_heads", 0), "zero.json"),
               Catch::Contains("zero.json:6:2: num_attention_heads: expected a value of at least 1; found 0"));
}

TEST_CASE("a config.json whose KV heads do not divide the heads is rejected at num_key_value_heads") {
    CHECK_THAT(only_message(llama_json("num_key_value_heads", 7), "kv7.json"),
               Catch::Contains("kv7.json:8:2: num_key_value_heads: num_key_value_heads 7 must divide "
                               "num_attention_heads 32"));
    CHECK_THAT(only_message(llama_json("num_key_value_heads", 64), "kv64.json"),
               Catch::Contains("num_key_value_heads: num_key_value_heads 64 must divide num_attention_heads 32"));
}

TEST_CASE("a config.json hidden size the heads do not divide is rejected unless head_dim is given") {
    CHECK_THAT(only_message(llama_json("hidden_size", 4095), "h4095.json"),
               Catch::Contains("h4095.json:6:2: num_attention_heads: num_attention_heads 32 must divide hidden_size "
                               "4095: head_dim is not given, and hidden_size / num_attention_heads would be truncated "
                               "to 127"));
    // With head_dim stated, q_proj is heads x head_dim wide whatever hidden_size is (Qwen3's 64 x 128 over 4096).
    Diagnostics d;
    nlohmann::json j = nlohmann::json::parse(llama_json("hidden_size", 4095));
    j["head_dim"] = 128;
    const ModelSpec m = load_hf_config_string(j.dump(1), "h.json", d);
    INFO(all_messages(d));
    CHECK(d.empty());
    CHECK(m.attention.head_dim == 128);
}

TEST_CASE("a config.json with head_dim 0 or no layers is rejected at that key") {
    CHECK_THAT(only_message(llama_json("head_dim", 0), "hd0.json"),
               Catch::Contains("hd0.json:2:2: head_dim: expected a value of at least 1; found 0"));
    CHECK_THAT(only_message(llama_json("num_hidden_layers", 0), "l0.json"),
               Catch::Contains("l0.json:7:2: num_hidden_layers: expected a value of at least 1; found 0"));
}

TEST_CASE("a config.json count past an int is rejected instead of wrapping") {
    CHECK_THAT(only_message(llama_json("num_hidden_layers", std::int64_t{1} << 32), "big.json"),
               Catch::Contains("num_hidden_layers: expected an integer from -2147483648 to 2147483647; found "
                               "4294967296"));
}

TEST_CASE("a config.json key already reported missing is not reported again by the model rules") {
    Diagnostics d;
    load_model(kFixtures + "bad-missing-layers.config.json", d);
    const std::string all = all_messages(d);
    INFO(all);
    CHECK(d.size() == 2);  // the missing num_hidden_layers and the mistyped vocab_size, once each
    CHECK_THAT(all, !Catch::Contains("expected a value of at least"));
}

TEST_CASE("a model YAML hidden size the heads do not divide is rejected by the same rule") {
    Diagnostics d;
    load_model_yaml_string("name: x\narchitecture: llama\nlayers: 1\nhidden_size: 4095\nvocab_size: 8\n"
                           "intermediate_size: 8\nattention: {heads: 32, kv_heads: 8}\n",
                           "h.yaml", d);
    INFO(all_messages(d));
    CHECK(d.size() == 1);
    CHECK_THAT(all_messages(d), Catch::Contains("attention.heads: heads 32 must divide hidden_size 4095: head_dim is "
                                                "not given"));
}

TEST_CASE("a model YAML value out of range is reported once, by the reader") {
    Diagnostics d;
    load_model_yaml_string("name: x\narchitecture: llama\nlayers: 1\nhidden_size: 4096\nvocab_size: 8\n"
                           "intermediate_size: 8\nattention: {heads: 0, kv_heads: 8}\n",
                           "h0.yaml", d);
    INFO(all_messages(d));
    CHECK(d.size() == 1);
    CHECK_THAT(all_messages(d), Catch::Contains("attention.heads: expected a value of at least 1; found 0"));
}

TEST_CASE("a config.json missing a required key names the file and the key, and a wrong type its line") {
    Diagnostics d;
    load_model(kFixtures + "bad-missing-layers.config.json", d);
    const std::string all = all_messages(d);
    INFO(all);
    CHECK_THAT(all, Catch::Contains("bad-missing-layers.config.json: num_hidden_layers: missing required key \"num_hidden_layers\""));
    CHECK_THAT(all, Catch::Contains("bad-missing-layers.config.json:9:3: vocab_size: expected an integer; found \"128256\""));
}

TEST_CASE("an unsupported model_type in a config.json lists the supported ones") {
    Diagnostics d;
    load_hf_config_string(R"({"model_type": "gpt_neox", "hidden_size": 8})", "neox.json", d);
    CHECK_THAT(all_messages(d), Catch::Contains("unsupported model_type \"gpt_neox\""));
}

TEST_CASE("invalid JSON is reported at its line") {
    Diagnostics d;
    load_hf_config_string("{\n  \"model_type\": \"llama\",\n  oops\n}", "broken.json", d);
    REQUIRE(d.size() == 1);
    CHECK(d.errors()[0].where.line == 3);
}

TEST_CASE("every bundled model file loads without diagnostics") {
    const auto names = bundled_model_names();
    CHECK(names.size() >= 12);
    for (const auto& n : names) {
        INFO(n);
        Diagnostics d;
        load_model(n, d);
        INFO(all_messages(d));
        CHECK(d.empty());
    }
}

TEST_CASE("the qwen3_moe and mixtral config.json mappings agree with the bundled YAML files") {
    // The fields of https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json and
    // https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json that the loader reads.
    Diagnostics d;
    const ModelSpec qwen = load_hf_config_string(
        R"({"model_type": "qwen3_moe", "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 6144,
            "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
            "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768, "decoder_sparse_step": 1,
            "mlp_only_layers": [], "vocab_size": 151936, "tie_word_embeddings": false, "rope_theta": 1000000.0})",
        "qwen3-30b-a3b.json", d);
    const ModelSpec mixtral = load_hf_config_string(
        R"({"model_type": "mixtral", "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "num_local_experts": 8,
            "num_experts_per_tok": 2, "vocab_size": 32000, "tie_word_embeddings": false})",
        "mixtral.json", d);
    INFO(all_messages(d));
    REQUIRE(d.empty());
    CHECK(parameter_counts(qwen).total == parameter_counts(load_model_or_throw("qwen3-30b-a3b")).total);
    CHECK(parameter_counts(qwen).active == parameter_counts(load_model_or_throw("qwen3-30b-a3b")).active);
    CHECK(parameter_counts(mixtral).total == parameter_counts(load_model_or_throw("mixtral-8x7b")).total);
    CHECK(parameter_counts(mixtral).active == parameter_counts(load_model_or_throw("mixtral-8x7b")).active);
}
