// Tests of the DeepEP call-time curves: anchors equal direct simulations, interpolation, the cache.
#include "sim/network/expert_comm_curve.hpp"
#include "test_topology.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using namespace clustersim;
using namespace clustersim::literals;
using clustersim::testing::RingTopology;

namespace {

// 16 GPUs in 2 hosts of 8 on a ring: every call crosses hosts, so bandwidth and latency both show.
ExpertCommCurveSpec ep16(ExpertCommMode mode, ExpertCommPhase phase) {
    ExpertCommCurveSpec spec;
    spec.ep = 16;
    spec.experts = 64;
    spec.top_k = 4;
    spec.node_limit = 2;
    spec.hidden = 1024;
    spec.mode = mode;
    spec.phase = phase;
    return spec;
}

}  // namespace

TEST_CASE("an expert-call curve equals a direct simulation at each anchor", "[deepep][curve]") {
    RingTopology topo(16, 50_GBps, 2_us, 8);
    for (auto mode : {ExpertCommMode::normal, ExpertCommMode::low_latency}) {
        const auto spec = ep16(mode, ExpertCommPhase::dispatch);
        const ExpertCommCurve curve(topo, spec);
        REQUIRE(curve.anchors().size() == expert_comm_anchor_tokens(mode).size());
        for (const auto& [tokens, time] : curve.anchors()) {
            CHECK(time == simulate_expert_call(topo, spec, tokens));
            CHECK(curve.at(tokens) == time);
        }
    }
    // Low-latency anchors stop at the kernels' priced range.
    CHECK(expert_comm_anchor_tokens(ExpertCommMode::low_latency).back() == kLowLatencyMaxTokensPerRank);
}

TEST_CASE("an expert-call curve interpolates monotonically between anchors and extrapolates the last slope",
          "[deepep][curve]") {
    RingTopology topo(16, 50_GBps, 2_us, 8);
    const ExpertCommCurve curve(topo, ep16(ExpertCommMode::normal, ExpertCommPhase::combine));
    const auto& a = curve.anchors();
    for (std::size_t i = 1; i < a.size(); ++i) {
        REQUIRE(a[i].second > a[i - 1].second);  // more tokens, more bytes: a longer call
        Time previous = a[i - 1].second;
        for (int step = 1; step < 8; ++step) {
            const double tokens = a[i - 1].first + (a[i].first - a[i - 1].first) * step / 8.0;
            const Time t = curve.at(tokens);
            CHECK(t >= previous);
            CHECK(t <= a[i].second);
            previous = t;
        }
    }
    // Linear between anchors: the midpoint of a segment is the mean of its ends.
    const double mid = (a[1].first + a[2].first) / 2.0;
    CHECK(curve.at(mid).us() == Approx((a[1].second.us() + a[2].second.us()) / 2).epsilon(1e-6));
    // Beyond the last anchor: the last segment's slope, flagged as extrapolated.
    const auto& [x0, t0] = a[a.size() - 2];
    const auto& [x1, t1] = a.back();
    const double slope_us = (t1.us() - t0.us()) / (x1 - x0);
    CHECK(curve.extrapolates(2.0 * x1));
    CHECK_FALSE(curve.extrapolates(x1));
    CHECK(curve.at(2.0 * x1).us() == Approx(t1.us() + slope_us * x1).epsilon(1e-6));
    // Below the first anchor: the first anchor's time.
    CHECK(curve.at(0.5) == a.front().second);
}

TEST_CASE("the curve cache returns the same object for the same key, from any thread", "[deepep][curve]") {
    RingTopology topo(16, 50_GBps, 2_us, 8);
    const std::string fingerprint = topology_fingerprint(topo);
    const auto spec = ep16(ExpertCommMode::low_latency, ExpertCommPhase::combine);
    std::vector<std::shared_ptr<const ExpertCommCurve>> got(4);
    {
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < got.size(); ++i)
            threads.emplace_back([&, i] { got[i] = cached_expert_comm_curve(topo, fingerprint, spec); });
        for (auto& t : threads) t.join();
    }
    for (const auto& c : got) CHECK(c.get() == got.front().get());
    CHECK(cached_expert_comm_curve(topo, fingerprint, spec).get() == got.front().get());
    // Another shape, or the same shape on another network, is another curve.
    auto other = spec;
    other.hidden = 2048;
    const auto wider = cached_expert_comm_curve(topo, fingerprint, other);
    CHECK(wider.get() != got.front().get());
    CHECK(wider->at(64) > got.front()->at(64));
    RingTopology slower(16, 25_GBps, 2_us, 8);
    const std::string slower_fingerprint = topology_fingerprint(slower);
    CHECK(slower_fingerprint != fingerprint);
    CHECK(cached_expert_comm_curve(slower, slower_fingerprint, spec)->at(128) > got.front()->at(128));
}

TEST_CASE("a low-latency BF16 dispatch message carries BF16 values and the header", "[deepep]") {
    ExpertParallelSpec spec;
    spec.fp8_dispatch = false;
    CHECK(low_latency_dispatch_message_bytes(spec) == Approx(7168 * 2 + 16));
}
