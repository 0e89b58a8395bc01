// Operator graphs of layers and stages: FLOPs against closed forms, MLA forms, backward splits,
// communication points and FP8 quantization.
#include "models/model_loader.hpp"
#include "models/operator_graph.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace clustersim;

namespace {

bool is_matmul(const Operator& op) {
    return op.kind == OpKind::gemm || op.kind == OpKind::grouped_gemm || op.kind == OpKind::moe_gate ||
           op.kind == OpKind::lm_head;
}
double matmul_flops(const std::vector<Operator>& ops) {
    double f = 0;
    for (const auto& op : ops)
        if (is_matmul(op)) f += op.flops.flops();
    return f;
}
const Operator& find(const std::vector<Operator>& ops, const std::string& name) {
    auto it = std::find_if(ops.begin(), ops.end(), [&](const Operator& o) { return o.name == name; });
    if (it == ops.end()) FAIL("no operator named " << name);
    return *it;
}
int count(const std::vector<Operator>& ops, CommKind k) {
    return static_cast<int>(std::count_if(ops.begin(), ops.end(), [&](const Operator& o) { return o.comm == k; }));
}
OperatorGraphOptions prefill(std::int64_t sequences, std::int64_t seq) {
    OperatorGraphOptions o;
    o.phase = Phase::prefill;
    o.batch.sequences = sequences;
    o.batch.seq = seq;
    return o;
}

// A decode step of 16 requests of 2,048 cached tokens on a TP8 rank with attention DP8.
OperatorGraphOptions attention_dp8_decode() {
    OperatorGraphOptions o;
    o.phase = Phase::decode;
    o.batch.kv_lengths = std::vector<std::int64_t>(16, 2048);
    o.layout.tp = 8;
    o.layout.attn_dp = 8;
    return o;
}

}  // namespace

TEST_CASE("a DeepSeek-V3 MoE layer's GEMM FLOPs are 2 x tokens x its active matmul weights") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    const auto ops = layer_operators(m, 10, prefill(2, 1024));
    const double T = 2048, h = 7168, H = 128;
    const double attention = h * 1536 + 1536 * H * 192 + h * 576 + 512 * H * 256 + H * 128 * h;
    const double moe = h * 256 + (1 + 8) * 3 * h * 2048;  // router + shared + top-8 routed
    CHECK(matmul_flops(ops) == Approx(2 * T * (attention + moe)));
    // Causal MLA attention in naive form: 2 x heads x (192 + 128) x s(s+1)/2 per sequence.
    const Operator& attn = find(ops, "L10.attn.mla_prefill");
    CHECK(attn.kind == OpKind::attn_prefill);
    CHECK(attn.head_dim == 192);
    CHECK(attn.flops.flops() == Approx(2 * 2 * H * 320 * 1024 * 1025 / 2.0));
    const Operator& experts = find(ops, "L10.moe.experts.gate_up_proj");
    CHECK(experts.kind == OpKind::grouped_gemm);
    CHECK(experts.groups == 256);
    CHECK(experts.m == 64);  // 2048 tokens x 8 / 256 experts under uniform routing
    CHECK(experts.n == 4096);
    CHECK(experts.k == 7168);
}

TEST_CASE("a dense Llama layer's operator FLOPs match the closed form including attention") {
    const ModelSpec m = load_model_or_throw("llama3-70b");
    const auto ops = layer_operators(m, 0, prefill(1, 4096));
    const double T = 4096, h = 8192;
    const double weights = h * 8192 + 2 * h * 1024 + 8192 * h + 3 * h * 28672;
    CHECK(matmul_flops(ops) == Approx(2 * T * weights));
    const FlopsPerToken f = flops_per_token(m, 4096);
    // One layer's share of the model's attention FLOPs per token, times the tokens.
    CHECK(find(ops, "L0.attn.attention").flops.flops() == Approx(f.attention_forward.flops() / 80 * T));
}

TEST_CASE("decode uses weight-absorbed MLA over the 576-wide latent with the same projection FLOPs") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o;
    o.phase = Phase::decode;
    o.batch.kv_lengths = {100, 300, 999, 4095};
    const auto dec = layer_operators(m, 10, o);
    const Operator& attn = find(dec, "L10.attn.mla_decode");
    CHECK(attn.kind == OpKind::mla_decode);
    CHECK(attn.kv_heads == 1);
    CHECK(attn.head_dim == 576);
    CHECK(attn.n == 512);  // V is the latent's first 512 columns
    CHECK(attn.batch == 4);
    CHECK(attn.context == 1375);  // mean of 101, 301, 1000, 4096
    CHECK(attn.flops.flops() == Approx(2.0 * 128 * (576 + 512) * (101 + 301 + 1000 + 4096)));
    // Absorption moves W_UK and W_UV around attention but multiplies as many weights per token.
    const auto pre = layer_operators(m, 10, prefill(4, 1));
    CHECK(matmul_flops(dec) == Approx(matmul_flops(pre)));
}

TEST_CASE("a decode step's speculative tokens multiply attention FLOPs but read each request's cache once") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o;
    o.phase = Phase::decode;
    o.batch.kv_lengths = {1000, 3000};
    const Operator one = find(layer_operators(m, 10, o), "L10.attn.mla_decode");
    o.batch.query_tokens = 2;  // one MTP draft
    const auto ops = layer_operators(m, 10, o);
    const Operator two = find(ops, "L10.attn.mla_decode");
    CHECK(two.batch == 2);
    CHECK(two.seq == 2);
    CHECK(two.flops.flops() == Approx(2 * one.flops.flops()));
    // The 576-wide latents of 1,001 + 3,001 cached tokens, read once, plus twice the queries.
    const double latents = (1001.0 + 3001.0) * 576 * 2;
    CHECK(one.bytes_read.bytes() == Approx(latents + 2.0 * 128 * 576 * 2));
    CHECK(two.bytes_read.bytes() == Approx(latents + 4.0 * 128 * 576 * 2));
    // Everything else sees four tokens.
    CHECK(find(ops, "L10.attn.o_proj").m == 4);
    o.batch.query_tokens = 0;
    CHECK_THROWS_AS(layer_operators(m, 10, o), std::invalid_argument);
}

TEST_CASE("prefill with a cached prefix attends to the prefix and re-expands its latents in naive MLA") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = prefill(1, 512);
    o.batch.cached_prefix = 1536;
    const auto ops = layer_operators(m, 10, o);
    const Operator& attn = find(ops, "L10.attn.mla_prefill");
    CHECK(attn.context == 1536);
    CHECK(attn.flops.flops() == Approx(2.0 * 128 * 320 * (512.0 * 1536 + 512.0 * 513 / 2)));
    CHECK(find(ops, "L10.attn.kv_b_proj").m == 2048);
}

TEST_CASE("Llama 4 chunked layers attend within chunks and global layers skip RoPE") {
    const ModelSpec m = load_model_or_throw("llama4-scout");
    const auto chunked = layer_operators(m, 0, prefill(1, 16384));
    const auto global = layer_operators(m, 3, prefill(1, 16384));
    const double per_pair = 2.0 * 40 * 256;
    CHECK(find(chunked, "L0.attn.attention").flops.flops() == Approx(per_pair * 2 * (8192.0 * 8193 / 2)));
    CHECK(find(global, "L3.attn.attention").flops.flops() == Approx(per_pair * 16384.0 * 16385 / 2));
    auto has_rope = [](const std::vector<Operator>& ops) {
        return std::any_of(ops.begin(), ops.end(), [](const Operator& op) { return op.kind == OpKind::rope; });
    };
    CHECK(has_rope(chunked));
    CHECK_FALSE(has_rope(global));
}

TEST_CASE("backward input and weight gradients each repeat the forward GEMM FLOPs") {
    const ModelSpec m = load_model_or_throw("qwen3-30b-a3b");
    OperatorGraphOptions o;
    o.batch.sequences = 1;
    o.batch.seq = 4096;
    o.phase = Phase::train_forward;
    const double fwd = matmul_flops(stage_operators(m, o));
    o.phase = Phase::train_backward_input;
    const auto b = stage_operators(m, o);
    o.phase = Phase::train_backward_weight;
    const auto w = stage_operators(m, o);
    CHECK(matmul_flops(b) == Approx(fwd));
    CHECK(matmul_flops(w) == Approx(fwd));
    // W holds only weight gradients; B runs in reverse order, starting from the loss and the LM head.
    CHECK(std::all_of(w.begin(), w.end(), [](const Operator& op) { return op.kind != OpKind::attn_prefill; }));
    REQUIRE(b.size() > 1);
    CHECK(b[0].name == "lm_head.loss.bwd");
    CHECK(b[1].name == "lm_head.dgrad");
    const Operator& wgrad = find(w, "L0.attn.qkv_proj.wgrad");
    CHECK(wgrad.k == 4096);  // the token dimension is the reduction
}

TEST_CASE("tensor parallelism marks all-reduces in serving and all-gather/reduce-scatter with sequence parallelism") {
    const ModelSpec m = load_model_or_throw("llama3-70b");
    OperatorGraphOptions o = prefill(1, 1000);
    o.layout.tp = 8;
    const auto serve = layer_operators(m, 5, o);
    CHECK(count(serve, CommKind::tp_all_reduce) == 2);
    CHECK(find(serve, "L5.attn.out.tp_all_reduce").comm_bytes.bytes() == 1000.0 * 8192 * 2);
    CHECK(find(serve, "L5.attn.qkv_proj").n == (64 / 8 + 2 * 1) * 128);
    o.phase = Phase::train_forward;
    const auto fwd = layer_operators(m, 5, o);
    CHECK(count(fwd, CommKind::tp_all_gather) == 2);
    CHECK(count(fwd, CommKind::tp_reduce_scatter) == 2);
    o.phase = Phase::train_backward_input;
    const auto bwd = layer_operators(m, 5, o);
    CHECK(count(bwd, CommKind::tp_all_gather) == 2);
    CHECK(count(bwd, CommKind::tp_reduce_scatter) == 2);
    o.layout.sequence_parallel = false;
    const auto bwd_no_sp = layer_operators(m, 5, o);
    CHECK(count(bwd_no_sp, CommKind::tp_all_reduce) == 2);  // Megatron's f: input gradients
}

TEST_CASE("expert parallelism marks dispatch and combine with FP8 and BF16 payloads") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = prefill(4, 1024);
    o.layout.ep = 32;
    o.precision = Precision::fp8;
    const auto ops = layer_operators(m, 10, o);
    const double routed = 4096.0 * 8;
    CHECK(find(ops, "L10.moe.ep_dispatch").comm_bytes.bytes() == Approx(routed * 7168 * (1 + 4.0 / 128)));
    CHECK(find(ops, "L10.moe.ep_combine").comm_bytes.bytes() == Approx(routed * 7168 * 2));
    const Operator& experts = find(ops, "L10.moe.experts.down_proj");
    CHECK(experts.groups == 8);
    CHECK(experts.dtype == DType::fp8);
    CHECK(experts.m == 4096);  // 32,768 routed copies over 8 local experts
    // FP8 GEMMs read quantized activations: a quantize operator precedes each of them.
    CHECK(find(ops, "L10.attn.o_proj.quantize").kind == OpKind::quantize_fp8);
    // Routed tokens are quantized once, before the dispatch, not again before the expert GEMM.
    CHECK(find(ops, "L10.moe.dispatch.quantize").m == 4096);
    CHECK(std::none_of(ops.begin(), ops.end(),
                       [](const Operator& op) { return op.name == "L10.moe.experts.gate_up_proj.quantize"; }));
    CHECK(find(ops, "L10.moe.gate").dtype == DType::bf16);  // the router stays in higher precision
}

TEST_CASE("redundant experts add groups to a rank's expert GEMMs, its routed tokens spread over them") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    // DeepSeek's prefill unit: EP32 with 32 redundant experts, 9 routed experts per GPU.
    OperatorGraphOptions o = prefill(4, 1024);
    o.layout.ep = 32;
    o.layout.redundant_experts = 32;
    const auto ops = layer_operators(m, 10, o);
    const Operator& experts = find(ops, "L10.moe.experts.down_proj");
    CHECK(experts.groups == 9);
    CHECK(experts.m == 3641);  // ceil(32,768 / 9): the same 32,768 routed copies over 9 local experts
    // The routed copies, their FLOPs and the EP traffic do not change; the weights read do.
    o.layout.redundant_experts = 0;
    const auto plain = layer_operators(m, 10, o);
    CHECK(matmul_flops(ops) == Approx(matmul_flops(plain)));
    CHECK(find(ops, "L10.moe.ep_dispatch").comm_bytes.bytes() ==
          Approx(find(plain, "L10.moe.ep_dispatch").comm_bytes.bytes()));
    CHECK(experts.bytes_read.bytes() > find(plain, "L10.moe.experts.down_proj").bytes_read.bytes());
    // EP144 (decode): 288 physical experts, 2 per GPU.
    OperatorGraphOptions d;
    d.phase = Phase::decode;
    d.batch.kv_lengths.assign(16, 4096);
    d.layout.ep = 144;
    d.layout.redundant_experts = 32;
    CHECK(find(layer_operators(m, 10, d), "L10.moe.experts.down_proj").groups == 2);
}

TEST_CASE("a pipeline stage holds the embedding first, the LM head last and the MTP module when asked") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = prefill(2, 512);
    o.layout.last_layer = 2;
    const auto first = stage_operators(m, o);
    CHECK(first.front().kind == OpKind::embedding);
    CHECK(std::none_of(first.begin(), first.end(), [](const Operator& op) { return op.kind == OpKind::lm_head; }));
    o.layout.first_layer = 59;
    o.layout.last_layer = -1;
    o.layout.include_mtp = true;
    const auto last = stage_operators(m, o);
    CHECK(find(last, "lm_head").m == 2);  // prefill computes logits of each sequence's last token
    CHECK(find(last, "MTP0.eh_proj").k == 2 * 7168);
    CHECK(find(last, "MTP0.moe.experts.gate_up_proj").layer == 61);
    CHECK_THROWS(layer_operators(m, 10, o));  // outside the stage
}

TEST_CASE("attention data parallelism keeps whole heads per rank and gathers tokens for the dense FFN") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = attention_dp8_decode();
    const auto dense = layer_operators(m, 0, o);
    CHECK(find(dense, "L0.attn.q_b_proj").n == 128 * 192);
    CHECK(count(dense, CommKind::tp_all_reduce) == 0);
    CHECK(find(dense, "L0.mlp.dp_all_gather").comm == CommKind::tp_all_gather);
    CHECK(find(dense, "L0.mlp.gate_up_proj").m == 16 * 8);
    CHECK(find(dense, "L0.mlp.gate_up_proj").n == 2 * 18432 / 8);
}

TEST_CASE("dense_tp sets the dense FFN's own TP group: 1 keeps a whole copy per GPU with no gather") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = attention_dp8_decode();
    // Default: the whole TP group, tokens of all 8 attention ranks gathered.
    CHECK(find(layer_operators(m, 0, o), "L0.mlp.dp_all_gather").group == 8);
    o.layout.dense_tp = 1;
    const auto whole = layer_operators(m, 0, o);
    CHECK(count(whole, CommKind::tp_all_gather) == 0);
    CHECK(count(whole, CommKind::tp_reduce_scatter) == 0);
    CHECK(count(whole, CommKind::tp_all_reduce) == 0);
    CHECK(find(whole, "L0.mlp.gate_up_proj").m == 16);
    CHECK(find(whole, "L0.mlp.gate_up_proj").n == 2 * 18432);
    // dense_tp 4: groups of 4 attention ranks gather their tokens.
    o.layout.dense_tp = 4;
    const auto four = layer_operators(m, 0, o);
    CHECK(find(four, "L0.mlp.dp_all_gather").group == 4);
    CHECK(find(four, "L0.mlp.dp_all_gather").comm_bytes.bytes() == 16.0 * 4 * 7168 * 2);
    CHECK(find(four, "L0.mlp.gate_up_proj").m == 16 * 4);
    CHECK(find(four, "L0.mlp.gate_up_proj").n == 2 * 18432 / 4);
}

TEST_CASE("vocab_tp sets the LM head's group: wider than attention TP it gathers the ranks' rows, 1 keeps them") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = attention_dp8_decode();
    o.layout.first_layer = m.layers - 1;  // the last stage: the final layer and the LM head
    // Default (the whole tp of 8 under attention DP 8): the hidden states of all 8 ranks' 16 tokens are
    // gathered, each GPU computes their logits over 1/8 of the vocabulary, and the logits are gathered.
    const auto wide = stage_operators(m, o);
    CHECK(find(wide, "lm_head.dp_all_gather").group == 8);
    CHECK(find(wide, "lm_head.dp_all_gather").comm_bytes.bytes() == 16.0 * 8 * 7168 * 2);
    CHECK(find(wide, "lm_head").m == 16 * 8);
    CHECK(find(wide, "lm_head").n == 129280 / 8);
    CHECK(find(wide, "lm_head.logits").comm_bytes.bytes() == 16.0 * 8 * 129280 * 2);
    // vocab_tp 1 (SGLang's --enable-dp-lm-head under full attention DP): each GPU its own rows, the
    // whole vocabulary, nothing moved.
    o.layout.vocab_tp = 1;
    const auto own = stage_operators(m, o);
    CHECK(find(own, "lm_head").m == 16);
    CHECK(find(own, "lm_head").n == 129280);
    CHECK(std::none_of(own.begin(), own.end(), [](const Operator& op) { return op.name.starts_with("lm_head."); }));
}

TEST_CASE("TP collectives name their own group: attention's over attention TP, the rest over tp") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    OperatorGraphOptions o = prefill(1, 256);
    o.layout.tp = 8;
    o.layout.attn_dp = 2;  // attention TP 4
    const auto ops = layer_operators(m, 0, o);
    CHECK(find(ops, "L0.attn.out.tp_all_reduce").group == 4);
    CHECK(find(ops, "L0.mlp.dp_all_gather").group == 8);
    o.layout.attn_dp = 1;
    CHECK(find(layer_operators(m, 0, o), "L0.attn.out.tp_all_reduce").group == 8);
}

TEST_CASE("operators carry the kernel cost model's shape fields and operator names") {
    const ModelSpec m = load_model_or_throw("qwen3-30b-a3b");
    OperatorGraphOptions o = prefill(1, 256);
    o.precision = Precision::fp8;
    const auto ops = layer_operators(m, 0, o);
    const Operator& rope = find(ops, "L0.attn.rope");
    CHECK(rope.heads == 32 + 4);
    CHECK(rope.head_dim == 128);
    const Operator& permute = find(ops, "L0.moe.permute");
    CHECK(permute.m == 256);
    CHECK(permute.n == 2048);
    CHECK(permute.k == 8);
    CHECK(kernel_op(find(ops, "L0.attn.qkv_proj.quantize")) == "fp8_quant");
    CHECK(kernel_op(find(ops, "L0.moe.experts.down_proj")) == "grouped_gemm");
    CHECK(find(ops, "L0.moe.topk").dtype == DType::fp32);
}

TEST_CASE("training computes the loss over every logit with Megatron's memory passes; serving does not") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    OperatorGraphOptions o;
    o.batch.sequences = 2;
    o.batch.seq = 1024;
    o.layout.tp = 2;
    o.phase = Phase::train_forward;
    const auto fwd = stage_operators(m, o);
    const Operator& loss = find(fwd, "lm_head.loss");
    const double logits = 2048.0 * (128256 / 2);  // tokens x this rank's share of the vocabulary
    CHECK(loss.kind == OpKind::cross_entropy);
    CHECK(loss.m == 2048);
    CHECK(loss.n == 128256 / 2);
    // Megatron-Core's vocab-parallel cross entropy: 22 bytes read and 16 written per logit forward.
    CHECK(loss.bytes_read.bytes() == Approx(22 * logits));
    CHECK(loss.bytes_written.bytes() == Approx(16 * logits));
    CHECK(kernel_op(loss).empty());  // priced from its own bytes, not a kernel table
    // The loss follows the LM head, then the TP all-reduce of three FP32 values per token.
    const auto head = std::find_if(fwd.begin(), fwd.end(), [](const Operator& op) { return op.name == "lm_head"; });
    REQUIRE(head + 2 < fwd.end());
    CHECK((head + 1)->name == "lm_head.loss");
    CHECK((head + 2)->comm == CommKind::tp_all_reduce);
    CHECK((head + 2)->comm_bytes.bytes() == 2048.0 * 3 * 4);
    // Its gradient opens the backward, before the LM head's input gradient: 8 bytes read, 6 written.
    o.phase = Phase::train_backward_input;
    const auto b = stage_operators(m, o);
    REQUIRE(b.size() > 1);
    CHECK(b[0].name == "lm_head.loss.bwd");
    CHECK(b[0].kind == OpKind::cross_entropy);
    CHECK(b[0].bytes_read.bytes() == Approx(8 * logits));
    CHECK(b[0].bytes_written.bytes() == Approx(6 * logits));
    CHECK(b[1].name == "lm_head.dgrad");
    o.phase = Phase::train_backward_weight;
    const auto w = stage_operators(m, o);
    CHECK(std::none_of(w.begin(), w.end(), [](const Operator& op) { return op.kind == OpKind::cross_entropy; }));
    // Serving computes no loss; a stage without the LM head neither.
    o.phase = Phase::prefill;
    const auto pre = stage_operators(m, o);
    CHECK(std::none_of(pre.begin(), pre.end(), [](const Operator& op) { return op.kind == OpKind::cross_entropy; }));
    o.phase = Phase::train_forward;
    o.layout.last_layer = 16;
    const auto first = stage_operators(m, o);
    CHECK(std::none_of(first.begin(), first.end(), [](const Operator& op) { return op.kind == OpKind::cross_entropy; }));
}
