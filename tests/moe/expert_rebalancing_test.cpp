// Expert load over time: popularity drift, periodic EPLB reruns and the pause of fetching expert weights.
#include "sim/moe/expert_rebalancing.hpp"

#include "sim/moe/expert_routing_model.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace clustersim;
using namespace clustersim::literals;

namespace {

// A skewed pool: power-law popularity over `experts` experts per layer, placed by EPLB on `gpus` GPUs
// of one node with `redundant` extra replicas.
ExpertLoadTimelineSpec skewed_pool(int layers, int experts, int gpus, int redundant, std::uint64_t seed) {
    const PowerLawRouting routing(layers, experts, 1.0, RngStream(seed, "test.routing"));
    ExpertLoadTimelineSpec spec;
    for (int l = 0; l < layers; ++l) spec.popularity.push_back(routing.popularity(l));
    spec.top_k = 4;
    spec.eplb = {experts + redundant, 1, 1, gpus};
    spec.placement = rebalance_experts(spec.popularity, spec.eplb.num_replicas, 1, 1, gpus);
    spec.expert_bytes = Bytes(1e6);
    spec.fetch_bandwidth = Bandwidth(100e9);
    return spec;
}

ExpertPlacement one_layer(std::vector<int> phy2log, int gpus) {
    ExpertPlacement p;
    p.num_gpus = gpus;
    p.phy2log.push_back(std::move(phy2log));
    return p;
}

}  // namespace

TEST_CASE("a drift step swaps the popularities of floor(share x experts / 2) random pairs") {
    std::vector<double> base(16);
    for (std::size_t i = 0; i < base.size(); ++i) base[i] = static_cast<double>(i + 1);
    auto changed = [&](const std::vector<double>& v) {
        int n = 0;
        for (std::size_t i = 0; i < v.size(); ++i) n += v[i] != base[i] ? 1 : 0;
        return n;
    };
    RngStream rng(7, "test.drift");
    std::vector<double> quarter = base;
    drift_popularity(quarter, 0.25, rng);  // 4 experts: 2 pairs
    CHECK(changed(quarter) == 4);
    std::vector<double> all = base;
    drift_popularity(all, 1.0, rng);  // every expert trades with another
    CHECK(changed(all) == 16);
    std::vector<double> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == base);  // the same popularities, moved

    // Share 0 changes nothing and draws nothing from the stream.
    RngStream a(7, "test.drift"), b(7, "test.drift");
    std::vector<double> none = base;
    drift_popularity(none, 0.0, a);
    CHECK(none == base);
    CHECK(a.next_u64() == b.next_u64());

    // The same stream gives the same swaps.
    RngStream c(7, "test.drift");
    std::vector<double> again = base;
    drift_popularity(again, 0.25, c);
    CHECK(again == quarter);
    CHECK_THROWS_WITH(drift_popularity(again, 1.5, c), Catch::Contains("outside 0..1"));
}

TEST_CASE("a GPU fetches the experts it newly holds, once each, summed over the layers") {
    // Layer 0: GPU 0 holds {0, 1}, GPU 1 {2, 3}; afterwards GPU 0 {0, 2} (gains 2), GPU 1 {1, 3} (gains 1).
    // Layer 1: GPU 0 {0, 1} -> {0, 0} (a second replica of an expert it holds: copied, not fetched);
    //          GPU 1 {2, 3} -> {1, 1} (two replicas of a new expert: fetched once).
    ExpertPlacement before = one_layer({0, 1, 2, 3}, 2);
    before.phy2log.push_back({0, 1, 2, 3});
    ExpertPlacement after = one_layer({0, 2, 1, 3}, 2);
    after.phy2log.push_back({0, 0, 1, 1});
    CHECK(experts_gained_per_gpu(before, after) == std::vector<std::int64_t>{1, 2});
    CHECK(experts_gained_per_gpu(before, before) == std::vector<std::int64_t>{0, 0});
    CHECK_THROWS_WITH(experts_gained_per_gpu(before, one_layer({0, 1, 2, 3}, 2)), Catch::Contains("differ in shape"));
}

TEST_CASE("a rebalance pauses the pool for the busiest GPU's new expert bytes over its bandwidth") {
    // One layer, 4 experts on 2 GPUs in order: GPU 0 has 0.4 + 0.3 of the load, GPU 1 0.2 + 0.1 (1.4 x the mean
    // with top-1 routing). EPLB packs heaviest first into the lightest GPU with room: 0 -> GPU 0, 1 -> GPU 1,
    // 2 -> GPU 1, 3 -> GPU 0, so each GPU gains one expert (GPU 0 expert 3, GPU 1 expert 2) and both carry 0.5.
    ExpertLoadTimelineSpec spec;
    spec.popularity = {{0.4, 0.3, 0.2, 0.1}};
    spec.placement = contiguous_placement(1, 4, 2);
    spec.top_k = 1;
    spec.rebalance = ExpertRebalanceSpec{1_s};
    spec.eplb = {4, 1, 1, 2};
    spec.expert_bytes = Bytes(3e9);
    spec.fetch_bandwidth = Bandwidth(150e9);  // 3 GB at 150 GB/s: 20 ms
    ExpertLoadTimeline t(spec, RngStream(1, "test.timeline"));
    CHECK(t.imbalance() == Approx(1.4));
    t.advance_to(999_ms);
    CHECK(t.paused_until() == Time::zero());
    t.advance_to(1_s);
    CHECK(t.imbalance() == Approx(1.0));
    CHECK(t.paused_until() == 1_s + 20_ms);
    const ExpertLoadEvent& e = t.events().back();
    CHECK(e.kind == ExpertLoadEventKind::rebalance);
    CHECK(e.busiest_gpu_bytes.bytes() == 3e9);
    CHECK(e.bytes_moved.bytes() == 6e9);
    CHECK(e.pause == 20_ms);
    // Over [0, 2 s]: 1.4 for the first second, 1.0 after; the second rebalance (at 2 s) moves nothing.
    const ExpertLoadTimelineSummary s = t.summary(2_s);
    CHECK(s.imbalance_mean == Approx(1.2));
    CHECK(s.imbalance_max == Approx(1.4));
    CHECK(s.rebalances == 2);
    CHECK(s.pause_total == 20_ms);
    CHECK(s.bytes_moved.bytes() == 6e9);
    // Asked about an earlier end, only what happened by then counts.
    const ExpertLoadTimelineSummary early = t.summary(500_ms);
    CHECK(early.rebalances == 0);
    CHECK(early.imbalance_mean == Approx(1.4));
}

TEST_CASE("without drift, rebalancing keeps the imbalance and moves nothing") {
    ExpertLoadTimelineSpec spec = skewed_pool(4, 32, 8, 0, 3);
    spec.drift = ExpertDriftSpec{1_s, 0.0};
    spec.rebalance = ExpertRebalanceSpec{3_s};
    ExpertLoadTimeline t(spec, RngStream(3, "test.timeline"));
    const double initial = t.imbalance();
    CHECK(initial > 1.01);  // skewed enough for a change to show
    for (int ms = 250; ms <= 20'000; ms += 250) t.advance_to(Time::from_ms(ms));
    const ExpertLoadTimelineSummary s = t.summary(20_s);
    CHECK(s.rebalances == 6);
    CHECK(s.drift_steps == 20);
    CHECK(s.imbalance_mean == Approx(initial));
    CHECK(s.imbalance_max == Approx(initial));
    CHECK(s.bytes_moved.bytes() == 0);
    CHECK(s.pause_total == Time::zero());
}

TEST_CASE("drift without rebalancing lets a fresh EPLB placement grow stale") {
    for (std::uint64_t seed : {1, 2, 3}) {
        INFO("seed " << seed);
        ExpertLoadTimelineSpec spec = skewed_pool(8, 64, 8, 16, seed);
        spec.drift = ExpertDriftSpec{1_s, 0.25};
        ExpertLoadTimeline t(spec, RngStream(seed, "test.timeline"));
        const ExpertLoadTimelineSummary s = t.summary(20_s);
        // EPLB placed the experts for the initial loads; other loads fit that placement worse.
        CHECK(s.drift_steps == 20);
        CHECK(s.imbalance_mean > s.imbalance_initial);
        CHECK(s.imbalance_final > s.imbalance_initial);
        CHECK(s.rebalances == 0);
    }
}

TEST_CASE("a rebalance after the loads settled restores the fresh EPLB imbalance for the new loads") {
    // Drift at 10 s; rebalances at 5 s and 10 s see the old loads, the one at 15 s only the new ones.
    ExpertLoadTimelineSpec spec = skewed_pool(8, 64, 8, 16, 5);
    spec.drift = ExpertDriftSpec{10_s, 0.5};
    spec.rebalance = ExpertRebalanceSpec{5_s};
    ExpertLoadTimeline t(spec, RngStream(5, "test.timeline"));
    const double initial = t.imbalance();
    t.advance_to(10_s);
    const double stale = t.imbalance();
    CHECK(stale > initial);
    t.advance_to(15_s);
    const ExpertPlacement fresh = rebalance_experts(t.popularity(), spec.eplb.num_replicas, 1, 1, 8);
    CHECK(t.imbalance() == Approx(placement_imbalance(t.popularity(), fresh, spec.top_k)));
    CHECK(t.imbalance() < stale);
    CHECK(t.events().back().bytes_moved.bytes() > 0);
}

TEST_CASE("the same seed gives the same timeline, whenever it is asked") {
    ExpertLoadTimelineSpec spec = skewed_pool(4, 32, 8, 8, 9);
    spec.drift = ExpertDriftSpec{700_ms, 0.3};
    spec.rebalance = ExpertRebalanceSpec{2_s};
    ExpertLoadTimeline once(spec, RngStream(9, "test.timeline"));
    ExpertLoadTimeline often(spec, RngStream(9, "test.timeline"));
    once.advance_to(10_s);
    for (int ms = 1; ms <= 10'000; ms += 37) often.advance_to(Time::from_ms(ms));
    often.advance_to(10_s);
    REQUIRE(once.events().size() == often.events().size());
    for (std::size_t i = 0; i < once.events().size(); ++i) {
        CHECK(once.events()[i].imbalance == Approx(often.events()[i].imbalance).epsilon(1e-12));
        CHECK(once.events()[i].bytes_moved == often.events()[i].bytes_moved);
    }
    ExpertLoadTimeline other(spec, RngStream(10, "test.timeline"));
    other.advance_to(10_s);
    CHECK(other.events()[1].imbalance != once.events()[1].imbalance);
}

TEST_CASE("a timeline refuses a share outside 0..1, a non-positive interval and a rebalance without bandwidth") {
    ExpertLoadTimelineSpec spec = skewed_pool(2, 16, 4, 0, 1);
    auto fails = [&](ExpertLoadTimelineSpec s) { return ExpertLoadTimeline(std::move(s), RngStream(1, "t")); };
    ExpertLoadTimelineSpec share = spec;
    share.drift = ExpertDriftSpec{1_s, 1.5};
    CHECK_THROWS_WITH(fails(share), Catch::Contains("share 1.5 is outside 0..1"));
    ExpertLoadTimelineSpec negative = spec;
    negative.drift = ExpertDriftSpec{Time::zero() - 1_s, 0.1};
    CHECK_THROWS_WITH(fails(negative), Catch::Contains("drift interval must be positive"));
    ExpertLoadTimelineSpec zero = spec;
    zero.rebalance = ExpertRebalanceSpec{Time::zero()};
    CHECK_THROWS_WITH(fails(zero), Catch::Contains("rebalance interval must be positive"));
    ExpertLoadTimelineSpec no_bandwidth = spec;
    no_bandwidth.rebalance = ExpertRebalanceSpec{1_s};
    no_bandwidth.fetch_bandwidth = Bandwidth{};
    CHECK_THROWS_WITH(fails(no_bandwidth), Catch::Contains("positive bandwidth"));
}
