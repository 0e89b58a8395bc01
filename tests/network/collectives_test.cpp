// Tests of collectives decomposed into flows: closed forms on an idle uniform ring, and bus bandwidth.
#include "sim/network/collectives.hpp"
#include "test_topology.hpp"

#include <catch2/catch.hpp>

using namespace clustersim;
using namespace clustersim::literals;
using clustersim::testing::RingTopology;

namespace {
Time run(const TransferDag& dag, const Topology& topology) {
    Simulator sim;
    FlowNetwork net(sim, topology);
    DagExecution exec(net, dag);
    exec.start();
    sim.run();
    REQUIRE(exec.finished());
    return exec.finished_at() - exec.started_at();
}
}  // namespace

TEST_CASE("a ring all-reduce on an idle uniform ring takes 2(n-1) steps of size/n", "[collectives]") {
    const int n = 4;
    RingTopology ring(n, 100_GBps, 5_us);
    CollectiveSpec spec;
    spec.op = CollectiveOp::all_reduce;
    spec.algorithm = CollectiveAlgorithm::ring;
    spec.gpus = {0, 1, 2, 3};
    spec.size = 4_GB;
    const TransferDag dag = build_collective(spec, ring);
    CHECK(dag.size() == static_cast<std::size_t>(2 * (n - 1) * n));
    // 2(n-1) * (S/n / B + latency) = 6 * (10 ms + 5 us)
    CHECK(run(dag, ring) == 6 * (10_ms + 5_us));
}

TEST_CASE("ring all-gather and reduce-scatter take n-1 steps", "[collectives]") {
    RingTopology ring(8, 50_GBps, Time::zero());
    for (auto op : {CollectiveOp::all_gather, CollectiveOp::reduce_scatter}) {
        CollectiveSpec spec;
        spec.op = op;
        spec.gpus = {0, 1, 2, 3, 4, 5, 6, 7};
        spec.size = 8_GB;
        CHECK(run(build_collective(spec, ring), ring) == 7 * 20_ms);
    }
}

TEST_CASE("the bus bandwidth of a ring all-reduce equals the link bandwidth when latency is zero", "[collectives]") {
    RingTopology ring(8, 100_GBps, Time::zero());
    CollectiveSpec spec;
    spec.gpus = {0, 1, 2, 3, 4, 5, 6, 7};
    spec.size = 1_GB;
    const Time t = run(build_collective(spec, ring), ring);
    const double busbw = spec.size.bytes() / t.seconds() * bus_bandwidth_factor(spec.op, 8);
    CHECK(busbw == Approx(100e9).epsilon(1e-9));
}

TEST_CASE("a point-to-point transfer is one flow and an all-to-all sends to every other rank", "[collectives]") {
    RingTopology ring(4, 100_GBps, Time::zero());
    CollectiveSpec p2p;
    p2p.op = CollectiveOp::point_to_point;
    p2p.algorithm = CollectiveAlgorithm::direct;
    p2p.gpus = {0, 1};
    p2p.size = 1_GB;
    CHECK(run(build_collective(p2p, ring), ring) == 10_ms);

    CollectiveSpec a2a;
    a2a.op = CollectiveOp::all_to_all;
    a2a.algorithm = CollectiveAlgorithm::direct;
    a2a.gpus = {0, 1, 2, 3};
    a2a.size = 4_GB;
    const TransferDag dag = build_collective(a2a, ring);
    CHECK(dag.size() == 12);
    CHECK(dag.total_bytes().bytes() == Approx(12e9));
}

TEST_CASE("a pipelined tree all-reduce approaches twice the chunk-free time with many chunks", "[collectives]") {
    // On a 2-rank ring, reduce (1 -> 0) and broadcast (0 -> 1) use opposite links, so with k chunks
    // the time is (k + 1) chunk times: the broadcast trails the reduce by one chunk.
    RingTopology ring(2, 100_GBps, Time::zero());
    CollectiveSpec spec;
    spec.algorithm = CollectiveAlgorithm::tree;
    spec.gpus = {0, 1};
    spec.size = 1_GB;
    spec.chunks = 10;
    CHECK(run(build_collective(spec, ring), ring) == 11 * 1_ms);
}

TEST_CASE("a hierarchical all-reduce needs the same number of GPUs on every host", "[collectives]") {
    RingTopology ring(8, 100_GBps, Time::zero(), 4);
    CollectiveSpec spec;
    spec.algorithm = CollectiveAlgorithm::hierarchical;
    spec.gpus = {0, 1, 2, 4, 5};
    spec.size = 1_GB;
    CHECK_THROWS_WITH(build_collective(spec, ring), Catch::Contains("same number of GPUs on every host"));
    spec.gpus = {0, 1, 2, 3, 4, 5, 6, 7};
    CHECK(run(build_collective(spec, ring), ring) > Time::zero());
}
