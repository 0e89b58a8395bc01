// Tests that the committed GPU spec files load with a source for every number, and that bad ones do not.
#include "kernels/gpu_spec.hpp"
#include "sim/input/diagnostics.hpp"
#include "tests/kernels/test_paths.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

namespace clustersim {

TEST_CASE("every committed GPU spec file loads with a source for every number", "[kernels]") {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(test::real_kernels_dir() + "/gpus")) {
        if (entry.path().extension() != ".yaml") continue;
        ++count;
        INFO(entry.path().string());
        const GpuSpec spec = load_gpu_spec(entry.path().string());
        CHECK(spec.name == entry.path().stem().string());
        CHECK(spec.fp8_dense.value >= spec.bf16_dense.value);
        CHECK_FALSE(spec.bf16_dense.source.empty());
        CHECK_FALSE(spec.fp8_dense.source.empty());
        CHECK_FALSE(spec.hbm_bandwidth.source.empty());
        CHECK_FALSE(spec.hbm_capacity.source.empty());
        CHECK_FALSE(spec.efficiency_source.empty());
        if (spec.sm_count) CHECK_FALSE(spec.sm_count->source.empty());
        if (spec.l2_cache) CHECK_FALSE(spec.l2_cache->source.empty());
    }
    CHECK(count >= 5);
}

TEST_CASE("the H100 SXM spec carries its datasheet figures", "[kernels]") {
    const GpuSpec h100 = load_gpu_spec(test::real_kernels_dir() + "/gpus/h100-sxm.yaml");
    CHECK(h100.bf16_dense.value.tflops() == Approx(989.5));
    CHECK(h100.fp8_dense.value.tflops() == Approx(1979.0));
    CHECK(h100.hbm_bandwidth.value.gb_per_second() == Approx(3350.0));
    REQUIRE(h100.sm_count);
    CHECK(h100.sm_count->value == 132);
    CHECK(h100.peak_flop_rate("fp8").tflops() == Approx(1979.0));
}

TEST_CASE("a spec with a missing source or a unit-less number is rejected with every problem", "[kernels]") {
    try {
        load_gpu_spec(test::kernel_fixtures() + "/gpus/synth-bad.yaml");
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        CHECK(e.diagnostics().size() >= 2);
        const std::string text = e.what();
        CHECK(text.find("source") != std::string::npos);
        CHECK(text.find("hbm_bandwidth") != std::string::npos);
    }
}

TEST_CASE("derive_from takes one GPU or a list, and rejects the GPU's own name at its line", "[kernels]") {
    CHECK(load_gpu_spec(test::kernel_fixtures() + "/gpus/synth-derived.yaml").derive_from ==
          std::vector<std::string>{"synth"});
    CHECK(load_gpu_spec(test::kernel_fixtures() + "/gpus/synth-two-sources.yaml").derive_from ==
          std::vector<std::string>{"synth-partly-derived", "synth"});
    try {
        load_gpu_spec(test::kernel_fixtures() + "/gpus/synth-bad-derive.yaml");
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        const std::string text = e.what();
        CHECK(text.find("synth-bad-derive.yaml:9") != std::string::npos);
        CHECK(text.find("derive_from") != std::string::npos);
        CHECK(text.find("\"synth-bad-derive\"") != std::string::npos);
    }
}

TEST_CASE("the H800 spec prices FlashMLA decoding at DeepSeek's published rates", "[kernels]") {
    const GpuSpec h800 = load_gpu_spec(test::real_kernels_dir() + "/gpus/h800-sxm.yaml");
    const PublishedKernelRates* rates = h800.published_rates("mla_decode", "bf16");
    REQUIRE(rates);
    CHECK(rates->compute.tflops() == Approx(660.0));
    CHECK(rates->memory.gb_per_second() == Approx(3000.0));
    CHECK(rates->source.find("FlashMLA") != std::string::npos);
    CHECK(h800.published_rates("mla_decode", "fp8") == nullptr);
    CHECK(h800.published_rates("attn_decode", "bf16") == nullptr);
}

TEST_CASE("published kernel rates naming an unknown op, a wrong dtype or rates above the datasheet are rejected",
          "[kernels]") {
    try {
        load_gpu_spec(test::kernel_fixtures() + "/gpus/synth-bad-rates.yaml");
        FAIL("expected an InputError");
    } catch (const InputError& e) {
        const std::string text = e.what();
        INFO(text);
        CHECK(e.diagnostics().size() == 4);
        CHECK(text.find("flash_decode") != std::string::npos);
        CHECK(text.find("does not take dtype \"fp8\"") != std::string::npos);
        CHECK(text.find("at most the datasheet peak") != std::string::npos);
        CHECK(text.find("at most the datasheet HBM bandwidth") != std::string::npos);
        CHECK(text.find("synth-bad-rates.yaml:") != std::string::npos);
    }
}

}  // namespace clustersim
