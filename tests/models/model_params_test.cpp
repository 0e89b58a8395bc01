// Parameter totals, active parameters, KV cache bytes, FLOPs per token and activation memory of the
// bundled models, checked against published figures and closed forms.
#include "models/model_loader.hpp"
#include "models/model_spec.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace clustersim;

namespace {

struct Published {
    const char* model;
    double total;   // billions
    double active;  // billions
    const char* source;
};

// Published totals, each from the model's own card or paper.
const Published kPublished[] = {
    {"deepseek-v3", 671, 37, "DeepSeek-V3 Technical Report, arXiv:2412.19437, abstract"},
    {"deepseek-r1", 671, 37, "DeepSeek-R1 model card: 671B total, 37B activated"},
    {"llama4-maverick", 400, 17, "Llama 4 model card / HF blog: ~400B total, 17B active"},
    {"llama4-scout", 109, 17, "Llama 4 model card / HF blog: ~109B total, 17B active"},
    {"qwen3-235b-a22b", 235, 22, "Qwen3-235B-A22B model card: 235B total, 22B activated"},
    {"qwen3-30b-a3b", 30.5, 3.3, "Qwen3-30B-A3B model card: 30.5B total, 3.3B activated"},
    {"mixtral-8x7b", 46.7, 12.9, "Mixtral of Experts, arXiv:2401.04088: 47B (46.7B) total, 13B (12.9B) active"},
    {"llama3-8b", 8.03, 8.03, "Llama-3.1-8B model card: 8B (8.03B safetensors)"},
    {"llama3-70b", 70.6, 70.6, "Llama-3.1-70B model card: 70B (70.6B safetensors)"},
    {"llama3-405b", 405, 405, "The Llama 3 Herd of Models, arXiv:2407.21783: 405B"},
    {"qwq-32b", 32.5, 32.5, "QwQ-32B model card: 32.5B parameters"},
    {"gpt3-175b", 175, 175, "Narayanan et al. 2021, arXiv:2104.04473, Table 1: 175B"},
};

double rel(double a, double b) { return std::abs(a - b) / b; }

}  // namespace

TEST_CASE("every bundled model's total parameters are within 1% of the published total") {
    for (const auto& p : kPublished) {
        INFO(p.model << " (" << p.source << ")");
        const ModelSpec m = load_model_or_throw(p.model);
        const ParameterCounts c = parameter_counts(m);
        INFO("total " << c.total * 1e-9 << "B vs published " << p.total << "B");
        CHECK(rel(c.total * 1e-9, p.total) < 0.01);
    }
}

TEST_CASE("every bundled model's active parameters are within 2% of the published figure given to two digits") {
    // Published active counts are rounded to two significant digits (17B, 37B, 3.3B); ours count the
    // embedding and LM head, which is the convention that reproduces Mixtral's 12.9B and Qwen's 22B.
    for (const auto& p : kPublished) {
        INFO(p.model << " (" << p.source << ")");
        const ModelSpec m = load_model_or_throw(p.model);
        const ParameterCounts c = parameter_counts(m);
        INFO("active " << c.active * 1e-9 << "B vs published " << p.active << "B");
        CHECK(rel(c.active * 1e-9, p.active) < 0.02);
    }
}

TEST_CASE("DeepSeek-V3 counts 671B without the MTP module and 685B with it, as in the checkpoint") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    const ParameterCounts c = parameter_counts(m);
    CHECK(rel(c.total * 1e-9, 671) < 0.002);
    // The Hugging Face checkpoint holds 685B: 671B + the 14B MTP module (model card, "README_WEIGHTS.md").
    CHECK(rel(c.total_with_mtp * 1e-9, 685) < 0.005);
    CHECK(c.mtp > c.mtp_unique);
    CHECK(m.moe_layer_count() == 58);
}

TEST_CASE("Llama 4 Maverick alternates dense and MoE layers and Scout is MoE throughout") {
    const ModelSpec maverick = load_model_or_throw("llama4-maverick");
    CHECK_FALSE(maverick.is_moe_layer(0));
    CHECK(maverick.is_moe_layer(1));
    CHECK(maverick.moe_layer_count() == 24);
    const ModelSpec scout = load_model_or_throw("llama4-scout");
    CHECK(scout.moe_layer_count() == 48);
    // Every fourth layer is global NoPE attention; the rest are chunked with RoPE.
    CHECK(scout.is_chunked_layer(0));
    CHECK_FALSE(scout.is_chunked_layer(3));
    CHECK_FALSE(scout.uses_rope(3));
    CHECK(scout.uses_rope(4));
}

TEST_CASE("DeepSeek-V3 caches (512 + 64) x 61 layers x 2 bytes of MLA latent per token") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    CHECK(kv_bytes_per_token(m, 2.0).bytes() == (512.0 + 64.0) * 61 * 2);
    CHECK(kv_bytes_per_token(m, 1.0).bytes() == (512.0 + 64.0) * 61);
    // The latent is not split over heads: every attention-TP rank holds the whole of it.
    ParallelLayout tp8;
    tp8.tp = 8;
    CHECK(kv_cache_bytes(m, 1000, tp8).bytes() == (512.0 + 64.0) * 61 * 2 * 1000);
}

TEST_CASE("Llama 3 70B caches 2 x 8 KV heads x 128 x 80 layers x 2 bytes per token") {
    const ModelSpec m = load_model_or_throw("llama3-70b");
    CHECK(kv_bytes_per_token(m).bytes() == 2.0 * 8 * 128 * 80 * 2);  // 327,680 B = 320 KiB
    ParallelLayout tp8;
    tp8.tp = 8;
    CHECK(kv_cache_bytes(m, 10, tp8).bytes() == 2.0 * 1 * 128 * 80 * 2 * 10);
}

TEST_CASE("chunked-attention layers of Llama 4 cache at most one chunk per sequence") {
    const ModelSpec m = load_model_or_throw("llama4-scout");
    const ParallelLayout one;
    const double per_token_layer = 2.0 * 8 * 128 * 2;
    CHECK(kv_cache_bytes(m, 8192, one).bytes() == per_token_layer * 48 * 8192);
    // At 100k tokens the 36 chunked layers keep 8192 tokens and the 12 global layers keep all.
    CHECK(kv_cache_bytes(m, 100000, one).bytes() == per_token_layer * (36.0 * 8192 + 12.0 * 100000));
}

TEST_CASE("dense FLOPs per token are twice the active matmul weights, the 6N convention for training") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    const FlopsPerToken f = flops_per_token(m, 8192);
    const ParameterCounts c = parameter_counts(m);
    // Active matmul weights = all parameters but the embedding table and the norms.
    const double norms = (2.0 * m.layers + 1) * m.hidden;
    CHECK(f.dense_forward.flops() == Approx(2 * (c.total - c.embedding - norms)));
    CHECK(f.training_dense().flops() == Approx(6 * (c.total - c.embedding - norms)));
    // Causal attention: 2 x heads x (128 + 128) x (s + 1) / 2 per layer and token.
    CHECK(f.attention_forward.flops() == Approx(32 * 2.0 * 32 * 256 * (8192 + 1) / 2.0));
}

TEST_CASE("Megatron's FLOP count of a GPT is Narayanan et al. 2021's closed form") {
    // 72 B s l h^2 (1 + s / (6h) + V / (12 l h)) per batch of B sequences of s tokens (arXiv:2104.04473,
    // appendix), for a GPT with a 4h GELU FFN and as many KV heads as heads.
    for (const char* name : {"megatron-gpt-1700m", "megatron-gpt-70b", "megatron-gpt-462b"}) {
        INFO(name);
        const ModelSpec m = load_model_or_throw(name);
        REQUIRE(m.intermediate == 4 * m.hidden);
        REQUIRE(m.attention.kv_heads == m.attention.heads);
        const double s = 4096, l = m.layers, h = static_cast<double>(m.hidden), V = static_cast<double>(m.vocab);
        const double per_token = 72.0 * l * h * h * (1 + s / (6 * h) + V / (12 * l * h));
        CHECK(megatron_training_flops_per_token(m, 4096).flops() == Approx(per_token).epsilon(1e-12));
        // The whole s x s square: more than the causal count, by 3 x 2 x heads x 2 head_dim x (s - 1) / 2 per layer.
        const double causal = flops_per_token(m, 4096).training().flops();
        CHECK(megatron_training_flops_per_token(m, 4096).flops() > causal);
    }
}

TEST_CASE("Megatron's FLOP count weighs GQA's K and V projections and SwiGLU's third GEMM") {
    const ModelSpec m = load_model_or_throw("llama3-8b");  // 32 heads, 8 KV heads of 128, SwiGLU 14336, vocab 128256
    const double s = 8192, l = 32, h = 4096, q = 32 * 128, ffn = 14336, V = 128256;
    // megatron/training/training.py (r0.8.0): 12 B s l h^2 ((1 + g/a + s/h) q/h + ffn/h x 3/2 + V / (2 l h)).
    const double per_token = 12.0 * l * h * h * ((1 + 8.0 / 32 + s / h) * q / h + ffn / h * 1.5 + V / (2 * l * h));
    CHECK(megatron_training_flops_per_token(m, 8192).flops() == Approx(per_token).epsilon(1e-12));
}

TEST_CASE("Megatron's FLOP count refuses multi-head latent attention") {
    CHECK_THROWS_WITH(megatron_training_flops_per_token(load_model_or_throw("deepseek-v3"), 4096),
                      Catch::Contains("multi-head latent attention") && Catch::Contains("causal"));
}

TEST_CASE("causal attended pairs count each query's visible keys, within chunks when chunked") {
    CHECK(attended_pairs(0, 4, 0) == 10);       // 1 + 2 + 3 + 4
    CHECK(attended_pairs(3, 2, 0) == 4 + 5);    // after 3 cached tokens
    CHECK(attended_pairs(0, 6, 4) == 10 + 3);   // chunks [0,4) and [4,6)
    CHECK(attended_pairs(5, 2, 4) == 2 + 3);    // positions 5, 6 in chunk [4, 8)
}

TEST_CASE("GPT activations follow Korthikanti et al. 2022: sbh(34 + 5as/h), divided by t with sequence parallelism") {
    const ModelSpec m = load_model_or_throw("gpt3-175b");
    const double s = 2048, b = 1, h = 12288, a = 96;
    ActivationOptions o;
    o.flash_attention = false;
    o.dropout = true;
    ParallelLayout one;
    CHECK(activation_bytes_per_layer(m, 0, 1, 2048, one, o).bytes() == Approx(s * b * h * (34 + 5 * a * s / h)));
    ParallelLayout tp8;
    tp8.tp = 8;
    CHECK(activation_bytes_per_layer(m, 0, 1, 2048, tp8, o).bytes() == Approx(s * b * h / 8 * (34 + 5 * a * s / h)));
    tp8.sequence_parallel = false;
    CHECK(activation_bytes_per_layer(m, 0, 1, 2048, tp8, o).bytes() ==
          Approx(s * b * h * (10 + 24.0 / 8 + 5 * a * s / (h * 8))));
}

TEST_CASE("parameters per rank add up to the total when the model is split over TP, EP and pipeline stages") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    // EP8 over one node, two pipeline stages: each rank holds every non-expert weight of its stage
    // (TP 1) and an eighth of its routed experts, so 8 ranks hold 8 x (total - routed) + routed.
    ParallelLayout first;
    first.ep = 8;
    first.last_layer = 30;
    ParallelLayout last = first;
    last.first_layer = 30;
    last.last_layer = -1;
    const double sum = 8 * (parameters_per_rank(m, first) + parameters_per_rank(m, last));
    const ParameterCounts c = parameter_counts(m);
    double routed = 0;
    for (int i = 0; i < m.layers; ++i) routed += layer_params(m, i).routed_experts;
    CHECK(sum == Approx(8 * (c.total - routed) + routed));
    // TP8 splits the attention heads: q_b, kv_b and o_proj shrink 8x, the MLA down-projections stay.
    ParallelLayout tp8 = first;
    tp8.tp = 8;
    CHECK(parameters_per_rank(m, tp8) < parameters_per_rank(m, first));
    // With TP = EP = 1 a single stage holds the whole model.
    CHECK(parameters_per_rank(m, ParallelLayout{}) == Approx(c.total));
    last.include_mtp = true;
    CHECK(parameters_per_rank(m, last) > parameters_per_rank(m, first));
}

TEST_CASE("dense FFN weights follow dense_tp and shared experts follow attention's layout") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    // DeepSeek's prefill unit: MLA and shared experts data-parallel over 32 GPUs, routed experts EP32.
    ParallelLayout split;
    split.tp = 32;
    split.attn_dp = 32;
    split.ep = 32;
    ParallelLayout whole = split;
    whole.dense_tp = 1;
    // The first 3 layers' dense FFN (SwiGLU: 3 matrices of 7,168 x 18,432): a whole copy instead of 1/32.
    const double dense = 3.0 * 3 * 7168 * 18432;
    CHECK(parameters_per_rank(m, whole) - parameters_per_rank(m, split) == Approx(dense * 31 / 32));
    // Shared experts run with attention (attention TP 1): a whole copy per GPU whatever the tp. Going
    // from 32 to 64 GPUs halves only the routed experts (8 -> 4 per rank in 58 MoE layers), the
    // embedding and the LM head.
    ParallelLayout wider = whole;
    wider.tp = 64;
    wider.attn_dp = 64;
    wider.ep = 64;
    const double routed = 4.0 * 3 * 7168 * 2048 * 58;
    const double vocab = 2.0 * 129280 * 7168 * (1.0 / 32 - 1.0 / 64);
    CHECK(parameters_per_rank(m, whole) - parameters_per_rank(m, wider) == Approx(routed + vocab));
    // dense_tp must divide tp and hold whole attention groups.
    ParallelLayout bad = split;
    bad.dense_tp = 3;
    CHECK_THROWS_WITH(parameters_per_rank(m, bad), Catch::Contains("dense_tp 3 must divide tp 32"));
    bad.attn_dp = 4;  // attention TP 8
    bad.dense_tp = 4;
    CHECK_THROWS_WITH(parameters_per_rank(m, bad), Catch::Contains("multiple of attention TP 8"));
}

TEST_CASE("embedding and LM head weights follow vocab_tp") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    ParallelLayout split;
    split.tp = 32;
    split.attn_dp = 32;
    split.ep = 32;
    ParallelLayout whole = split;
    whole.vocab_tp = 1;
    // DeepSeek-V3's untied embedding and LM head, 129,280 x 7,168 each: whole copies instead of 1/32.
    const double vocab = 2.0 * 129280 * 7168;
    CHECK(parameters_per_rank(m, whole) - parameters_per_rank(m, split) == Approx(vocab * 31 / 32));
    ParallelLayout bad = split;
    bad.vocab_tp = 3;
    CHECK_THROWS_WITH(parameters_per_rank(m, bad), Catch::Contains("vocab_tp 3 must divide tp 32"));
}

TEST_CASE("a layout that does not divide the model is rejected with the reason") {
    const ModelSpec m = load_model_or_throw("mixtral-8x7b");
    ParallelLayout l;
    l.ep = 3;
    CHECK_THROWS_WITH(parameters_per_rank(m, l), Catch::Contains("ep 3 must divide the 8 routed experts"));
}

TEST_CASE("expert parallelism on a dense model is rejected") {
    const ModelSpec m = load_model_or_throw("llama3-70b");
    ParallelLayout l;
    l.ep = 8;
    CHECK_THROWS_WITH(validate_layout(m, l),
                      Catch::Contains("ep 8 needs routed experts to spread; the model is dense (use ep 1)"));
}

TEST_CASE("attention TP must split the KV heads evenly or replicate each on a whole number of ranks") {
    const ModelSpec m = load_model_or_throw("qwq-32b");  // 40 heads, 8 KV heads
    ParallelLayout l;
    l.tp = 5;  // divides the 40 heads; 5 ranks cannot share 8 KV heads
    CHECK_THROWS_WITH(validate_layout(m, l),
                      Catch::Contains("attention TP 5 must divide the 8 KV heads or be a multiple of them"));
    l.tp = 4;  // two KV heads per rank
    CHECK_NOTHROW(validate_layout(m, l));
    l.tp = 8;
    l.attn_dp = 1;
    CHECK_NOTHROW(validate_layout(m, l));  // one each
    const ModelSpec llama = load_model_or_throw("llama3-70b");  // 64 heads, 8 KV heads
    l.tp = 16;  // each KV head on two ranks
    CHECK_NOTHROW(validate_layout(llama, l));
}

TEST_CASE("redundant experts add whole expert copies per rank and must spread evenly over EP") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    // DeepSeek's decode unit: EP144 with 32 redundant experts, 288 / 144 = 2 routed experts per GPU;
    // its prefill unit: EP32 with 32 redundant, 288 / 32 = 9 (open-infra-index day 6).
    ParallelLayout decode;
    decode.tp = 144;
    decode.attn_dp = 144;
    decode.ep = 144;
    decode.redundant_experts = 32;
    CHECK(decode.experts_per_rank(m) == 2);
    ParallelLayout prefill;
    prefill.tp = 32;
    prefill.attn_dp = 32;
    prefill.ep = 32;
    prefill.redundant_experts = 32;
    CHECK(prefill.experts_per_rank(m) == 9);
    // Against the same layout without redundancy: one more expert per rank in each MoE layer.
    ParallelLayout plain = prefill;
    plain.redundant_experts = 0;
    CHECK(plain.experts_per_rank(m) == 8);
    double one_expert = 0;
    for (int i = 0; i < m.layers; ++i) one_expert += layer_params(m, i).routed_experts / m.moe.routed_experts;
    CHECK(parameters_per_rank(m, prefill) - parameters_per_rank(m, plain) == Approx(one_expert));
    CHECK_NOTHROW(parameters_per_rank(m, decode));
    ParallelLayout uneven = decode;
    uneven.redundant_experts = 16;  // 272 experts over 144 ranks
    CHECK_THROWS_WITH(parameters_per_rank(m, uneven), Catch::Contains("ep 144 must divide the 256 routed + 16 redundant"));
    ParallelLayout no_redundancy = decode;
    no_redundancy.redundant_experts = 0;  // 256 over 144
    CHECK_THROWS_WITH(parameters_per_rank(m, no_redundancy), Catch::Contains("ep 144 must divide the 256 routed experts"));
    const ModelSpec dense = load_model_or_throw("llama3-8b");
    ParallelLayout replicas;
    replicas.redundant_experts = 2;
    CHECK_THROWS_WITH(parameters_per_rank(dense, replicas), Catch::Contains("needs routed experts"));
}
