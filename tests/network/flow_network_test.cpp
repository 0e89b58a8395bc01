// Tests of the flow-level network: closed forms for single and competing flows, and max-min invariants.
#include "sim/network/flow_network.hpp"
#include "sim/network/transfer_dag.hpp"
#include "test_topology.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace clustersim;
using namespace clustersim::literals;
using clustersim::testing::RingTopology;

TEST_CASE("a single flow takes its size over the bandwidth plus the path latency", "[network]") {
    RingTopology ring(4, 100_GBps, 2_us);
    Simulator sim;
    FlowNetwork net(sim, ring);
    Time done;
    net.start(0, 2, 1_GB, [&] { done = sim.now(); });  // two hops
    sim.run();
    CHECK(done == 10_ms + 4_us);
}

TEST_CASE("two flows sharing a bottleneck each get half of it", "[network]") {
    RingTopology ring(4, 100_GBps, Time::zero());
    Simulator sim;
    FlowNetwork net(sim, ring);
    Time a, b;
    net.start(0, 1, 1_GB, [&] { a = sim.now(); });
    net.start(0, 2, 1_GB, [&] { b = sim.now(); });  // shares link 0->1
    sim.run();
    CHECK(a == 20_ms);
    CHECK(b == 20_ms);
    CHECK(net.link_bytes(0).bytes() == Approx(2e9));
    CHECK(net.link_bytes(1).bytes() == Approx(1e9));
}

TEST_CASE("a flow speeds up when the flow that bottlenecked it ends", "[network]") {
    // L1 (10 GB/s) carries A and B; L2 (6 GB/s) carries B and C. Max-min: L2 saturates first, B = C = 3,
    // then A = 10 - 3 = 7. C (3 GB) ends at 1 s; then B is limited by L1 shared with A: 5 each. A has
    // 12 - 7 = 5 GB left and B 8 - 3 = 5 GB: both end at 2 s.
    RingTopology topo(2, 1_GBps, Time::zero());
    const LinkIndex l1 = topo.add_link(0, 1, 10_GBps);
    const LinkIndex l2 = topo.add_link(0, 1, 6_GBps);
    Simulator sim;
    FlowNetwork net(sim, topo);
    Time a, b, c;
    const FlowId fa = net.start_on_path(0, 1, {l1}, 12_GB, [&] { a = sim.now(); });
    const FlowId fb = net.start_on_path(0, 1, {l1, l2}, 8_GB, [&] { b = sim.now(); });
    net.start_on_path(0, 1, {l2}, 3_GB, [&] { c = sim.now(); });
    sim.run_until(500_ms);
    CHECK(net.flow_rate(fa).gb_per_second() == Approx(7.0));
    CHECK(net.flow_rate(fb).gb_per_second() == Approx(3.0));
    sim.run_until(1500_ms);
    CHECK(c == 1_s);
    CHECK(net.flow_rate(fa).gb_per_second() == Approx(5.0));
    CHECK(net.flow_rate(fb).gb_per_second() == Approx(5.0));
    sim.run();
    CHECK(a == 2_s);
    CHECK(b == 2_s);
}

TEST_CASE("flows of zero bytes or to the same GPU finish after the latency alone", "[network]") {
    RingTopology ring(4, 100_GBps, 3_us);
    Simulator sim;
    FlowNetwork net(sim, ring);
    Time self, empty;
    net.start(1, 1, 1_GB, [&] { self = sim.now(); });
    net.start(0, 3, Bytes(0), [&] { empty = sim.now(); });
    sim.run();
    CHECK(self == Time::zero());
    CHECK(empty == 9_us);
}

TEST_CASE("a virtual link caps one flow at its capacity and adds no latency", "[network]") {
    RingTopology ring(4, 100_GBps, 2_us);
    Simulator sim;
    FlowNetwork net(sim, ring);
    const LinkIndex cap = net.add_virtual_link(40_GBps);
    CHECK(cap == ring.link_count());
    CHECK(net.link_count() == ring.link_count() + 1);
    Time done;
    net.start_on_path(0, 1, {0, cap}, 1_GB, [&] { done = sim.now(); });
    sim.run();
    CHECK(done == 25_ms + 2_us);  // 1 GB at 40 GB/s, plus the one real hop's latency
    CHECK(net.link_bytes(cap).bytes() == Approx(1e9));
}

TEST_CASE("two flows on disjoint links share a virtual link's capacity max-min fairly", "[network]") {
    // Flows 0->1 and 2->3 have no real link in common; the 40 GB/s cap gives each 20 GB/s. A third flow
    // 1->2 outside the cap runs at the full 100 GB/s.
    RingTopology ring(4, 100_GBps, Time::zero());
    Simulator sim;
    FlowNetwork net(sim, ring);
    const LinkIndex cap = net.add_virtual_link(40_GBps);
    Time a, b, c;
    const FlowId fa = net.start_on_path(0, 1, {0, cap}, 1_GB, [&] { a = sim.now(); });
    net.start_on_path(2, 3, {2, cap}, 2_GB, [&] { b = sim.now(); });
    net.start(1, 2, 1_GB, [&] { c = sim.now(); });
    sim.run_until(1_ms);
    CHECK(net.flow_rate(fa).gb_per_second() == Approx(20.0));
    sim.run();
    CHECK(c == 10_ms);
    CHECK(a == 50_ms);  // 1 GB at 20 GB/s
    CHECK(b == 75_ms);  // 1 GB at 20 GB/s, then the last 1 GB alone at 40 GB/s
}

TEST_CASE("a virtual link needs a positive capacity", "[network]") {
    RingTopology ring(2, 100_GBps, Time::zero());
    Simulator sim;
    FlowNetwork net(sim, ring);
    CHECK_THROWS_AS(net.add_virtual_link(Bandwidth::bytes_per_second(0)), std::invalid_argument);
}

TEST_CASE("max-min rates never exceed a link and every flow is bottlenecked somewhere", "[network]") {
    RingTopology ring(8, 50_GBps, Time::zero());
    Simulator sim(5);
    FlowNetwork net(sim, ring);
    RngStream rng = sim.rng_stream("flows");
    struct Started {
        FlowId id;
        std::vector<LinkIndex> path;
    };
    std::vector<Started> flows;
    for (int i = 0; i < 40; ++i) {
        const int src = static_cast<int>(rng.uniform_int(8));
        const int dst = static_cast<int>((static_cast<std::uint64_t>(src) + 1 + rng.uniform_int(7)) % 8);
        flows.push_back({net.start(src, dst, Bytes(1e9 * (1 + rng.uniform01())), [] {}), ring.route(src, dst, 0)});
    }
    sim.run_until(1_us);  // rates are set; nothing has finished yet
    const double capacity = 50e9;
    for (LinkIndex l = 0; l < ring.link_count(); ++l) CHECK(net.link_rate(l).bytes_per_second() <= capacity * (1 + 1e-9));
    for (const auto& f : flows) {
        const double rate = net.flow_rate(f.id).bytes_per_second();
        REQUIRE(rate > 0);
        bool bottlenecked = false;
        for (LinkIndex l : f.path) {
            if (net.link_rate(l).bytes_per_second() < capacity * (1 - 1e-9)) continue;
            bool largest = true;
            for (const auto& g : flows)
                if (std::find(g.path.begin(), g.path.end(), l) != g.path.end() &&
                    net.flow_rate(g.id).bytes_per_second() > rate * (1 + 1e-9))
                    largest = false;
            bottlenecked = bottlenecked || largest;
        }
        CHECK(bottlenecked);
    }
}

TEST_CASE("the same flows give the same finish times, event for event", "[network][determinism]") {
    auto run_once = [] {
        RingTopology ring(8, 50_GBps, 1_us);
        Simulator sim(9);
        FlowNetwork net(sim, ring);
        RngStream rng = sim.rng_stream("flows");
        std::vector<std::int64_t> ends;
        for (int i = 0; i < 200; ++i) {
            const int src = static_cast<int>(rng.uniform_int(8));
            const int dst = static_cast<int>(rng.uniform_int(8));
            sim.schedule_at(Time::from_ns(static_cast<double>(rng.uniform_int(100000))), [&net, &ends, &sim, src, dst, i] {
                net.start(src, dst, Bytes(1e6 * (i % 7 + 1)), [&ends, &sim] { ends.push_back(sim.now().ps()); });
            });
        }
        sim.run();
        return ends;
    };
    const auto first = run_once();
    CHECK(first.size() == 200);
    CHECK(run_once() == first);
}

TEST_CASE("a rate update interval delays the reuse of freed bandwidth by at most that interval", "[network]") {
    // X (1 GB) and Y (3 GB) share 100 GB/s: 50 each; X ends at 20 ms. Exactly, Y then runs at 100 GB/s
    // and ends at 40 ms. With a 30 ms interval the recomputation waits until 30 ms (30 ms after the
    // one at 0), so Y sends 0.5 GB more at 50 GB/s and the last 1.5 GB at 100 GB/s: it ends at 45 ms.
    for (const auto& [interval, expected] : {std::pair{Time::zero(), 40_ms}, std::pair{30_ms, 45_ms}}) {
        RingTopology ring(2, 100_GBps, Time::zero());
        Simulator sim;
        FlowNetwork net(sim, ring);
        net.set_rate_update_interval(interval);
        Time x, y;
        net.start(0, 1, 1_GB, [&] { x = sim.now(); });
        net.start(0, 1, 3_GB, [&] { y = sim.now(); });
        sim.run();
        CHECK(x == 20_ms);
        CHECK(y == expected);
    }
}

TEST_CASE("a transfer graph's rate cap limits every transfer given it, as one shared link", "[network]") {
    RingTopology ring(4, 100_GBps, Time::zero());
    TransferDag dag;
    const std::uint32_t cap = dag.add_rate_cap(50_GBps, "copy engine");
    const TransferId a = dag.add(0, 1, 1_GB);
    const TransferId b = dag.add(2, 3, 1_GB);
    const TransferId c = dag.add(1, 2, 1_GB, {a});
    const TransferId d = dag.add(3, 0, 1_GB);  // not capped: 100 GB/s
    for (TransferId id : {a, b, c}) dag.apply_rate_cap(id, cap);
    Simulator sim;
    FlowNetwork net(sim, ring);
    DagExecution exec(net, dag);
    exec.start();
    sim.run();
    REQUIRE(exec.finished());
    // a and b share 50 GB/s (1 GB at 25 GB/s: 40 ms each), then c has it alone (20 ms more).
    CHECK(exec.transfer_end(a) == 40_ms);
    CHECK(exec.transfer_end(b) == 40_ms);
    CHECK(exec.transfer_end(c) == 60_ms);
    CHECK(exec.transfer_end(d) == 10_ms);
    CHECK_THROWS_AS(dag.apply_rate_cap(a, 7), std::logic_error);
}
