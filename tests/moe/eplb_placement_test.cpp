// Tests of EPLB placement: the README example bit for bit, the maps' consistency, both policies.
#include "sim/moe/eplb_placement.hpp"
#include "sim/moe/eplb_readme_example.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

using namespace clustersim;

namespace {

// Checks that phy2log, phyrank, log2phy and logcnt describe the same placement.
void check_consistent(const ExpertPlacement& p) {
    for (int l = 0; l < p.num_layers(); ++l) {
        const auto li = static_cast<std::size_t>(l);
        std::vector<int> seen(static_cast<std::size_t>(p.num_logical()), 0);
        for (int s = 0; s < p.num_physical(); ++s) {
            const int e = p.phy2log[li][static_cast<std::size_t>(s)];
            REQUIRE(e >= 0);
            REQUIRE(e < p.num_logical());
            ++seen[static_cast<std::size_t>(e)];
            const int r = p.phyrank[li][static_cast<std::size_t>(s)];
            REQUIRE(r >= 0);
            REQUIRE(r < p.logcnt[li][static_cast<std::size_t>(e)]);
            CHECK(p.log2phy[li][static_cast<std::size_t>(e)][static_cast<std::size_t>(r)] == s);
        }
        for (int e = 0; e < p.num_logical(); ++e) {
            const auto ei = static_cast<std::size_t>(e);
            CHECK(seen[ei] == p.logcnt[li][ei]);
            CHECK(p.logcnt[li][ei] >= 1);
            CHECK(static_cast<int>(p.log2phy[li][ei].size()) == p.logcnt[li][ei]);
            for (const int s : p.log2phy[li][ei]) CHECK(p.phy2log[li][static_cast<std::size_t>(s)] == e);
        }
        CHECK(std::accumulate(p.logcnt[li].begin(), p.logcnt[li].end(), 0) == p.num_physical());
    }
}

}  // namespace

TEST_CASE("EPLB reproduces the README example exactly (X2a)", "[moe][eplb][validation]") {
    const EplbReadmeExample x = eplb_readme_example();
    const ExpertPlacement p = rebalance_experts(x.weight, x.num_replicas, x.num_groups, x.num_nodes, x.num_gpus);
    REQUIRE(p.num_layers() == 2);
    CHECK(p.phy2log[0] == x.expected_phy2log[0]);
    CHECK(p.phy2log[1] == x.expected_phy2log[1]);
    CHECK(p.num_gpus == 8);
    CHECK(p.physical_per_gpu() == 2);
    check_consistent(p);
}

TEST_CASE("the README example's replica counts follow from its loads", "[moe][eplb]") {
    const EplbReadmeExample x = eplb_readme_example();
    const ExpertPlacement p = rebalance_experts(x.weight, x.num_replicas, x.num_groups, x.num_nodes, x.num_gpus);
    // Layer 0: experts 1, 4, 5 and 10 are replicated (the hottest of each node's share).
    CHECK(p.logcnt[0] == std::vector<int>{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1});
    // The replicas of an expert stay on one node: groups are kept whole on nodes.
    for (int l = 0; l < 2; ++l)
        for (const auto& slots : p.log2phy[static_cast<std::size_t>(l)])
            for (const int s : slots) CHECK(s / 8 == slots.front() / 8);
}

TEST_CASE("the README example's map implies the busiest GPU's load", "[moe][eplb][validation]") {
    const std::vector<double> imbalance = eplb_readme_example_imbalance();
    REQUIRE(imbalance.size() == 2);
    // Layer 0: 1,033 tokens over 8 GPUs; the busiest (GPU 6) holds expert 0 (90) and one of the
    // two replicas of expert 1 (132 / 2). Layer 1: 1,156 tokens; GPU 1 holds half of expert 6
    // (187 / 2) and half of expert 8 (172 / 2). Worked by hand from the published map.
    CHECK(imbalance[0] == Approx(156.0 / (1033.0 / 8)));
    CHECK(imbalance[1] == Approx(179.5 / (1156.0 / 8)));
}

TEST_CASE("the global policy places replicas anywhere when groups do not divide over nodes", "[moe][eplb]") {
    // 3 groups cannot be split over 2 nodes, so EPLB packs over all 4 GPUs at once.
    const ExpertLoadMatrix w = {{10, 80, 30, 5, 60, 20}, {1, 1, 1, 1, 1, 1}};
    const ExpertPlacement p = rebalance_experts(w, 8, 3, 2, 4);
    check_consistent(p);
    // Same as the hierarchical policy with one group on one node.
    const ExpertPlacement flat = rebalance_experts_hierarchical(w, 8, 1, 1, 4);
    CHECK(p.phy2log == flat.phy2log);
    // Experts 1 and 4 are the hottest: they get the two extra replicas.
    CHECK(p.logcnt[0] == std::vector<int>{1, 2, 1, 1, 2, 1});
    // Loads per replica before packing: 10, 40, 30, 5, 30, 20, 40, 30 (the extra replicas of 1 and
    // 4 last); the greedy packing gives GPU loads of 45, 50, 50, 60 (sum 205), worked by hand.
    std::vector<double> gpu(4, 0.0);
    for (int s = 0; s < 8; ++s) {
        const int e = p.phy2log[0][static_cast<std::size_t>(s)];
        gpu[static_cast<std::size_t>(s / 2)] +=
            w[0][static_cast<std::size_t>(e)] / p.logcnt[0][static_cast<std::size_t>(e)];
    }
    std::sort(gpu.begin(), gpu.end());
    CHECK(gpu == std::vector<double>{45, 50, 50, 60});
    // Equal loads replicate the lowest-index experts first (tie rule).
    CHECK(p.logcnt[1] == std::vector<int>{2, 2, 1, 1, 1, 1});
}

TEST_CASE("balanced packing fills every pack exactly and never beyond", "[moe][eplb]") {
    const std::vector<float> w = {9, 1, 8, 2, 7, 3, 6, 4, 5, 5, 0, 10};
    for (const int packs : {1, 2, 3, 4, 6, 12}) {
        const BalancedPacking b = balanced_packing(w, packs);
        std::vector<std::vector<int>> ranks(static_cast<std::size_t>(packs));
        for (std::size_t i = 0; i < w.size(); ++i) {
            REQUIRE(b.pack[i] >= 0);
            REQUIRE(b.pack[i] < packs);
            ranks[static_cast<std::size_t>(b.pack[i])].push_back(b.rank_in_pack[i]);
        }
        for (auto& r : ranks) {
            std::sort(r.begin(), r.end());
            std::vector<int> expected(w.size() / static_cast<std::size_t>(packs));
            std::iota(expected.begin(), expected.end(), 0);
            CHECK(r == expected);  // exactly n/m items, ranks 0..n/m-1
        }
    }
}

TEST_CASE("balanced packing balances simple cases", "[moe][eplb]") {
    SECTION("pairs that sum to the same total") {
        const std::vector<float> w = {1, 2, 3, 4, 5, 6, 7, 8};
        const BalancedPacking b = balanced_packing(w, 4);
        std::vector<float> load(4, 0);
        for (std::size_t i = 0; i < w.size(); ++i) load[static_cast<std::size_t>(b.pack[i])] += w[i];
        CHECK(load == std::vector<float>{9, 9, 9, 9});
    }
    SECTION("equal weights go round the packs in index order") {
        const std::vector<float> w(6, 1.0f);
        const BalancedPacking b = balanced_packing(w, 3);
        CHECK(b.pack == std::vector<int>{0, 1, 2, 0, 1, 2});
        CHECK(b.rank_in_pack == std::vector<int>{0, 0, 0, 1, 1, 1});
    }
    SECTION("one item per pack keeps the order") {
        const std::vector<float> w = {3, 1, 2};
        CHECK(balanced_packing(w, 3).pack == std::vector<int>{0, 1, 2});
    }
    CHECK_THROWS_WITH(balanced_packing(std::vector<float>{1, 2, 3}, 2),
                      Catch::Contains("3 items do not split evenly into 2 packs"));
}

TEST_CASE("replication gives extra replicas to the highest load per replica", "[moe][eplb]") {
    const std::vector<float> w = {100, 30, 60};
    const ExpertReplication r = replicate_experts(w, 6);
    // Highest load per replica: 100 (expert 0, then 50), 60 (expert 2, then 30), 50 (expert 0).
    CHECK(r.phy2log == std::vector<int>{0, 1, 2, 0, 2, 0});
    CHECK(r.rank == std::vector<int>{0, 0, 0, 1, 1, 2});
    CHECK(r.logcnt == std::vector<int>{3, 1, 2});
}

TEST_CASE("EPLB reports every unmet requirement at once", "[moe][eplb]") {
    const ExpertLoadMatrix w = {{1, 2, 3, 4, 5, 6}};
    CHECK_THROWS_WITH(rebalance_experts(w, 7, 4, 2, 3),
                      Catch::Contains("6 experts do not split into 4 equal groups") &&
                          Catch::Contains("3 GPUs do not split evenly over 2 nodes") &&
                          Catch::Contains("7 physical experts do not split evenly over 3 GPUs"));
    CHECK_THROWS_WITH(rebalance_experts(w, 4, 1, 1, 2), Catch::Contains("4 physical experts cannot hold 6"));
    CHECK_THROWS_WITH(rebalance_experts({{1, -2}}, 2, 1, 1, 1), Catch::Contains("not a finite non-negative"));
    CHECK_THROWS_WITH(rebalance_experts_hierarchical(w, 6, 3, 2, 2),
                      Catch::Contains("3 groups do not split evenly over 2 nodes"));
}

TEST_CASE("the contiguous placement puts experts on GPUs in order without replicas", "[moe][eplb]") {
    const ExpertPlacement p = contiguous_placement(2, 8, 4);
    check_consistent(p);
    CHECK(p.gpu_of(5) == 2);
    CHECK(p.phy2log[1] == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
}
