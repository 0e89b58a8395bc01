// Tests of DeepEP-style expert dispatch and combine: routing, byte accounting, and the transfer graph.
#include "sim/network/expert_dispatch.hpp"
#include "sim/network/transfer_dag.hpp"
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
    // Each (sender, receiver) pair's data goes first; its count message (zero bytes) follows it.
    std::size_t data = 0, counts = 0;
    for (const auto& t : plan.dag.transfers()) {
        if (t.bytes.value() > 0) {
            ++data;
            CHECK(t.deps.empty());
        } else {
            ++counts;
            REQUIRE(t.deps.size() == 1);
            const Transfer& before = plan.dag.transfers()[t.deps[0]];
            CHECK(before.bytes.value() > 0);
            CHECK(before.src == t.src);
            CHECK(before.dst == t.dst);
        }
    }
    CHECK(counts == data);
}

namespace {
// Two GPUs on one host, two experts, top-2: every token goes to both ranks, so each rank sends exactly
// `tokens` tokens to the other.
ExpertParallelSpec every_token_to_both(int tokens) {
    ExpertParallelSpec spec = spec_for(2);
    spec.experts = 2;
    spec.top_k = 2;
    spec.tokens_per_gpu = tokens;
    return spec;
}

Time run_plan(const ExpertCommPlan& plan, const Topology& topology) {
    Simulator sim;
    FlowNetwork net(sim, topology);
    DagExecution exec(net, plan.dag);
    exec.start();
    sim.run();
    REQUIRE(exec.finished());
    return exec.finished_at() - exec.started_at();
}
}  // namespace

TEST_CASE("normal-mode copies run at the rate of the SMs that hold them when links are faster", "[deepep]") {
    // Links of 10 TB/s never bind; sms = 4 gives 2 channels, so each GPU's sender blocks store at
    // 2 x 50 GB/s (DeepEP's per-SM store rate) and its receiver blocks at the same rate.
    RingTopology topo(2, Bandwidth::bytes_per_second(10e12), Time::zero());
    ExpertParallelSpec spec = every_token_to_both(1000);
    spec.sms = 4;
    const TokenRouting routing = balanced_routing(spec, topo, 1);
    const double bytes = 1000 * dispatch_token_bytes(spec);
    const ExpertCommPlan plan = build_expert_comm(spec, routing, topo);
    CHECK(plan.dag.rate_caps().size() == 4);  // sender and receiver blocks of each GPU
    CHECK(run_plan(plan, topo).seconds() == Approx(bytes / 100e9).epsilon(1e-6));
    // Twice the SMs, half the time.
    spec.sms = 8;
    CHECK(run_plan(build_expert_comm(spec, routing, topo), topo).seconds() == Approx(bytes / 200e9).epsilon(1e-6));
    // Combine: the senders store BF16 at 100 GB/s; the receivers load at 2 x 200 GB/s, which does not bind.
    spec.sms = 4;
    spec.phase = ExpertCommPhase::combine;
    CHECK(run_plan(build_expert_comm(spec, routing, topo), topo).seconds() ==
          Approx(1000 * combine_token_bytes(spec) / 100e9).epsilon(1e-6));
    // Without the SM limit the links are the bottleneck.
    spec.sm_copy_limit = false;
    CHECK(run_plan(build_expert_comm(spec, routing, topo), topo).seconds() ==
          Approx(1000 * combine_token_bytes(spec) / 10e12).epsilon(1e-6));
}

TEST_CASE("SM caps that the GPU's own links already enforce are left out of the graph", "[deepep]") {
    // 100 GB/s links: 2 channels x 50 GB/s cannot bind (each GPU sends and receives on one 100 GB/s
    // link), so no cap is added; with 1 channel (50 GB/s) every cap is.
    RingTopology topo(2, 100_GBps, Time::zero());
    ExpertParallelSpec spec = every_token_to_both(100);
    spec.sms = 4;
    const TokenRouting routing = balanced_routing(spec, topo, 1);
    CHECK(build_expert_comm(spec, routing, topo).dag.rate_caps().empty());
    spec.sms = 2;
    const ExpertCommPlan plan = build_expert_comm(spec, routing, topo);
    CHECK(plan.dag.rate_caps().size() == 4);
    CHECK(run_plan(plan, topo).seconds() == Approx(100 * dispatch_token_bytes(spec) / 50e9).epsilon(1e-6));
}

TEST_CASE("a normal-mode call waits for the notify kernel's two barrier rounds", "[deepep]") {
    // Each barrier round is one hop (5 us) between the two GPUs; the data then takes one hop plus
    // its bytes at the link rate.
    RingTopology topo(2, 100_GBps, 5_us);
    ExpertParallelSpec spec = every_token_to_both(1000);
    spec.sm_copy_limit = false;
    const TokenRouting routing = balanced_routing(spec, topo, 1);
    const Time data = Bytes(1000 * dispatch_token_bytes(spec)) / 100_GBps;
    CHECK(run_plan(build_expert_comm(spec, routing, topo), topo) == data + 3 * 5_us);
    spec.kernel_sync = false;
    CHECK(run_plan(build_expert_comm(spec, routing, topo), topo) == data + 5_us);
}

TEST_CASE("an internode notify runs the RDMA and NVLink barriers side by side", "[deepep]") {
    // 2 hosts of 2 GPUs on a 4-GPU ring, 1 us per hop. NVLink group {0,1}: 0 -> 1 is 1 hop, 1 -> 0 is
    // 3 (round the ring); GPU 1 is through round 1 at 1 us and GPU 0 at 3 us, so round 2's flags arrive
    // at 1 + 3 and 3 + 1 = 4 us. Rails {0,2} and {1,3}: 2 hops each way, 2 + 2 = 4 us. Side by side the
    // notify ends at 4 us (one after the other it would take 8 us).
    RingTopology topo(4, 100_GBps, 1_us, 2);
    ExpertParallelSpec spec = spec_for(4);
    spec.experts = 4;
    spec.top_k = 1;
    spec.tokens_per_gpu = 1;
    spec.sm_copy_limit = false;
    const TokenRouting routing = balanced_routing(spec, topo, 1);
    const ExpertCommPlan plan = build_expert_comm(spec, routing, topo);
    Simulator sim;
    FlowNetwork net(sim, topo);
    DagExecution exec(net, plan.dag);
    exec.start();
    sim.run();
    REQUIRE(exec.finished());
    Time notify_done = Time::zero();
    for (TransferId id = 0; id < plan.dag.size(); ++id)
        if (plan.dag.transfers()[id].label.rfind("notify dispatch done", 0) == 0)
            notify_done = std::max(notify_done, exec.transfer_end(id));
    CHECK(notify_done == 4_us);
}

TEST_CASE("expert counts that do not divide over the ranks are rejected", "[deepep]") {
    RingTopology topo(12, 50_GBps, Time::zero(), 4);
    ExpertParallelSpec spec = spec_for(12);
    CHECK_THROWS_WITH(balanced_routing(spec, topo, 1), Catch::Contains("cannot be spread evenly"));
}
