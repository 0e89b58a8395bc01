// Tests of DeepEP-style expert dispatch and combine: routing, byte accounting, and the transfer graph.
#include "sim/network/expert_dispatch.hpp"
#include "test_topology.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace clustersim;
using namespace clustersim::literals;
using clustersim::testing::RingTopology;

namespace {
ExpertParallelSpec spec_for(int gpus) {
    ExpertParallelSpec spec;
    for (int g = 0; g < gpus; ++g) spec.gpus.push_back(g);
    spec.tokens_per_gpu = 256;
    return spec;
}
}  // namespace

TEST_CASE("token payloads are counted as DeepEP counts them", "[deepep]") {
    ExpertParallelSpec spec;
    CHECK(dispatch_token_bytes(spec) == Approx(7168 + 224));  // FP8 values plus a float scale per 128
    CHECK(combine_token_bytes(spec) == Approx(14336));
    CHECK(low_latency_dispatch_message_bytes(spec) == Approx(7408));  // DeepEP README
    CHECK(low_latency_combine_message_bytes(spec) == Approx(14336));
}

TEST_CASE("balanced routing picks top-k distinct experts on at most node_limit hosts", "[deepep]") {
    RingTopology topo(32, 50_GBps, Time::zero(), 4);  // 8 hosts of 4 GPUs
    ExpertParallelSpec spec = spec_for(32);
    const TokenRouting routing = balanced_routing(spec, topo, 1);
    REQUIRE(routing.size() == 32);
    std::vector<int> per_expert(256, 0);
    for (const auto& rank : routing) {
        REQUIRE(rank.size() == static_cast<std::size_t>(spec.tokens_per_gpu * spec.top_k));
        for (int t = 0; t < spec.tokens_per_gpu; ++t) {
            std::set<int> experts, hosts;
            for (int k = 0; k < spec.top_k; ++k) {
                const int e = rank[static_cast<std::size_t>(t * spec.top_k + k)];
                experts.insert(e);
                hosts.insert(e / 32);  // 32 experts per host
                ++per_expert[static_cast<std::size_t>(e)];
            }
            CHECK(experts.size() == 8);
            CHECK(hosts.size() <= 4);
        }
    }
    // Balanced: every expert gets close to the mean of 32 * 256 * 8 / 256 = 256 tokens.
    for (int count : per_expert) CHECK(count == Approx(256).margin(96));
    CHECK(balanced_routing(spec, topo, 1) == routing);
    CHECK(balanced_routing(spec, topo, 2) != routing);
}

TEST_CASE("internode dispatch sends each token once per destination host, over the same rail", "[deepep]") {
    RingTopology topo(16, 50_GBps, Time::zero(), 8);  // 2 hosts of 8
    ExpertParallelSpec spec = spec_for(16);
    spec.pipeline_chunks = 1;
    const TokenRouting routing = balanced_routing(spec, topo, 3);
    const ExpertCommPlan plan = build_expert_comm(spec, routing, topo);
    CHECK(plan.logical_bytes_kind == "rdma");
    for (const auto& t : plan.dag.transfers()) {
        if (t.label.rfind("dispatch rdma", 0) == 0) {
            CHECK(topo.host_of(t.src) != topo.host_of(t.dst));
            CHECK(topo.local_rank(t.src) == topo.local_rank(t.dst));  // same rail
        }
        if (t.label.rfind("dispatch nvlink", 0) == 0) CHECK(topo.host_of(t.src) == topo.host_of(t.dst));
    }
    // With 2 hosts and a node limit of 4, nearly every token reaches both hosts: the logical bytes
    // per rank are close to 2 tokens' worth per token, of which half leave the host (DeepEP's ~50% at EP16).
    double logical = 0;
    for (double b : plan.logical_bytes) logical += b;
    const double per_token = logical / (16.0 * spec.tokens_per_gpu * dispatch_token_bytes(spec));
    CHECK(per_token > 1.9);
    CHECK(per_token <= 2.0);
    CHECK(plan.ib_bytes / logical == Approx(0.5).margin(0.02));
}

TEST_CASE("combine mirrors dispatch with BF16 payloads", "[deepep]") {
    RingTopology topo(16, 50_GBps, Time::zero(), 8);
    ExpertParallelSpec spec = spec_for(16);
    const TokenRouting routing = balanced_routing(spec, topo, 3);
    const ExpertCommPlan dispatch = build_expert_comm(spec, routing, topo);
    spec.phase = ExpertCommPhase::combine;
    const ExpertCommPlan combine = build_expert_comm(spec, routing, topo);
    CHECK(combine.ib_bytes / dispatch.ib_bytes == Approx(combine_token_bytes(spec) / dispatch_token_bytes(spec)));
}

TEST_CASE("low-latency dispatch sends every (token, expert) message directly", "[deepep]") {
    RingTopology topo(16, 50_GBps, Time::zero(), 8);
    ExpertParallelSpec spec = spec_for(16);
    spec.mode = ExpertCommMode::low_latency;
    const TokenRouting routing = balanced_routing(spec, topo, 3);
    const ExpertCommPlan plan = build_expert_comm(spec, routing, topo);
    double messages = 0;
    for (double b : plan.logical_bytes) messages += b / low_latency_dispatch_message_bytes(spec);
    CHECK(messages == Approx(16.0 * spec.tokens_per_gpu * spec.top_k));
    for (const auto& t : plan.dag.transfers()) CHECK(t.deps.empty());
}

TEST_CASE("expert counts that do not divide over the ranks are rejected", "[deepep]") {
    RingTopology topo(12, 50_GBps, Time::zero(), 4);
    ExpertParallelSpec spec = spec_for(12);
    CHECK_THROWS_WITH(balanced_routing(spec, topo, 1), Catch::Contains("cannot be spread evenly"));
}
