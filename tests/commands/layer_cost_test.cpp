// The layer cost library: operator graphs priced by the kernel cost model, totals, provenance shares
// and the communication operators it lists but leaves to the network model.
#include "kernels/kernel_cost_model.hpp"
#include "kernels/operator_work.hpp"
#include "models/model_loader.hpp"
#include "sim/execution/layer_cost.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace clustersim;

namespace {

std::string source_dir() { return CLUSTERSIM_SOURCE_DIR; }

// The real H100 spec with no tables: every answer is the roofline, whatever is committed under
// kernels/calibration, so these tests do not change when measurements arrive.
KernelCostModel h100_roofline() {
    return KernelCostModel(
        load_gpu_profile(load_gpu_spec(source_dir() + "/kernels/gpus/h100-sxm.yaml"), "/nonexistent/calibration"));
}

// The same without its published kernel rates: every operator on the datasheet roofline.
KernelCostModel h100_pure_roofline() {
    GpuSpec spec = load_gpu_spec(source_dir() + "/kernels/gpus/h100-sxm.yaml");
    spec.kernel_rates.clear();
    return KernelCostModel(load_gpu_profile(spec, "/nonexistent/calibration"));
}

// The synthetic GPU of the kernel tests: made-up gemm and copy tables (tests/kernels/fixtures/README.md).
KernelCostModel synth() { return KernelCostModel(load_gpu_profile(source_dir() + "/tests/kernels/fixtures", "synth")); }

OperatorGraphOptions decode(std::int64_t requests, std::int64_t context) {
    OperatorGraphOptions o;
    o.phase = Phase::decode;
    o.batch.kv_lengths.assign(static_cast<std::size_t>(requests), context);
    return o;
}

OperatorGraphOptions prefill(std::int64_t sequences, std::int64_t seq) {
    OperatorGraphOptions o;
    o.phase = Phase::prefill;
    o.batch.sequences = sequences;
    o.batch.seq = seq;
    return o;
}

const OperatorCost& find(const LayerCost& cost, const std::string& name) {
    auto it = std::find_if(cost.operators.begin(), cost.operators.end(),
                           [&](const OperatorCost& c) { return c.op.name == name; });
    if (it == cost.operators.end()) FAIL("no operator named " << name);
    return *it;
}

Time priced_sum(const LayerCost& cost) {
    Time t;
    for (const auto& c : cost.operators)
        if (c.priced) t += c.prediction.time;
    return t;
}

}  // namespace

TEST_CASE("the representative layer of an MoE model is its first MoE layer, of a dense model layer 0") {
    const ModelSpec v3 = load_model_or_throw("deepseek-v3");
    const int l = representative_layer(v3);
    CHECK(l == v3.moe.first_dense_layers);
    CHECK(v3.is_moe_layer(l));
    CHECK_FALSE(v3.is_moe_layer(l - 1));
    CHECK(representative_layer(load_model_or_throw("llama3-8b")) == 0);
}

TEST_CASE("a layer whose time is past the clock throws instead of summing to a negative time") {
    const ModelSpec m = load_model_or_throw("llama3-70b");
    CHECK_THROWS_AS(predict_layer_cost(m, 0, prefill(4096, 16'777'216), h100_roofline()), TimeOverflow);
    // The same layer at a size that fits: every operator and the total positive.
    const LayerCost fits = predict_layer_cost(m, 0, prefill(16, 1'048'576), h100_roofline());
    CHECK(fits.compute_time > Time::zero());
    for (const auto& s : fits.provenance) CHECK(s.share >= 0.0);
}

TEST_CASE("a decode layer takes longer over a longer context") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    const KernelCostModel gpu = h100_roofline();
    const int layer = representative_layer(m);
    const LayerCost short_context = predict_layer_cost(m, layer, decode(32, 1024), gpu);
    const LayerCost long_context = predict_layer_cost(m, layer, decode(32, 8192), gpu);
    CHECK(long_context.compute_time > short_context.compute_time);
    CHECK(find(long_context, "L3.attn.mla_decode").prediction.time >
          find(short_context, "L3.attn.mla_decode").prediction.time);
    // Only attention reads the cache: the expert GEMMs do not care how long the context is.
    CHECK(find(long_context, "L3.moe.experts.gate_up_proj").prediction.time ==
          find(short_context, "L3.moe.experts.gate_up_proj").prediction.time);
}

TEST_CASE("an FP8 KV cache halves the bytes decode attention reads, and its memory-bound time") {
    // Llama 3 70B, 64 requests over 32k cached tokens each (32,769 with the new one): the GQA decode attention
    // reads 64 x 32,769 x 8 KV heads x 128 x 2 (K and V) elements, far below the H100's ridge in FLOPs per byte.
    const ModelSpec m = load_model_or_throw("llama3-70b");
    const KernelCostModel gpu = h100_pure_roofline();
    OperatorGraphOptions o = decode(64, 32768);
    const OperatorCost bf16 = find(predict_layer_cost(m, 0, o, gpu), "L0.attn.attention");
    o.kv_dtype = DType::fp8;
    const OperatorCost fp8 = find(predict_layer_cost(m, 0, o, gpu), "L0.attn.attention");
    const double cache = 64.0 * 32769 * 8 * 128 * 2;
    CHECK(bf16.op.bytes_read.bytes() - fp8.op.bytes_read.bytes() == Approx(cache));
    CHECK(fp8.prediction.time.us() == Approx(bf16.prediction.time.us() / 2).epsilon(0.01));
    // DeepSeek-V3's MLA decode at FlashMLA's published rates: compute-bound at 128 heads and two query
    // tokens, so a narrower cache changes nothing there.
    const ModelSpec v3 = load_model_or_throw("deepseek-v3");
    const KernelCostModel h800(load_gpu_profile(source_dir() + "/kernels", "h800-sxm"));
    OperatorGraphOptions mla = decode(64, 4096);
    mla.batch.query_tokens = 2;
    const Time mla_bf16 = find(predict_layer_cost(v3, 3, mla, h800), "L3.attn.mla_decode").prediction.time;
    mla.kv_dtype = DType::fp8;
    const OperatorCost mla_fp8 = find(predict_layer_cost(v3, 3, mla, h800), "L3.attn.mla_decode");
    CHECK(mla_fp8.prediction.provenance == Provenance::published);
    CHECK(mla_fp8.prediction.time.us() == Approx(mla_bf16.us()).epsilon(1e-9));
}

TEST_CASE("an FP8 layer's GEMMs are faster than BF16 under the roofline") {
    const ModelSpec m = load_model_or_throw("llama3-70b");
    const KernelCostModel gpu = h100_roofline();
    OperatorGraphOptions bf16 = prefill(1, 8192);
    OperatorGraphOptions fp8 = bf16;
    fp8.precision = Precision::fp8;
    const LayerCost b = predict_layer_cost(m, 0, bf16, gpu);
    const LayerCost f = predict_layer_cost(m, 0, fp8, gpu);
    for (const char* gemm : {"L0.attn.qkv_proj", "L0.mlp.gate_up_proj", "L0.mlp.down_proj", "L0.attn.o_proj"}) {
        INFO(gemm);
        CHECK(find(f, gemm).op.dtype == DType::fp8);
        CHECK(find(f, gemm).prediction.time < find(b, gemm).prediction.time);
    }
    // The quantize operators FP8 adds cost less than what the GEMMs save at this size.
    CHECK(f.compute_time < b.compute_time);
    CHECK(find(f, "L0.mlp.gate_up_proj.quantize").priced);
}

TEST_CASE("without calibration tables every operator rests on the roofline but those with published rates") {
    const ModelSpec llama = load_model_or_throw("llama3-8b");
    const LayerCost plain = predict_layer_cost(llama, 0, decode(8, 2048), h100_roofline());
    REQUIRE(plain.provenance.size() == 1);
    CHECK(plain.provenance.front().provenance == Provenance::roofline);
    CHECK(plain.provenance.front().share == Approx(1.0));
    // DeepSeek-V3's MLA decode attention: FlashMLA's H800 rates, carried to the H100 (kernels/gpus/h100-sxm.yaml).
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    const LayerCost cost = predict_layer_cost(m, 3, decode(8, 2048), h100_roofline());
    REQUIRE(cost.provenance.size() == 2);
    for (const auto& c : cost.operators) {
        if (!c.priced) continue;
        INFO(c.op.name);
        CHECK(c.prediction.time >= c.prediction.roofline_bound);
        CHECK(c.prediction.provenance == (c.op.kind == OpKind::mla_decode ? Provenance::derived : Provenance::roofline));
    }
}

TEST_CASE("provenance shares add to one and to the layer's compute time") {
    // Llama 3 8B's o_proj (4096 x 4096) sits on the synthetic GPU's gemm grid; its other GEMMs are off
    // the grid and its norms have no table, so several provenance kinds mix.
    const ModelSpec m = load_model_or_throw("llama3-8b");
    const LayerCost cost = predict_layer_cost(m, 0, prefill(1, 256), synth());
    REQUIRE(cost.provenance.size() >= 2);
    double shares = 0;
    Time time;
    int operators = 0;
    for (const auto& s : cost.provenance) {
        shares += s.share;
        time += s.time;
        operators += s.operators;
    }
    CHECK(shares == Approx(1.0).epsilon(1e-12));
    CHECK(time == cost.compute_time);
    CHECK(cost.compute_time == priced_sum(cost));
    CHECK(operators == static_cast<int>(std::count_if(cost.operators.begin(), cost.operators.end(),
                                                      [](const OperatorCost& c) { return c.priced; })));
}

TEST_CASE("an operator at a measured grid point is priced as measured, from its table") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    const LayerCost cost = predict_layer_cost(m, 0, prefill(1, 256), synth());
    const OperatorCost& o_proj = find(cost, "L0.attn.o_proj");
    CHECK(o_proj.kernel_op == "gemm");
    CHECK(o_proj.prediction.provenance == Provenance::measured);
    CHECK(o_proj.prediction.basis.find("gemm.csv") != std::string::npos);
}

TEST_CASE("communication operators are listed with their payload and excluded from the compute time") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = decode(64, 4096);
    o.layout.tp = 8;
    o.layout.ep = 8;
    const LayerCost cost = predict_layer_cost(m, 3, o, h100_roofline());
    CHECK(cost.communication_operators >= 3);
    double payload = 0;
    int listed = 0;
    for (const auto& c : cost.operators) {
        if (!c.op.is_communication()) {
            CHECK(c.priced);
            continue;
        }
        CHECK_FALSE(c.priced);
        CHECK(c.op.comm_bytes.bytes() > 0);
        payload += c.op.comm_bytes.bytes();
        ++listed;
    }
    CHECK(listed == cost.communication_operators);
    CHECK(cost.communication_bytes.bytes() == Approx(payload));
    CHECK_FALSE(find(cost, "L3.moe.ep_dispatch").priced);
    CHECK_FALSE(find(cost, "L3.moe.ep_combine").priced);
    CHECK(find(cost, "L3.moe.ep_dispatch").op.comm == CommKind::ep_dispatch);
    CHECK(cost.compute_time == priced_sum(cost));

    const LayerCost alone = predict_layer_cost(m, 3, decode(64, 4096), h100_roofline());
    CHECK(alone.communication_operators == 0);
    CHECK(alone.communication_bytes.bytes() == 0);
}

TEST_CASE("kernel queries carry only the fields their tables fill") {
    const ModelSpec m = load_model_or_throw("deepseek-v3");
    OperatorGraphOptions o = decode(16, 1000);
    o.precision = Precision::fp8;
    const LayerCost cost = predict_layer_cost(m, 3, o, h100_roofline());
    const KernelShape attention = kernel_shape(find(cost, "L3.attn.mla_decode").op);
    CHECK(attention.op == "mla_decode");
    CHECK(attention.seq == 0);  // the graph's one new token is implied by decode
    CHECK(attention.context == 1001);
    CHECK(attention.n == 512);
    OperatorGraphOptions drafts = o;
    drafts.batch.query_tokens = 2;
    const LayerCost with_drafts = predict_layer_cost(m, 3, drafts, h100_roofline());
    CHECK(kernel_shape(find(with_drafts, "L3.attn.mla_decode").op).seq == 2);
    const KernelShape quantize = kernel_shape(find(cost, "L3.attn.o_proj.quantize").op);
    CHECK(quantize.op == "fp8_quant");
    CHECK(quantize.dtype == "fp8");
    const KernelShape topk = kernel_shape(find(cost, "L3.moe.topk").op);
    CHECK(topk.groups == 0);
    CHECK(topk.k == m.moe.top_k);
    Operator all_reduce;
    all_reduce.kind = OpKind::collective;
    all_reduce.comm = CommKind::tp_all_reduce;
    CHECK_THROWS_AS(kernel_shape(all_reduce), std::invalid_argument);  // the network model prices it
}

TEST_CASE("a training layer's backward attention is its own kernel, priced above the forward by its FLOPs") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    const KernelCostModel gpu = h100_pure_roofline();
    OperatorGraphOptions o;
    o.batch.sequences = 1;
    o.batch.seq = 4096;
    o.phase = Phase::train_forward;
    const LayerCost forward = predict_layer_cost(m, 0, o, gpu);
    o.phase = Phase::train_backward_input;
    const LayerCost backward = predict_layer_cost(m, 0, o, gpu);
    const OperatorCost& f = find(forward, "L0.attn.attention");
    const OperatorCost& b = find(backward, "L0.attn.attention.bwd");
    CHECK(f.kernel_op == "attn_prefill");
    CHECK(b.op.kind == OpKind::attn_prefill_bwd);
    CHECK(b.kernel_op == "attn_prefill_bwd");
    CHECK(kernel_op(b.op) == "attn_prefill_bwd");
    const KernelShape shape = kernel_shape(b.op);
    CHECK(shape.op == "attn_prefill_bwd");
    CHECK(shape.seq == 4096);
    CHECK(shape.heads == 32);
    CHECK(shape.kv_heads == 8);
    // FlashAttention-2's five backward matmuls against the forward's two; eight tensors moved against four.
    CHECK(b.op.flops.flops() == Approx(2.5 * f.op.flops.flops()));
    CHECK((b.op.bytes_read + b.op.bytes_written).bytes() == Approx(2.0 * (f.op.bytes_read + f.op.bytes_written).bytes()));
    // The cost model's work for the kernel query is the graph's: the same FLOPs and bytes.
    const OperatorWork work = operator_work(shape);
    CHECK(work.flops.flops() == Approx(b.op.flops.flops()));
    CHECK(work.bytes.bytes() == Approx((b.op.bytes_read + b.op.bytes_written).bytes()));
    // Compute-bound at 4,096 tokens: on the roofline the backward takes 2.5x the forward, not the forward's time.
    CHECK(b.prediction.provenance == Provenance::roofline);
    CHECK(b.prediction.time.seconds() == Approx(2.5 * f.prediction.time.seconds()).epsilon(1e-6));
    CHECK(b.op.kernel_scale == 1.0);
}

TEST_CASE("a prefill after a cached prefix queries attention work that counts the prefix, as the graph does") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    OperatorGraphOptions o = prefill(2, 512);
    o.batch.cached_prefix = 3000;
    const LayerCost cost = predict_layer_cost(m, 0, o, h100_roofline());
    const OperatorCost& attention = find(cost, "L0.attn.attention");
    const KernelShape shape = kernel_shape(attention.op);
    CHECK(shape.context == 3000);
    const OperatorWork work = operator_work(shape);
    // 512 x 513 / 2 causal pairs among the new tokens plus 512 x 3000 with the prefix, per sequence and head.
    CHECK(work.flops.flops() == Approx(2 * 32 * 4.0 * 128 * (512.0 * 513 / 2 + 512.0 * 3000)));
    CHECK(work.flops.flops() == Approx(attention.op.flops.flops()));
    CHECK(work.bytes.bytes() == Approx((attention.op.bytes_read + attention.op.bytes_written).bytes()));
    CHECK(attention.prediction.time >= Time::from_seconds(work.flops.flops() / 989.5e12));
}

TEST_CASE("the backward of an element-wise operator is its forward kernel's time scaled by the bytes") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    const KernelCostModel gpu = h100_roofline();
    OperatorGraphOptions o;
    o.batch.sequences = 1;
    o.batch.seq = 4096;
    o.phase = Phase::train_forward;
    const LayerCost forward = predict_layer_cost(m, 0, o, gpu);
    o.phase = Phase::train_backward_input;
    const LayerCost backward = predict_layer_cost(m, 0, o, gpu);
    for (const char* name : {"L0.input_norm", "L0.mlp.silu_mul", "L0.ffn.residual_add"}) {
        INFO(name);
        const OperatorCost& f = find(forward, name);
        const OperatorCost& b = find(backward, std::string(name) + ".bwd");
        CHECK(b.kernel_op == f.kernel_op);
        CHECK(f.op.kernel_scale == 1.0);
        // The input gradient reads the output gradient and the forward's inputs, and writes one tensor.
        const double ratio = (b.op.bytes_read + b.op.bytes_written) / (f.op.bytes_read + f.op.bytes_written);
        CHECK(ratio > 1.0);
        CHECK(b.op.kernel_scale == Approx(ratio));
        CHECK(b.prediction.time.seconds() == Approx(ratio * f.prediction.time.seconds()).epsilon(1e-6));
        CHECK(b.prediction.basis.find("backward bytes") != std::string::npos);
    }
    // rmsnorm reads x and writes y forward; backward reads dy and x again and writes dx: 3 tensors against 2.
    CHECK(find(backward, "L0.input_norm.bwd").op.kernel_scale == Approx(1.5));
}

TEST_CASE("operators without a kernel table are priced by the graph's bytes at the memory roofline") {
    const ModelSpec m = load_model_or_throw("gpt3-175b");  // LayerNorm and GELU: no kernel tables
    const KernelCostModel gpu = h100_roofline();
    const LayerCost cost = predict_layer_cost(m, 0, prefill(1, 2048), gpu);
    const OperatorCost& gelu = find(cost, "L0.mlp.gelu");
    CHECK(gelu.priced);
    CHECK(gelu.kernel_op.empty());
    CHECK(gelu.prediction.provenance == Provenance::roofline);
    const GpuSpec& spec = gpu.profile().spec;
    const Bytes moved = gelu.op.bytes_read + gelu.op.bytes_written;
    CHECK(gelu.prediction.time.seconds() ==
          Approx(moved.bytes() / (spec.hbm_bandwidth.value.bytes_per_second() * spec.memory_efficiency)));
}

TEST_CASE("the training loss and its gradient are priced by their own bytes at the memory roofline") {
    const ModelSpec m = load_model_or_throw("llama3-8b");
    const KernelCostModel gpu = h100_roofline();
    const GpuSpec& spec = gpu.profile().spec;
    OperatorGraphOptions o;
    o.batch.sequences = 1;
    o.batch.seq = 4096;
    for (const Phase phase : {Phase::train_forward, Phase::train_backward_input}) {
        o.phase = phase;
        const auto ops = stage_operators(m, o);
        const auto loss = std::find_if(ops.begin(), ops.end(), [](const Operator& op) { return op.kind == OpKind::cross_entropy; });
        REQUIRE(loss != ops.end());
        const KernelPrediction p = predict_operator(*loss, gpu);
        CHECK(p.provenance == Provenance::roofline);
        const Bytes moved = loss->bytes_read + loss->bytes_written;
        // 38 bytes per logit forward, 14 backward (models/operator_graph.cpp, kCrossEntropy*).
        CHECK(moved.bytes() == Approx((phase == Phase::train_forward ? 38.0 : 14.0) * 4096 * 128256));
        CHECK(p.time.seconds() == Approx(moved.bytes() / (spec.hbm_bandwidth.value.bytes_per_second() * spec.memory_efficiency)));
    }
}

TEST_CASE("the JSON form lists every operator and the totals") {
    const ModelSpec m = load_model_or_throw("qwen3-30b-a3b");
    OperatorGraphOptions o = decode(4, 512);
    o.layout.ep = 2;
    const LayerCost cost = predict_layer_cost(m, representative_layer(m), o, h100_roofline());
    const auto j = layer_cost_json(cost);
    CHECK(j["operators"].size() == cost.operators.size());
    CHECK(j["compute_time_us"].get<double>() == Approx(cost.compute_time.us()));
    CHECK(j["communication"]["operators"].get<int>() == cost.communication_operators);
    CHECK(j["provenance"][0]["share"].get<double>() == Approx(1.0));
    const std::string text = layer_cost_text(cost);
    CHECK(text.find("excluded") != std::string::npos);
    CHECK(text.find("roofline 100.0%") != std::string::npos);
}
