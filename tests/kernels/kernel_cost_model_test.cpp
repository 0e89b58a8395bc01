// Tests of KernelCostModel on the synthetic "synth" GPU: exact points, interpolation, extrapolation,
// roofline fallback, derived profiles, leave-one-out and the query command.
#include "kernels/kernel_cost_model.hpp"
#include "kernels/operator_work.hpp"
#include "sim/input/diagnostics.hpp"
#include "tests/kernels/test_paths.hpp"
#include "tests/kernels/test_shapes.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace clustersim {
namespace {

KernelShape gemm(std::int64_t m, std::int64_t n, std::int64_t k, const char* dtype = "bf16") {
    KernelShape s;
    s.op = "gemm";
    s.dtype = dtype;
    s.m = m;
    s.n = n;
    s.k = k;
    return s;
}

KernelShape copy_of(std::int64_t bytes) {
    KernelShape s;
    s.op = "copy";
    s.bytes = bytes;
    return s;
}

KernelCostModel synth_model() {
    return KernelCostModel(load_gpu_profile(test::kernel_fixtures(), "synth"));
}

}  // namespace

TEST_CASE("the cost model is exact at a measured point", "[kernels]") {
    const auto model = synth_model();
    const KernelPrediction p = model.predict(gemm(256, 4096, 4096));
    CHECK(p.time.us() == Approx(30.0));
    CHECK(p.provenance == Provenance::measured);
    CHECK(p.basis.find("gemm.csv") != std::string::npos);
}

TEST_CASE("the cost model interpolates monotonically between measured token counts", "[kernels]") {
    const auto model = synth_model();
    double previous = 0.0;
    for (std::int64_t m = 16; m <= 256; m += 8) {
        const KernelPrediction p = model.predict(gemm(m, 4096, 4096));
        CHECK(p.time.us() >= previous);
        CHECK(p.time.us() >= 26.0 - 1e-9);
        CHECK(p.time.us() <= 30.0 + 1e-9);
        if (m != 16 && m != 256) CHECK(p.provenance == Provenance::interpolated);
        previous = p.time.us();
    }
    // m = 4 is halfway in log space between m = 1 (25 us) and m = 16 (26 us): the geometric mean.
    CHECK(model.predict(gemm(4, 4096, 4096)).time.us() == Approx(std::sqrt(25.0 * 26.0)).epsilon(1e-6));
}

TEST_CASE("a shape between measured weight shapes is interpolated by borrowing utilization", "[kernels]") {
    const auto model = synth_model();
    const KernelPrediction p = model.predict(gemm(256, 6144, 4096));
    CHECK(p.provenance == Provenance::interpolated);
    CHECK(p.time.us() > 30.0);
    CHECK(p.time.us() < 50.0);
}

TEST_CASE("extrapolation never beats the roofline", "[kernels]") {
    const auto model = synth_model();
    const KernelShape shapes[] = {gemm(16384, 4096, 4096), gemm(65536, 8192, 4096), gemm(1024, 32768, 16384),
                                  gemm(8192, 65536, 512),  copy_of(10'000'000'000), copy_of(1000)};
    for (const KernelShape& s : shapes) {
        const KernelPrediction p = model.predict(s);
        INFO(shape_to_csv(s));
        CHECK(p.provenance == Provenance::extrapolated);
        CHECK(p.time >= roofline_time(s, model.profile().spec, false));
        CHECK(p.time == std::max(p.time, p.roofline_bound));
    }
    // Past the grid a GEMM keeps the utilization of its last measured point: 4x the tokens, ~4x the time.
    CHECK(model.predict(gemm(16384, 4096, 4096)).time.us() == Approx(4.0 * 180.0).epsilon(0.01));
    // Below the grid a small copy approaches a latency floor rather than shrinking with its bytes.
    CHECK(model.predict(copy_of(1000)).time.us() <= 10.0);
    CHECK(model.predict(copy_of(1000)).time.us() >= 10.0 * 0.001);
}

TEST_CASE("an operator without a table is a pure roofline with the spec's efficiencies", "[kernels]") {
    const auto model = synth_model();
    KernelShape s;
    s.op = "rmsnorm";
    s.dtype = "bf16";
    s.m = 1024;
    s.n = 4096;
    const KernelPrediction p = model.predict(s);
    CHECK(p.provenance == Provenance::roofline);
    // (2 * 1024 * 4096 + 4096) bf16 elements at 2000 GB/s * 0.9.
    const double expected_us = (2.0 * 1024 * 4096 + 4096) * 2.0 / (2000e9 * 0.9) * 1e6;
    CHECK(p.time.us() == Approx(expected_us).epsilon(1e-6));
    CHECK(p.time == roofline_time(s, model.profile().spec, true));
}

TEST_CASE("an operator with published kernel rates and no table is priced at those rates", "[kernels]") {
    const KernelCostModel h800(load_gpu_profile(test::real_kernels_dir(), "h800-sxm"));
    KernelShape s = test::deepseek_mla_decode(64, 0, 5000);
    for (const std::int64_t query_tokens : {1, 2}) {
        INFO("query tokens " << query_tokens);
        s.seq = query_tokens;
        const OperatorWork w = operator_work(s);
        const KernelPrediction p = h800.predict(s);
        CHECK(p.provenance == Provenance::published);
        CHECK(p.basis.find("FlashMLA") != std::string::npos);
        // Compute-bound at h x s_q = 128 and 256 (FlashMLA's deep dive): the FLOPs at 660 TFLOPS.
        CHECK(p.time.seconds() == Approx(w.flops.flops() / 660e12));
        CHECK(p.time >= p.roofline_bound);
    }
    s.heads = 16;  // 16 heads, one token: memory-bound, the bytes at 3000 GB/s
    s.seq = 0;
    CHECK(h800.predict(s).time.seconds() == Approx(operator_work(s).bytes.bytes() / 3000e9));
    // The H100 and H200 take the H800's rates as derived ones, the H200's bandwidth scaled by its HBM's.
    const KernelCostModel h100(load_gpu_profile(test::real_kernels_dir(), "h100-sxm"));
    CHECK(h100.predict(s).provenance == Provenance::derived);
    CHECK(h100.predict(s).time == h800.predict(s).time);
    const KernelCostModel h200(load_gpu_profile(test::real_kernels_dir(), "h200-sxm"));
    CHECK(h200.predict(s).provenance == Provenance::derived);
    CHECK(h200.predict(s).time.seconds() == Approx(operator_work(s).bytes.bytes() / 4299e9));
    // A GPU without rates for the op (another architecture) answers with its roofline.
    const KernelCostModel b200(load_gpu_profile(test::real_kernels_dir(), "b200"));
    CHECK(b200.predict(s).provenance == Provenance::roofline);
}

TEST_CASE("a published FLOP rate without a bandwidth leaves the memory side to the roofline", "[kernels]") {
    const KernelCostModel b200(load_gpu_profile(test::real_kernels_dir(), "b200"));
    const GpuSpec& spec = b200.profile().spec;
    const PublishedKernelRates* forward = spec.published_rates("attn_prefill", "bf16");
    REQUIRE(forward);
    CHECK(forward->memory_from_roofline);
    CHECK(forward->memory.value() == Approx(spec.hbm_bandwidth.value.value() * spec.memory_efficiency));
    for (const auto& [op, tflops] : {std::pair{"attn_prefill", 1460.0}, std::pair{"attn_prefill_bwd", 1000.0}}) {
        INFO(op);
        // Compute-bound: four sequences of 4,096 tokens at FlashMLA's B200 figure.
        const KernelShape s = test::deepseek_mla_prefill(op, 4, 4096);
        const KernelPrediction p = b200.predict(s);
        CHECK(p.provenance == Provenance::published);
        CHECK(p.basis.find("FlashMLA") != std::string::npos);
        CHECK(p.time.seconds() == Approx(operator_work(s).flops.flops() / (tflops * 1e12)));
        // The GB200 derives the rate by the BF16 peaks' ratio (2500 / 2250).
        const KernelCostModel gb200(load_gpu_profile(test::real_kernels_dir(), "gb200"));
        CHECK(gb200.predict(s).provenance == Provenance::derived);
        CHECK(gb200.predict(s).time.seconds() == Approx(p.time.seconds() * 2250.0 / 2500.0).epsilon(1e-3));
    }
    // On Hopper only the forward has a published figure (FlashAttention-3's "up to 740 TFLOPs/s" on the H100
    // SXM5), which the H800 and H200 take unscaled; the backward stays a roofline.
    const KernelShape forward_shape = test::deepseek_mla_prefill("attn_prefill", 4, 4096);
    const KernelCostModel h100(load_gpu_profile(test::real_kernels_dir(), "h100-sxm"));
    CHECK(h100.predict(forward_shape).provenance == Provenance::published);
    CHECK(h100.predict(forward_shape).time.seconds() == Approx(operator_work(forward_shape).flops.flops() / 740e12));
    for (const char* gpu : {"h800-sxm", "h200-sxm"}) {
        INFO(gpu);
        const KernelCostModel same_chip(load_gpu_profile(test::real_kernels_dir(), gpu));
        CHECK(same_chip.predict(forward_shape).provenance == Provenance::derived);
        CHECK(same_chip.predict(forward_shape).time == h100.predict(forward_shape).time);
    }
    CHECK(h100.predict(test::deepseek_mla_prefill("attn_prefill_bwd", 4, 4096)).provenance == Provenance::roofline);
}

TEST_CASE("a published table answers exactly with provenance published", "[kernels]") {
    const auto model = synth_model();
    const KernelPrediction p = model.predict(gemm(4096, 4096, 4096, "fp8"));
    CHECK(p.provenance == Provenance::published);
    CHECK(p.time.us() == Approx(100.0));
    CHECK(model.predict(gemm(2048, 4096, 4096, "fp8")).provenance == Provenance::extrapolated);
}

TEST_CASE("a GPU without tables is derived from its source by datasheet ratios", "[kernels]") {
    const GpuProfile profile = load_gpu_profile(test::kernel_fixtures(), "synth-derived");
    CHECK(profile.derived_from == "synth");
    const KernelCostModel model(profile);
    // m = 4096 is compute-bound on synth: scaled by the FLOP-rate ratio 1000 / 2000.
    const KernelPrediction big = model.predict(gemm(4096, 4096, 4096));
    CHECK(big.provenance == Provenance::derived);
    CHECK(big.time.us() == Approx(180.0 / 2.0));
    // m = 1 is memory-bound on synth: scaled by the bandwidth ratio 2000 / 3000.
    CHECK(model.predict(gemm(1, 4096, 4096)).time.us() == Approx(25.0 / 1.5));
    CHECK(model.predict(copy_of(100'000'000)).time.us() == Approx(120.0 / 1.5));
    // Interpolated answers from derived tables stay marked derived.
    CHECK(model.predict(gemm(64, 4096, 4096)).provenance == Provenance::derived);
}

TEST_CASE("a GPU with tables of its own derives only the ops it lacks", "[kernels]") {
    const GpuProfile profile = load_gpu_profile(test::kernel_fixtures(), "synth-partly-derived");
    CHECK(profile.derived_from == "synth");
    const KernelCostModel model(profile);
    // Its own copy table wins over synth's scaled one (120 us / 1.5 = 80 us).
    const KernelPrediction copy = model.predict(copy_of(100'000'000));
    CHECK(copy.provenance == Provenance::measured);
    CHECK(copy.time.us() == Approx(70.0));
    // GEMMs come from synth's tables, scaled as for a GPU with none of its own.
    const KernelPrediction big = model.predict(gemm(4096, 4096, 4096));
    CHECK(big.provenance == Provenance::derived);
    CHECK(big.time.us() == Approx(180.0 / 2.0));
    // Leave-one-out checks its own row only.
    const auto rows = leave_one_out(profile);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].shape.op == "copy");
}

TEST_CASE("a GPU derives from several sources in order, each source's own tables only", "[kernels]") {
    const GpuProfile profile = load_gpu_profile(test::kernel_fixtures(), "synth-two-sources");
    CHECK(profile.derived_from == "synth-partly-derived, synth");
    const KernelCostModel model(profile);
    // The copy comes from synth-partly-derived's measured 70 us (HBM 3000 -> 1500 GB/s), not from synth's
    // 120 us: the first source's row wins.
    const KernelPrediction copy = model.predict(copy_of(100'000'000));
    CHECK(copy.provenance == Provenance::derived);
    CHECK(copy.time.us() == Approx(70.0 * 2.0));
    // synth-partly-derived's GEMMs are themselves derived, so they are not passed on: synth's are
    // (180 us at 1000 TFLOP/s -> 4000).
    CHECK(model.predict(gemm(4096, 4096, 4096)).time.us() == Approx(180.0 / 4.0));
}

TEST_CASE("a derive_from naming a GPU without a spec is an error that suggests the closest", "[kernels]") {
    try {
        load_gpu_profile(test::kernel_fixtures(), "synth-unknown-source");
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("no GPU spec named \"synht\"") != std::string::npos);
        CHECK(std::string(e.what()).find("did you mean \"synth\"") != std::string::npos);
    }
}

TEST_CASE("leave-one-out predicts each measured row from the others", "[kernels]") {
    const GpuProfile profile = load_gpu_profile(test::kernel_fixtures(), "synth");
    const auto rows = leave_one_out(profile);
    CHECK(rows.size() == 7 + 2 + 1);  // gemm bf16, copy, published gemm fp8
    bool seen = false;
    for (const auto& r : rows) {
        CHECK(r.relative_error == Approx((r.predicted_us - r.measured_us) / r.measured_us));
        CHECK(r.provenance != Provenance::measured);
        if (r.shape.same_shape(gemm(16, 4096, 4096))) {
            seen = true;
            // From m = 1 (25 us) and m = 256 (30 us): halfway in log m is the geometric mean.
            CHECK(r.predicted_us == Approx(std::sqrt(25.0 * 30.0)).epsilon(1e-6));
        }
    }
    CHECK(seen);
    const auto summary = summarize_leave_one_out(rows);
    REQUIRE(summary.size() == 2);
    CHECK(summary[0].op == "copy");
    CHECK(summary[1].op == "gemm");
    CHECK(summary[1].count == 8);
    CHECK(summary[1].p90_abs_error >= summary[1].median_abs_error);
}

TEST_CASE("the kernels query writes every input row with its time and provenance", "[kernels]") {
    const auto out = std::filesystem::temp_directory_path() / "clustersim_kernels_query_test.csv";
    std::filesystem::remove(out);
    run_kernels_query("synth", test::kernel_fixtures() + "/queries.csv", out.string(), test::kernel_fixtures());
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    CHECK(s.rfind("op,dtype,m,n,k,groups,batch,heads,kv_heads,head_dim,seq,context,bytes,time_us,provenance\n", 0) ==
          0);
    CHECK(s.find("gemm,bf16,256,4096,4096,,,,,,,,,30,measured\n") != std::string::npos);
    CHECK(s.find(",interpolated\n") != std::string::npos);
    CHECK(s.find(",extrapolated\n") != std::string::npos);
    CHECK(s.find("rmsnorm,bf16,1024,4096,,,,,,,,,,") != std::string::npos);
    CHECK(s.find(",roofline\n") != std::string::npos);
    std::filesystem::remove(out);
}

TEST_CASE("a malformed query file writes nothing", "[kernels]") {
    const auto out = std::filesystem::temp_directory_path() / "clustersim_kernels_query_bad.csv";
    std::filesystem::remove(out);
    CHECK_THROWS_AS(run_kernels_query("synth", test::kernel_fixtures() + "/bad/unknown_op.csv", out.string(),
                                      test::kernel_fixtures()),
                    InputError);
    CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("a query row too large for the clock is an error naming its line and columns, never a negative time",
          "[kernels]") {
    const auto out = std::filesystem::temp_directory_path() / "clustersim_kernels_query_too_large.csv";
    std::filesystem::remove(out);
    std::vector<Diagnostic> errors;
    try {
        run_kernels_query("synth", test::kernel_fixtures() + "/too_large.csv", out.string(), test::kernel_fixtures());
    } catch (const InputError& e) {
        errors = e.diagnostics();
    }
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].where.line == 4);
    CHECK_THAT(errors[0].message, Catch::StartsWith("the gemm shape is too large to predict on synth: a time of "));
    CHECK_THAT(errors[0].message, Catch::Contains("at most 2^63 ps = 9.223e+06 s"));
    CHECK_THAT(errors[0].message, Catch::EndsWith("reduce its columns m, n, k"));
    CHECK(errors[1].where.line == 5);
    CHECK_THAT(errors[1].message, Catch::EndsWith("reduce its columns batch, heads, kv_heads, head_dim, seq"));
    CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("a prediction past the clock throws instead of wrapping to a negative time", "[kernels]") {
    const auto model = synth_model();
    CHECK_THROWS_AS(model.predict(gemm(std::int64_t{1} << 62, 4096, 4096)), TimeOverflow);
    // A large shape whose time fits (hours) still comes out positive.
    CHECK(model.predict(gemm(std::int64_t{1} << 40, 4096, 4096)).time > Time::zero());
}

TEST_CASE("a copy is looked up whatever dtype the query gives it", "[kernels]") {
    const auto model = synth_model();
    KernelShape s = copy_of(100'000'000);
    s.dtype = "bf16";
    const KernelPrediction p = model.predict(s);
    CHECK(p.provenance == Provenance::measured);
    CHECK(p.time.us() == Approx(120.0));
}

TEST_CASE("the committed GPUs load, answering by roofline until their tables are measured", "[kernels]") {
    for (const char* gpu : {"h100-sxm", "h800-sxm", "h200-sxm", "b200", "gb200"}) {
        INFO(gpu);
        const KernelCostModel model(load_gpu_profile(test::real_kernels_dir(), gpu));
        const KernelShape s = gemm(4096, 7168, 2048);
        const KernelPrediction p = model.predict(s);
        if (model.profile().tables.empty()) CHECK(p.provenance == Provenance::roofline);
        CHECK(p.time >= p.roofline_bound);
    }
}

TEST_CASE("the H100's published BF16 GEMM table answers its shapes and the other GPUs derive from it", "[kernels]") {
    const KernelCostModel h100(load_gpu_profile(test::real_kernels_dir(), "h100-sxm"));
    // XLA's sm_90 entry for 4096^3: 783,328,793,548,203 FLOP/s, i.e. 2 x 4096^3 FLOPs in 175,456 ns.
    const KernelPrediction own = h100.predict(gemm(4096, 4096, 4096));
    CHECK(own.provenance == Provenance::published);
    CHECK(own.basis.find("gemm_bf16.csv") != std::string::npos);
    CHECK(own.time.us() == Approx(2.0 * 4096 * 4096 * 4096 / 783328793548203.0 * 1e6).epsilon(1e-6));
    // Past the table's largest shape the kernel keeps the utilization of the nearest measured lines.
    const KernelPrediction large = h100.predict(gemm(16384, 8192, 8192));
    CHECK(large.provenance == Provenance::extrapolated);
    CHECK(large.time > large.roofline_bound);
    // The H800 (same chip) takes the time unscaled; the B200 scales it by the BF16 peaks' ratio.
    const KernelCostModel h800(load_gpu_profile(test::real_kernels_dir(), "h800-sxm"));
    // The two derive from each other's own tables: the H100's FP8 GEMMs are DeepGEMM's published H800 rows.
    const KernelShape deepgemm = gemm(4096, 7168, 16384, "fp8");
    CHECK(h800.predict(deepgemm).provenance == Provenance::published);
    CHECK(h100.predict(deepgemm).provenance == Provenance::derived);
    CHECK(h100.predict(deepgemm).time == h800.predict(deepgemm).time);
    const KernelPrediction on_h800 = h800.predict(gemm(4096, 4096, 4096));
    CHECK(on_h800.provenance == Provenance::derived);
    CHECK(on_h800.time == own.time);
    const KernelCostModel b200(load_gpu_profile(test::real_kernels_dir(), "b200"));
    const KernelPrediction on_b200 = b200.predict(gemm(4096, 4096, 4096));
    CHECK(on_b200.provenance == Provenance::derived);
    const double ratio = h100.profile().spec.peak_flop_rate("bf16").value() / b200.profile().spec.peak_flop_rate("bf16").value();
    CHECK(on_b200.time.us() == Approx(own.time.us() * ratio).epsilon(1e-6));
}

TEST_CASE("an unknown GPU name is an error that suggests the closest", "[kernels]") {
    try {
        load_gpu_profile(test::kernel_fixtures(), "synt");
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("did you mean \"synth\"") != std::string::npos);
    }
}

TEST_CASE("a table row faster than the GPU's peak, or a shape timed twice with two times, is an error at its line",
          "[kernels]") {
    const GpuSpec spec = load_gpu_spec(test::kernel_fixtures() + "/gpus/synth.yaml");
    std::vector<Diagnostic> errors;
    try {
        (void)load_gpu_profile(spec, test::kernel_fixtures() + "/impossible");
        FAIL("the impossible rows were accepted");
    } catch (const InputError& e) {
        errors = e.diagnostics();
    }
    // Line 6 repeats line 5's shape at another time; line 7's 137 GFLOP cannot take under 137 us at the
    // synthetic GPU's 1,000 TFLOP/s. Line 9 repeats line 8 at the same time, which is harmless.
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].where.line == 6);
    CHECK(errors[0].key_path == "time_us_p50");
    CHECK(errors[0].message.find("the same shape as line 5") != std::string::npos);
    CHECK(errors[1].where.line == 7);
    CHECK(errors[1].message.find("faster than synth's datasheet peak") != std::string::npos);
}

}  // namespace clustersim
