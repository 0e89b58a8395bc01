// Tests of the FLOP and byte counts behind the roofline: prefill attention after a cached prefix, the
// attention backward as its own operator, and derived profiles scaling that operator's rows.
#include "kernels/operator_work.hpp"
#include "kernels/kernel_cost_model.hpp"
#include "tests/kernels/test_paths.hpp"
#include "tests/kernels/test_shapes.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace clustersim {
namespace {

KernelShape attention(const char* op, std::int64_t batch, std::int64_t seq, std::int64_t context) {
    KernelShape s;
    s.op = op;
    s.dtype = "bf16";
    s.batch = batch;
    s.heads = 32;
    s.kv_heads = 8;
    s.head_dim = 128;
    s.seq = seq;
    s.context = context;
    return s;
}

}  // namespace

TEST_CASE("prefill attention counts the causal square of the new tokens", "[kernels]") {
    const OperatorWork w = operator_work(attention("attn_prefill", 2, 1024, 0));
    // QK^T and PV: 4 x head_dim FLOPs per (query, key) pair and head; 1024 x 1025 / 2 causal pairs.
    CHECK(w.flops.flops() == Approx(2.0 * 32 * 4.0 * 128 * 1024.0 * 1025.0 / 2.0));
    // Q and O over 32 heads, K and V over 8, bf16.
    CHECK(w.bytes.bytes() == Approx(2.0 * 1024 * 128 * (2.0 * 32 + 2.0 * 8) * 2.0));
    CHECK(w.uses_tensor_cores);
}

TEST_CASE("prefill attention after a cached prefix covers every new query against the prefix", "[kernels]") {
    const std::int64_t t = 512, c = 3000;
    const OperatorWork fresh = operator_work(attention("attn_prefill", 1, t, 0));
    const OperatorWork cached = operator_work(attention("attn_prefill", 1, t, c));
    // t (t + 1) / 2 + t c pairs per head: the prefix adds t c pairs, here more than the causal square.
    const double pairs = t * (t + 1.0) / 2.0 + static_cast<double>(t) * c;
    CHECK(cached.flops.flops() == Approx(32 * 4.0 * 128 * pairs));
    CHECK(cached.flops.flops() > 5.0 * fresh.flops.flops());
    // K and V of the cached tokens are read too: 2 x kv_heads x head_dim x c more elements.
    CHECK(cached.bytes.bytes() - fresh.bytes.bytes() == Approx(2.0 * 8 * 128 * c * 2.0));
}

TEST_CASE("the attention backward is 2.5x the forward's FLOPs and twice its bytes", "[kernels]") {
    for (const std::int64_t context : {0, 1000}) {
        INFO("context " << context);
        const OperatorWork f = operator_work(attention("attn_prefill", 4, 2048, context));
        const OperatorWork b = operator_work(attention("attn_prefill_bwd", 4, 2048, context));
        CHECK(b.flops.flops() == Approx(2.5 * f.flops.flops()));
        CHECK(b.bytes.bytes() == Approx(2.0 * f.bytes.bytes()));
        CHECK(b.uses_tensor_cores);
    }
    KernelShape missing = attention("attn_prefill_bwd", 1, 0, 0);
    CHECK_THROWS_WITH(operator_work(missing), Catch::Contains("attn_prefill_bwd") && Catch::Contains("seq"));
}

TEST_CASE("decode attention reads each request's cache once for all its query tokens", "[kernels]") {
    KernelShape one = attention("attn_decode", 16, 0, 4000);
    KernelShape two = one;
    two.seq = 2;  // one speculative draft
    const OperatorWork w1 = operator_work(one), w2 = operator_work(two);
    CHECK(w1.flops.flops() == Approx(16 * 32 * 4.0 * 128 * 4000));
    CHECK(w2.flops.flops() == Approx(2 * w1.flops.flops()));
    const double cache = 16.0 * 2 * 8 * 128 * 4000 * 2;  // K and V of 8 heads, bf16
    CHECK(w1.bytes.bytes() == Approx(cache + 16.0 * 2 * 32 * 128 * 2));
    CHECK(w2.bytes.bytes() == Approx(cache + 16.0 * 4 * 32 * 128 * 2));
}

TEST_CASE("attention with a value head narrower than the key head counts both dims", "[kernels]") {
    const KernelShape mla = test::deepseek_mla_prefill("attn_prefill", 1, 1024);  // q/k 192, v 128
    const double pairs = 1024.0 * 1025 / 2;
    CHECK(operator_work(mla).flops.flops() == Approx(128 * 2.0 * (192 + 128) * pairs));
    CHECK(operator_work(mla).bytes.bytes() == Approx(2.0 * 128 * 1024 * (192 + 128) * 2));
}

TEST_CASE("MLA decode counts FlashMLA's FLOPs and reads the shared latent once", "[kernels]") {
    KernelShape s = test::deepseek_mla_decode(64, 2, 5000);
    const OperatorWork w = operator_work(s);
    // 2 h s_q s_k (d_k + d_v) per request (deepseek-ai/FlashMLA docs/20250422-new-kernel-deep-dive.md).
    CHECK(w.flops.flops() == Approx(64 * 2.0 * 128 * 2 * 5000 * (576 + 512)));
    // (h s_q d_k + s_k d_k + h s_q d_v) x 2 bytes per request.
    CHECK(w.bytes.bytes() == Approx(64 * 2.0 * (128 * 2 * 576 + 5000 * 576 + 128 * 2 * 512)));
    // About 2 h s_q FLOPs per byte: compute-bound on a Hopper GPU at h s_q = 256.
    CHECK(w.flops.flops() / w.bytes.bytes() > 400);
    s.n = 0;
    CHECK_THROWS_WITH(operator_work(s), Catch::Contains("mla_decode") && Catch::Contains("\"n\""));
}

TEST_CASE("attn_prefill_bwd is a known operator with its own table rows", "[kernels]") {
    CHECK(std::find(known_ops().begin(), known_ops().end(), "attn_prefill_bwd") != known_ops().end());
    const std::filesystem::path file = std::filesystem::temp_directory_path() / "clustersim-attn-bwd.csv";
    std::ofstream(file) << "# provenance: measured\n"
                        << kCalibrationColumns << "\n"
                        << "attn_prefill_bwd,bf16,,,,,4,32,8,128,4096,,,5000,4900,5100,25\n";
    const CalibrationTable t = read_calibration_table(file.string());
    std::filesystem::remove(file);
    REQUIRE(t.rows.size() == 1);
    CHECK(t.rows[0].shape.op == "attn_prefill_bwd");
    CHECK(t.rows[0].shape.seq == 4096);

    // Its rows answer backward queries; the forward keeps the roofline (no forward table here).
    GpuProfile profile = load_gpu_profile(test::kernel_fixtures(), "synth");
    profile.tables.push_back(t);
    const KernelCostModel model(profile);
    const KernelPrediction b = model.predict(attention("attn_prefill_bwd", 4, 4096, 0));
    CHECK(b.provenance == Provenance::measured);
    CHECK(b.time.us() == Approx(5000.0));
    // Along the sequence axis: twice the tokens stays on the measured line (extrapolated, never below the roofline).
    const KernelPrediction longer = model.predict(attention("attn_prefill_bwd", 4, 8192, 0));
    CHECK(longer.provenance == Provenance::extrapolated);
    CHECK(longer.time > b.time);
    CHECK(model.predict(attention("attn_prefill", 4, 4096, 0)).provenance == Provenance::roofline);
}

TEST_CASE("speculative decode queries and narrower value heads borrow from lines measured without them", "[kernels]") {
    GpuProfile profile = load_gpu_profile(test::kernel_fixtures(), "synth");
    const KernelCostModel roofline_only(profile);
    CalibrationTable t;
    t.file = "attention.csv";
    t.provenance = Provenance::measured;
    auto add = [&](const KernelShape& shape) {
        CalibrationRow row;
        row.shape = shape;
        row.time_us_p50 = 1.5 * roofline_time(shape, profile.spec, false).us();  // two thirds of the roofline's rate
        row.time_us_p10 = row.time_us_p50;
        row.time_us_p90 = row.time_us_p50;
        row.reps = 25;
        t.rows.push_back(row);
    };
    for (const std::int64_t context : {1024, 4096, 16384}) add(attention("attn_decode", 16, 0, context));
    for (const std::int64_t seq : {1024, 4096}) add(attention("attn_prefill", 4, seq, 0));
    profile.tables.push_back(t);
    const KernelCostModel model(profile);

    // seq = 1 is the rows' empty seq: the same shape, answered exactly.
    const KernelShape one = attention("attn_decode", 16, 1, 4096);
    CHECK(model.predict(one).provenance == Provenance::measured);
    // Two query tokens per request: the utilization of the one-token line, not the roofline.
    const KernelShape two = attention("attn_decode", 16, 2, 4096);
    const KernelPrediction p = model.predict(two);
    CHECK(p.provenance == Provenance::extrapolated);  // outside the table's box of seq
    CHECK(p.time.us() == Approx(1.5 * roofline_time(two, profile.spec, false).us()).epsilon(1e-6));
    CHECK(roofline_only.predict(two).provenance == Provenance::roofline);
    // An MLA-shaped prefill (value head 96 against key head 128) borrows from the equal-head lines.
    KernelShape narrow = attention("attn_prefill", 4, 4096, 0);
    narrow.n = 96;
    const KernelPrediction q = model.predict(narrow);
    CHECK(q.provenance == Provenance::extrapolated);
    CHECK(q.time.us() == Approx(1.5 * roofline_time(narrow, profile.spec, false).us()).epsilon(1e-6));
    // A value head as wide as the key head is the default spelling of the same shape.
    KernelShape same = attention("attn_prefill", 4, 4096, 0);
    same.n = 128;
    CHECK(model.predict(same).provenance == Provenance::measured);
}

TEST_CASE("a derived profile scales attn_prefill_bwd rows by the FLOP-rate ratio when compute-bound", "[kernels]") {
    GpuProfile source = load_gpu_profile(test::kernel_fixtures(), "synth");
    CalibrationTable t;
    t.file = "attn_prefill_bwd.csv";
    t.provenance = Provenance::measured;
    CalibrationRow row;
    row.shape = attention("attn_prefill_bwd", 4, 4096, 0);  // compute-bound on synth
    row.time_us_p50 = 5000;
    row.time_us_p10 = 4900;
    row.time_us_p90 = 5100;
    row.reps = 25;
    t.rows.push_back(row);
    source.tables = {t};
    const GpuProfile target = load_gpu_profile(test::kernel_fixtures(), "synth-derived");
    const GpuProfile derived = derive_profile(source, target.spec);
    REQUIRE(derived.tables.size() == 1);
    REQUIRE(derived.tables[0].rows.size() == 1);
    // synth-derived has twice synth's BF16 rate.
    CHECK(derived.tables[0].rows[0].time_us_p50 == Approx(5000.0 / 2.0));
    const KernelPrediction p = KernelCostModel(derived).predict(row.shape);
    CHECK(p.provenance == Provenance::derived);
    CHECK(p.time.us() == Approx(2500.0));
}

}  // namespace clustersim
