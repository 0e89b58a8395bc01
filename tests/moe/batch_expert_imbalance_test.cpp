// Tests of the per-batch expert imbalance: its limits, and its agreement with sampled routings.
#include "sim/moe/batch_expert_imbalance.hpp"

#include "sim/moe/expert_routing_model.hpp"
#include "sim/moe/gpu_expert_load.hpp"

#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

using namespace clustersim;

namespace {

// The busiest GPU's selections over the mean, averaged over `samples` sampled routings of `tokens` tokens.
double sampled_imbalance(const ExpertRoutingModel& r, const ExpertPlacement& p, int layer, std::int64_t tokens,
                         int top_k, int samples) {
    RngStream rng(11, "moe.batch_imbalance_test");
    double sum = 0;
    for (int i = 0; i < samples; ++i) sum += max_over_mean(sampled_gpu_tokens(r, p, layer, tokens, top_k, rng));
    return sum / samples;
}

ExpertLoadMatrix popularities(const ExpertRoutingModel& r, int layers) {
    ExpertLoadMatrix out;
    for (int l = 0; l < layers; ++l) out.push_back(r.popularity(l));
    return out;
}

}  // namespace

TEST_CASE("one GPU holding every expert has no routing noise", "[moe][batch_imbalance]") {
    // Each token puts exactly top_k selections on the only GPU: Hajek's correction cancels the variance.
    const BalancedRouting r(16);
    const ExpertPlacement p = contiguous_placement(1, 16, 1);
    const GpuSelectionMoments m = gpu_selection_moments(r.popularity(0), p, 0, 4);
    CHECK(m.mean[0] == Approx(4.0));
    CHECK(m.variance[0] == Approx(0.0).margin(1e-12));
    CHECK(expected_batch_imbalance(m, 7) == Approx(1.0));
}

TEST_CASE("balanced routing is unbalanced in small batches and balanced in large ones", "[moe][batch_imbalance]") {
    const BalancedRouting r(256);
    const ExpertPlacement p = contiguous_placement(2, 256, 32);
    const BatchImbalanceCurve curve(popularities(r, 2), p, 8);
    CHECK(curve.expected() == Approx(1.0));
    const double small = curve.at(32 * 16), medium = curve.at(32 * 128), large = curve.at(32 * 65536);
    CHECK(small > medium);
    CHECK(medium > large);
    CHECK(small > 1.1);  // 16 tokens per GPU: about 1.18
    CHECK(large == Approx(1.0).epsilon(0.02));
    // Between anchors the curve interpolates: never outside its neighbours' values.
    const double a = curve.at(1000), b = curve.at(1001), c = curve.at(1003);
    CHECK(a >= b);
    CHECK(b >= c);
}

TEST_CASE("the normal model matches sampled routings of DeepSeek-V3's expert shape", "[moe][batch_imbalance]") {
    // 256 experts, top-8, EP32 without replicas; 64 and 256 tokens per GPU.
    const BalancedRouting r(256);
    const ExpertPlacement p = contiguous_placement(1, 256, 32);
    const GpuSelectionMoments m = gpu_selection_moments(r.popularity(0), p, 0, 8);
    for (const std::int64_t tokens : {32 * 64, 32 * 256}) {
        const double model = expected_batch_imbalance(m, tokens);
        const double sampled = sampled_imbalance(r, p, 0, tokens, 8, 200);
        CHECK(model == Approx(sampled).epsilon(0.03));
        CHECK(model > 1.03);  // about 1.09 at 64 tokens per GPU, 1.04 at 256
    }
}

TEST_CASE("the normal model matches sampled routings of a skewed router on an EPLB placement",
          "[moe][batch_imbalance][eplb]") {
    // Power-law popularity, 64 experts in 8 groups, 16 redundant replicas over 2 nodes of 4 GPUs.
    const int layers = 2, experts = 64, gpus = 8;
    const PowerLawRouting r(layers, experts, 1.0, RngStream(3, "moe.routing"));
    ExpertLoadMatrix measured;
    for (int l = 0; l < layers; ++l) measured.push_back(selection_probabilities(r.popularity(l), 8));
    const ExpertPlacement eplb = rebalance_experts(measured, 80, 8, 2, gpus);
    const ExpertLoadMatrix measured_popularity = popularities(r, layers);
    const BatchImbalanceCurve curve(measured_popularity, eplb, 8);
    double expected = 0;
    for (int l = 0; l < layers; ++l) expected += max_over_mean(expected_gpu_tokens(r, eplb, l, 1'000'000, 8));
    CHECK(curve.expected() == Approx(expected / layers));
    for (int l = 0; l < layers; ++l) {
        const GpuSelectionMoments m = gpu_selection_moments(r.popularity(l), eplb, l, 8);
        const double model = expected_batch_imbalance(m, 256);
        CHECK(model == Approx(sampled_imbalance(r, eplb, l, 256, 8, 300)).epsilon(0.03));
        CHECK(model > max_over_mean(m.mean));  // noise only adds to the busiest GPU
    }
    CHECK(curve.at(1 << 24) == Approx(curve.expected()).epsilon(0.005));
}

TEST_CASE("batch imbalance refuses what it cannot price", "[moe][batch_imbalance]") {
    const BalancedRouting r(16);
    const ExpertPlacement p = contiguous_placement(1, 16, 4);
    const GpuSelectionMoments m = gpu_selection_moments(r.popularity(0), p, 0, 2);
    CHECK_THROWS_WITH(expected_batch_imbalance(m, 0), Catch::Contains("need at least 1"));
    CHECK_THROWS_WITH(gpu_selection_moments(r.popularity(0), p, 3, 2), Catch::Contains("outside the placement"));
    CHECK_THROWS_WITH(gpu_selection_moments(BalancedRouting(8).popularity(0), p, 0, 2),
                      Catch::Contains("8 expert popularities for a placement of 16"));
}
