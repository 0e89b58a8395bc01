// KV transfers as flows on the network model: closed forms on an idle fabric, sharing of a decode
// instance's links, oversubscription, and the FIFO channel they replace.
#include "sim/input/diagnostics.hpp"
#include "sim/serving/network_kv_transfer_channel.hpp"
#include "tests/serving/serving_test_support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>

using namespace clustersim;
using namespace clustersim::literals;
using clustersim::serving_testing::all_messages;

namespace {

// 8 hosts of 2 GPUs, rail-optimized, 4 hosts under each leaf; with `spines` = 4 / oversubscription
// each leaf has one uplink per spine. IB is the bottleneck of a cross-host path (PCIe: 54.4 GB/s).
constexpr double kIbBytesPerS = 400e9 / 8;
const Time kPcieLatency = 1_us;
const Time kIbLatency = 500_ns;

std::shared_ptr<const Topology> fabric(int oversubscription) {
    const std::string text = fmt::format(
        "name: kv-test\nkind: hgx\ngpu_model: H100\nhosts: 8\ngpus_per_host: 2\n"
        "links:\n"
        "  nvlink: {{bandwidth: 450GB/s, latency: 1us}}\n"
        "  pcie: {{bandwidth: 64GB/s, efficiency: 0.85, latency: 1us}}\n"
        "  infiniband: {{bandwidth: 400Gbps, latency: 0.5us}}\n"
        "fabric: {{kind: rail-optimized, hosts_per_leaf: 4, spines: {}, oversubscription: {}}}\n",
        4 / oversubscription, oversubscription);
    Diagnostics diagnostics;
    auto t = load_topology_from_string(text, "kv-test.yaml", diagnostics);
    INFO(all_messages(diagnostics));
    REQUIRE(t);
    return t;
}

// Eight instances of one host each (instance i on host i), one attention group of 2 TP ranks.
std::vector<KvEndpoint> one_instance_per_host() {
    return place_consecutively(std::vector<int>(8, 2), std::vector<int>(8, 1));
}

KvTransfer transfer(std::int64_t request, int from, int to, Bytes bytes) {
    KvTransfer t;
    t.request = request;
    t.from_instance = from;
    t.to_instance = to;
    t.tokens = 1000;
    t.bytes = bytes;
    return t;
}

// Starts `transfers` at time zero on the fabric and returns how long each took.
std::vector<Time> transfer_times(const Topology& topology, const std::vector<KvTransfer>& transfers) {
    Simulator sim;
    NetworkKvTransferChannel channel(sim, topology, one_instance_per_host());
    std::vector<Time> times(transfers.size());
    for (std::size_t i = 0; i < transfers.size(); ++i) {
        const Time start = channel.start(transfers[i], [&times, &sim, i] { times[i] = sim.now(); });
        CHECK(start == Time::zero());
    }
    sim.run();
    return times;
}

}  // namespace

TEST_CASE("instances sit on consecutive GPUs, attention groups of attn_tp GPUs each") {
    const auto placed = place_consecutively({32, 32, 144}, {32, 8, 144});
    REQUIRE(placed.size() == 3);
    CHECK(placed[1].first_gpu == 32);
    CHECK(placed[1].attn_tp == 4);
    CHECK(placed[2].first_gpu == 64);
    CHECK(placed[2].attn_tp == 1);
    CHECK_THROWS_WITH(place_consecutively({8}, {3}), Catch::Matchers::Contains("3 attention DP groups"));
}

TEST_CASE("a KV transfer on an idle fabric takes its bytes over the NICs plus the path latency") {
    const auto t = fabric(1);
    // Host 0 to host 1, under one leaf: each of the 2 ranks sends half over its own rail,
    // GPU -PCIe-> NIC -IB-> leaf -IB-> NIC -PCIe-> GPU.
    const Bytes bytes(400e6);
    const auto times = transfer_times(*t, {transfer(0, 0, 1, bytes)});
    const double expected = bytes.bytes() / 2 / kIbBytesPerS + (2 * kPcieLatency + 2 * kIbLatency).seconds();
    CHECK(times[0].seconds() == Approx(expected).epsilon(1e-9));
}

TEST_CASE("two transfers into one decode instance share its inbound links; into different hosts they do not") {
    const auto t = fabric(1);
    const Bytes bytes(400e6);
    const Time alone = transfer_times(*t, {transfer(0, 0, 2, bytes)})[0];
    // Hosts 0 and 1 into host 2: both land on host 2's NICs.
    const auto shared = transfer_times(*t, {transfer(0, 0, 2, bytes), transfer(1, 1, 2, bytes)});
    const Time latency = 2 * kPcieLatency + 2 * kIbLatency;
    for (Time time : shared) CHECK((time - latency) / (alone - latency) == Approx(2.0).epsilon(1e-6));
    // Hosts 0 and 1 into hosts 2 and 3: separate NICs under a non-blocking leaf.
    const auto apart = transfer_times(*t, {transfer(0, 0, 2, bytes), transfer(1, 1, 3, bytes)});
    for (Time time : apart) CHECK(time == alone);
}

TEST_CASE("cross-leaf KV transfers slow down on an oversubscribed fabric") {
    // Hosts 0-3 (leaf 0 of each rail) send 4 requests each to hosts 4-7 (leaf 1) at once: 16 flows per
    // rail go up, over 4 uplinks (ECMP by request id) or, at 4:1, over one.
    const Bytes bytes(400e6);
    std::vector<KvTransfer> transfers;
    for (int request = 0; request < 16; ++request)
        transfers.push_back(transfer(request, request % 4, 4 + request % 4, bytes));
    auto mean_s = [&](int oversubscription) {
        const auto times = transfer_times(*fabric(oversubscription), transfers);
        double sum = 0;
        for (Time time : times) sum += time.seconds();
        return sum / static_cast<double>(times.size());
    };
    const double full = mean_s(1);
    const double oversubscribed = mean_s(4);
    // 4:1 leaves one uplink per leaf and rail: the 16 flows of a rail share it.
    const Time latency = 2 * kPcieLatency + 4 * kIbLatency;  // NIC, leaf, spine, leaf, NIC
    CHECK(oversubscribed == Approx(16 * bytes.bytes() / 2 / kIbBytesPerS + latency.seconds()).epsilon(1e-6));
    CHECK(oversubscribed > 2 * full);
}

TEST_CASE("the FIFO channel queues transfers into one decode instance and never across instances") {
    Simulator sim;
    FifoKvTransferChannel fifo(sim, 100_GBps, 5_us);
    std::vector<Time> done(3);
    const Time a = fifo.start(transfer(0, 0, 1, Bytes(1e9)), [&] { done[0] = sim.now(); });
    const Time b = fifo.start(transfer(1, 0, 1, Bytes(1e9)), [&] { done[1] = sim.now(); });
    const Time c = fifo.start(transfer(2, 0, 2, Bytes(1e9)), [&] { done[2] = sim.now(); });
    sim.run();
    CHECK(a == Time::zero());
    CHECK(b == 10_ms);  // behind the first on decode instance 1's link
    CHECK(c == Time::zero());
    CHECK(done[0] == 10_ms + 5_us);
    CHECK(done[1] == 20_ms + 5_us);
    CHECK(done[2] == 10_ms + 5_us);
}
