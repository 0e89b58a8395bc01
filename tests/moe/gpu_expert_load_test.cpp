// Tests of per-GPU expert load: expected and sampled counts, replicas, and what EPLB buys.
#include "sim/moe/gpu_expert_load.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

using namespace clustersim;

TEST_CASE("selection probabilities sum to top-k and never exceed one", "[moe][load]") {
    const std::vector<double> p = {0.7, 0.1, 0.1, 0.05, 0.05};
    const auto pi = selection_probabilities(p, 2);
    CHECK(std::accumulate(pi.begin(), pi.end(), 0.0) == Approx(2.0));
    CHECK(pi[0] == 1.0);  // 0.7 * 2 would be 1.4: capped, the rest shared by popularity
    CHECK(pi[1] == Approx(0.1 / 0.3));
    CHECK(pi[3] == Approx(0.05 / 0.3));
    CHECK_THROWS_WITH(selection_probabilities(std::vector<double>{1, 0, 0}, 2),
                      Catch::Contains("only 1 experts have positive popularity"));
}

TEST_CASE("balanced routing on the contiguous placement loads every GPU equally", "[moe][load]") {
    const BalancedRouting r(32);
    const ExpertPlacement p = contiguous_placement(1, 32, 8);
    const auto load = expected_gpu_tokens(r, p, 0, 4096, 8);
    for (const double v : load) CHECK(v == Approx(4096.0 * 8 / 8));
    CHECK(max_over_mean(load) == Approx(1.0));
}

TEST_CASE("a replicated expert's tokens split evenly among its replicas", "[moe][load]") {
    // Expert 0 has replicas in slots 0 and 3 (GPUs 0 and 1); experts 1 and 2 one each.
    ExpertPlacement p;
    p.num_gpus = 2;
    p.phy2log = {{0, 1, 2, 0}};
    p.logcnt = {{2, 1, 1}};
    CHECK(gpu_loads(std::vector<double>{10, 4, 6}, p, 0) == std::vector<double>{9, 11});
    const std::vector<int> routing = {0, 0, 0, 1, 2, 0};
    CHECK(gpu_tokens(routing, p, 0) == std::vector<std::int64_t>{3, 3});  // 0,0 / 0,0 round-robin; 1 / 2
}

TEST_CASE("sampled routing picks distinct experts and matches the expectation", "[moe][load]") {
    const PowerLawRouting r(1, 16, 1.0, RngStream(5, "moe.routing"));
    const ExpertPlacement p = contiguous_placement(1, 16, 4);
    RngStream rng(5, "moe.sampling");
    const std::int64_t tokens = 20000;
    const auto picks = sample_token_experts(r, 0, tokens, 4, rng);
    REQUIRE(picks.size() == static_cast<std::size_t>(tokens * 4));
    for (std::size_t t = 0; t < picks.size(); t += 4)
        REQUIRE(std::set<int>(picks.begin() + static_cast<long>(t), picks.begin() + static_cast<long>(t + 4)).size() ==
                4);
    const auto sampled = gpu_tokens(picks, p, 0);
    const auto expected = expected_gpu_tokens(r, p, 0, tokens, 4);
    CHECK(std::accumulate(sampled.begin(), sampled.end(), std::int64_t{0}) == tokens * 4);
    for (std::size_t g = 0; g < 4; ++g) CHECK(static_cast<double>(sampled[g]) == Approx(expected[g]).epsilon(0.03));
}

TEST_CASE("sampled counts depend only on the seed", "[moe][load][determinism]") {
    const PowerLawRouting r(1, 16, 1.0, RngStream(5, "moe.routing"));
    const ExpertPlacement p = contiguous_placement(1, 16, 4);
    RngStream a(9, "moe.sampling"), b(9, "moe.sampling"), c(10, "moe.sampling");
    const auto first = sampled_gpu_tokens(r, p, 0, 512, 4, a);
    CHECK(sampled_gpu_tokens(r, p, 0, 512, 4, b) == first);
    CHECK(sampled_gpu_tokens(r, p, 0, 512, 4, c) != first);
}

TEST_CASE("EPLB lowers the max/mean GPU load of a power-law router", "[moe][load][eplb]") {
    // 64 experts in 8 groups on 2 nodes of 4 GPUs, 16 redundant experts; loads as EPLB would
    // measure them: the expected selections per expert.
    const int layers = 4, experts = 64, gpus = 8;
    const PowerLawRouting r(layers, experts, 1.0, RngStream(3, "moe.routing"));
    ExpertLoadMatrix measured;
    for (int l = 0; l < layers; ++l) measured.push_back(selection_probabilities(r.popularity(l), 8));
    const ExpertPlacement eplb = rebalance_experts(measured, 80, 8, 2, gpus);
    const ExpertPlacement naive = contiguous_placement(layers, experts, gpus);
    for (int l = 0; l < layers; ++l) {
        const double before = max_over_mean(expected_gpu_tokens(r, naive, l, 4096, 8));
        const double after = max_over_mean(expected_gpu_tokens(r, eplb, l, 4096, 8));
        CHECK(before > 1.2);
        CHECK(after < before);
        // Not 1: groups stay whole on nodes, and 80 slots cannot split 64 skewed experts evenly.
        CHECK(after < 1.15);
        RngStream rng(3, "moe.sampling");
        const double sampled_after = max_over_mean(sampled_gpu_tokens(r, eplb, l, 4096, 8, rng));
        CHECK(sampled_after < before);
    }
}

TEST_CASE("max over mean is one for even loads", "[moe][load]") {
    CHECK(max_over_mean(std::vector<double>{2, 2, 2}) == 1.0);
    CHECK(max_over_mean(std::vector<double>{3, 1}) == 1.5);
    CHECK(max_over_mean(std::vector<std::int64_t>{0, 0}) == 1.0);
}
