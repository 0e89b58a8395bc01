// Tests of the shipped topology files, their validation, and routing (NVLink, rails, planes, ECMP).
#include "topologies/topology.hpp"

#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

using namespace clustersim;
using namespace clustersim::literals;

namespace {

std::string source(const std::string& relative) {
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/" + relative;
}

std::shared_ptr<const Topology> load_shipped(const std::string& file, TopologyOverrides overrides = {}) {
    Diagnostics diagnostics;
    auto topology = load_topology(source("topologies/" + file), diagnostics, overrides);
    INFO(file);
    for (const auto& d : diagnostics.errors()) UNSCOPED_INFO(format(d));
    REQUIRE(diagnostics.empty());
    REQUIRE(topology);
    return topology;
}

// All diagnostics of loading a bad fixture, formatted as the CLI prints them.
std::vector<std::string> errors_of(const std::string& fixture) {
    Diagnostics diagnostics;
    auto topology = load_topology(source("tests/topologies/fixtures/" + fixture), diagnostics);
    CHECK_FALSE(topology);
    std::vector<std::string> out;
    for (const auto& d : diagnostics.errors()) {
        out.push_back(format(d));
        UNSCOPED_INFO(out.back());
    }
    return out;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& line : lines) {
        if (line.find(text) != std::string::npos) return true;
    }
    return false;
}

std::vector<LinkKind> kinds_of(const Topology& t, const std::vector<LinkIndex>& path) {
    std::vector<LinkKind> kinds;
    for (const LinkIndex l : path) kinds.push_back(t.link(l).kind);
    return kinds;
}

// The path is a chain of links from src's node to dst's node.
void require_chain(const Topology& t, int src, int dst, const std::vector<LinkIndex>& path) {
    REQUIRE_FALSE(path.empty());
    REQUIRE(t.link(path.front()).from == t.gpu_node(src));
    REQUIRE(t.link(path.back()).to == t.gpu_node(dst));
    for (std::size_t i = 1; i < path.size(); ++i) REQUIRE(t.link(path[i - 1]).to == t.link(path[i]).from);
}

// A small rail-optimized fabric as text, for tests that vary one parameter.
std::string small_rail_fabric(double oversubscription, int spines) {
    return "name: small\nkind: hgx\ngpu_model: H100\nhosts: 8\n"
           "links:\n"
           "  nvlink: {bandwidth: 450GB/s, efficiency: 0.82, latency: 1us}\n"
           "  pcie: {bandwidth: 64GB/s, efficiency: 0.85, latency: 1us}\n"
           "  infiniband: {bandwidth: 400Gbps, latency: 0.5us}\n"
           "fabric:\n  kind: rail-optimized\n  hosts_per_leaf: 4\n"
           "  spines: " +
           std::to_string(spines) + "\n  oversubscription: " + std::to_string(oversubscription) + "\n";
}

}  // namespace

TEST_CASE("every shipped topology file loads with the GPU count it describes", "[topology]") {
    const std::vector<std::pair<std::string, int>> files = {{"h800-ib-rail.yaml", 2048},
                                                            {"h800-2node.yaml", 16},
                                                            {"h100-ib-rail.yaml", 1024},
                                                            {"h200-ib-rail.yaml", 1024},
                                                            {"gb200-nvl72.yaml", 576}};
    for (const auto& [file, gpus] : files) {
        auto t = load_shipped(file);
        INFO(file);
        CHECK(t->gpu_count() == gpus);
        CHECK(t->host_count() * t->gpus_per_host() == gpus);
        CHECK(t->gpu_node(gpus - 1) < t->node_count());
    }
    auto nvl72 = load_shipped("gb200-nvl72.yaml");
    CHECK(nvl72->gpus_per_host() == 72);
    CHECK(nvl72->gpu_model() == "GB200");
    CHECK(load_shipped("h800-ib-rail.yaml")->fabric_kind() == FabricKind::multi_plane);
    CHECK(load_shipped("h100-ib-rail.yaml")->fabric_kind() == FabricKind::rail_optimized);
}

TEST_CASE("H800 links carry DeepSeek's achievable bandwidths", "[topology]") {
    auto t = load_shipped("h800-2node.yaml");
    const auto nvlink = t->route(0, 1);
    REQUIRE(nvlink.size() == 2);
    CHECK(t->link(nvlink[0]).effective_bandwidth().gb_per_second() == Approx(160.0));
    const auto ib = t->route(0, 8);
    CHECK(path_bottleneck(*t, ib).gb_per_second() == Approx(50.0));
    CHECK(t->link(nvlink[0]).name == "host0/gpu0->host0/nvswitch");
}

TEST_CASE("a scenario can override the host count of a shipped topology", "[topology]") {
    TopologyOverrides two_hosts;
    two_hosts.hosts = 2;
    auto t = load_shipped("h800-ib-rail.yaml", two_hosts);
    CHECK(t->gpu_count() == 16);

    Diagnostics diagnostics;
    auto scenario = YamlDocument::load_string(
        "topology: {file: " + source("topologies/h100-ib-rail.yaml") + ", hosts: 4}\n", "scenario.yaml", diagnostics);
    MapReader root = MapReader::root(scenario);
    const TopologySpec spec = read_topology_spec(root, "topology");
    root.finish();
    REQUIRE(diagnostics.empty());
    REQUIRE(spec.overrides.hosts == 4);
    auto overridden = load_topology(spec, diagnostics);
    REQUIRE(overridden);
    CHECK(overridden->gpu_count() == 32);
}

TEST_CASE("a fat tree grown past one leaf is grown by whole leaves", "[topology]") {
    // h800-ib-rail: 32 hosts per leaf. Up to one leaf any count builds; past it, whole leaves.
    auto t = load_shipped("h800-ib-rail.yaml");
    CHECK(t->hosts_that_hold(5) == 5);
    CHECK(t->hosts_that_hold(32) == 32);
    CHECK(t->hosts_that_hold(33) == 64);
    CHECK(t->hosts_that_hold(174) == 192);
    TopologyOverrides grown;
    grown.hosts = t->hosts_that_hold(174);
    CHECK(load_shipped("h800-ib-rail.yaml", grown)->host_count() == 192);
    // NVL72: 8 racks per leaf.
    CHECK(load_shipped("gb200-nvl72.yaml")->hosts_that_hold(9) == 16);
}

TEST_CASE("a scenario may name its topology by a path relative to the scenario file", "[topology]") {
    Diagnostics diagnostics;
    // The document's name stands for its path; ../../../topologies/... exists only beside it.
    auto scenario = YamlDocument::load_string("topology: ../../../topologies/h800-2node.yaml\n",
                                              source("tests/topologies/fixtures/scenario.yaml"), diagnostics);
    MapReader root = MapReader::root(scenario);
    const TopologySpec spec = read_topology_spec(root, "topology");
    root.finish();
    REQUIRE(diagnostics.empty());
    CHECK_FALSE(spec.overrides.hosts);
    CHECK(spec.resolved_file == source("tests/topologies/fixtures/../../../topologies/h800-2node.yaml"));
    auto t = load_topology(spec, diagnostics);
    REQUIRE(t);
    CHECK(t->gpu_count() == 16);
}

TEST_CASE("a bad host override names the scenario's line and key", "[topology][errors]") {
    Diagnostics diagnostics;
    auto scenario =
        YamlDocument::load_string("topology:\n  file: " + source("topologies/h100-ib-rail.yaml") + "\n  hosts: 48\n",
                                  "scenario.yaml", diagnostics);
    MapReader root = MapReader::root(scenario);
    const TopologySpec spec = read_topology_spec(root, "topology");
    REQUIRE(diagnostics.empty());
    CHECK_FALSE(load_topology(spec, diagnostics));
    // 48 hosts do not fill whole leaves of 32: the error is in the topology file's fabric section.
    REQUIRE(diagnostics.size() == 1);
    CHECK(format(diagnostics.errors()[0]).find("fabric.hosts_per_leaf: the 48 hosts do not fill whole leaves") !=
          std::string::npos);
}

TEST_CASE("a path between two GPUs of one host is NVLink only", "[routing]") {
    for (const std::string file : {"h800-2node.yaml", "h100-ib-rail.yaml", "gb200-nvl72.yaml"}) {
        auto t = load_shipped(file);
        const int last = t->gpus_per_host() - 1;
        const auto path = t->route(t->gpu_at(1, 0), t->gpu_at(1, last), 7);
        require_chain(*t, t->gpu_at(1, 0), t->gpu_at(1, last), path);
        CHECK(kinds_of(*t, path) == std::vector<LinkKind>{LinkKind::nvlink, LinkKind::nvlink});
        CHECK(t->node(t->link(path[0]).to).kind == NodeKind::nvswitch);
    }
}

TEST_CASE("a GPU's route to itself is empty", "[routing]") {
    auto t = load_shipped("h800-2node.yaml");
    CHECK(t->route(3, 3).empty());
    CHECK_THROWS_AS(t->route(0, 16), std::out_of_range);
}

TEST_CASE("same-rail GPUs under one leaf are four links apart, under different leaves six", "[routing]") {
    auto t = load_shipped("h100-ib-rail.yaml");  // 32 hosts per leaf
    const auto near = t->route(t->gpu_at(0, 3), t->gpu_at(31, 3));
    require_chain(*t, t->gpu_at(0, 3), t->gpu_at(31, 3), near);
    CHECK(kinds_of(*t, near) ==
          std::vector<LinkKind>{LinkKind::pcie, LinkKind::infiniband, LinkKind::infiniband, LinkKind::pcie});
    const auto far = t->route(t->gpu_at(0, 3), t->gpu_at(32, 3));
    require_chain(*t, t->gpu_at(0, 3), t->gpu_at(32, 3), far);
    CHECK(kinds_of(*t, far) == std::vector<LinkKind>{LinkKind::pcie, LinkKind::infiniband, LinkKind::infiniband,
                                                     LinkKind::infiniband, LinkKind::infiniband, LinkKind::pcie});
    CHECK(t->node(t->link(far[2]).to).kind == NodeKind::spine_switch);
    CHECK(path_latency(*t, far) == 2 * 950_ns + 4 * 450_ns);
}

TEST_CASE("cross-rail traffic on a rail-optimized fabric moves to the destination's rail over NVLink first",
          "[routing]") {
    auto t = load_shipped("h100-ib-rail.yaml");
    const int src = t->gpu_at(0, 1);
    const int dst = t->gpu_at(40, 6);
    const auto path = t->route(src, dst, 3);
    require_chain(*t, src, dst, path);
    REQUIRE(path.size() == 8);
    CHECK(kinds_of(*t, path)[0] == LinkKind::nvlink);
    CHECK(kinds_of(*t, path)[1] == LinkKind::nvlink);
    // The relay is the source host's GPU on rail 6; from there on every NIC is on rail 6.
    const TopologyNode& relay = t->node(t->link(path[1]).to);
    CHECK(relay.kind == NodeKind::gpu);
    CHECK(relay.host == 0);
    CHECK(relay.rail == 6);
    CHECK(t->node(t->link(path[3]).to).name.rfind("rail6/leaf", 0) == 0);
    CHECK(t->node(t->link(path[6]).from).name.rfind("rail6/leaf", 0) == 0);
    CHECK(t->node(t->link(path[3]).to).rail == 6);

    // With cross_rail: fabric, the same transfer stays off NVLink and crosses rails at a spine.
    std::string text = small_rail_fabric(1, 2) + "  cross_rail: fabric\n";
    Diagnostics diagnostics;
    auto direct = load_topology_from_string(text, "direct.yaml", diagnostics);
    REQUIRE(direct);
    const auto fabric_path = direct->route(direct->gpu_at(0, 1), direct->gpu_at(1, 6));
    CHECK(kinds_of(*direct, fabric_path) == std::vector<LinkKind>{LinkKind::pcie, LinkKind::infiniband,
                                                                  LinkKind::infiniband, LinkKind::infiniband,
                                                                  LinkKind::infiniband, LinkKind::pcie});
}

TEST_CASE("cross-plane traffic on a multi-plane fabric is forwarded over NVLink inside the source host", "[routing]") {
    auto t = load_shipped("h800-ib-rail.yaml");
    const int src = t->gpu_at(5, 0);
    const int dst = t->gpu_at(200, 3);
    const auto path = t->route(src, dst, 11);
    require_chain(*t, src, dst, path);
    CHECK(kinds_of(*t, path)[0] == LinkKind::nvlink);
    CHECK(kinds_of(*t, path)[1] == LinkKind::nvlink);
    CHECK(t->node(t->link(path[1]).to).name == "host5/gpu3");
    // Every switch on the way belongs to plane 3, and no GPU other than the relay is crossed.
    int gpus_crossed = 0;
    for (std::size_t i = 2; i < path.size(); ++i) {
        const TopologyNode& from = t->node(t->link(path[i]).from);
        if (from.kind == NodeKind::leaf_switch || from.kind == NodeKind::spine_switch) {
            CHECK(from.name.rfind("plane3/", 0) == 0);
        }
        if (from.kind == NodeKind::gpu) ++gpus_crossed;
    }
    CHECK(gpus_crossed == 1);
}

TEST_CASE("the same flow key always takes the same path and different keys spread over the spines", "[routing]") {
    auto t = load_shipped("h800-ib-rail.yaml");  // 4 spines per plane, 8 cables per leaf-spine pair
    const int src = t->gpu_at(0, 2);
    const int dst = t->gpu_at(100, 2);
    std::set<std::string> spines;
    std::set<std::vector<LinkIndex>> paths;
    for (std::uint64_t key = 0; key < 512; ++key) {
        const auto path = t->route(src, dst, key);
        CHECK(path == t->route(src, dst, key));
        REQUIRE(path.size() == 6);
        spines.insert(t->node(t->link(path[2]).to).name);
        paths.insert(path);
    }
    CHECK(spines.size() == 4);
    CHECK(paths.size() > 100);  // 4 spines x 8 cables up x 8 cables down = 256 equal-cost paths
    // Loading twice gives the same choices: nothing depends on addresses or hash-map order.
    auto again = load_shipped("h800-ib-rail.yaml");
    for (std::uint64_t key = 0; key < 64; ++key) CHECK(again->route(src, dst, key) == t->route(src, dst, key));
}

TEST_CASE("a 2:1 oversubscribed fabric gives each leaf half the uplink capacity of a 1:1 fabric", "[topology]") {
    auto uplink_capacity = [](double ratio) {
        Diagnostics diagnostics;
        auto t = load_topology_from_string(small_rail_fabric(ratio, 2), "small.yaml", diagnostics);
        REQUIRE(t);
        Bandwidth up{};
        Bandwidth down{};
        for (LinkIndex l = 0; l < t->link_count(); ++l) {
            const TopologyLink& link = t->link(l);
            if (t->node(link.from).name != "rail0/leaf0") continue;
            if (t->node(link.to).kind == NodeKind::spine_switch) up += link.bandwidth;
            if (t->node(link.to).kind == NodeKind::nic) down += link.bandwidth;
        }
        CHECK(down.gbit_per_second() == Approx(4 * 400.0));
        return up;
    };
    const Bandwidth full = uplink_capacity(1);
    const Bandwidth half = uplink_capacity(2);
    CHECK(full.gbit_per_second() == Approx(4 * 400.0));
    CHECK(half / full == Approx(0.5));
}

TEST_CASE("every route of the 2-node H800 topology is a chain through no foreign GPU", "[routing]") {
    auto t = load_shipped("h800-2node.yaml");
    std::vector<LinkIndex> path;
    for (int src = 0; src < t->gpu_count(); ++src) {
        for (int dst = 0; dst < t->gpu_count(); ++dst) {
            if (src == dst) continue;
            t->route_into(src, dst, static_cast<std::uint64_t>(src * 100 + dst), path);
            require_chain(*t, src, dst, path);
            for (std::size_t i = 1; i < path.size(); ++i) {
                const TopologyNode& via = t->node(t->link(path[i]).from);
                if (via.kind != NodeKind::gpu) continue;
                // The only GPU a path may cross is the NVLink relay on the source host.
                CHECK(via.host == t->host_of(src));
                CHECK(via.rail == t->local_rank(dst));
            }
        }
    }
}

TEST_CASE("routing an EP64 all-to-all 250 times takes well under a second", "[routing][speed]") {
    auto t = load_shipped("h800-ib-rail.yaml", TopologyOverrides{8, "", 0, 0, ""});
    REQUIRE(t->gpu_count() == 64);
    std::vector<LinkIndex> path;
    std::size_t links = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t round = 0; round < 250; ++round) {
        for (int src = 0; src < 64; ++src) {
            for (int dst = 0; dst < 64; ++dst) {
                t->route_into(src, dst, round, path);
                links += path.size();
            }
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN("1,024,000 routes in " << seconds << " s (" << links << " links)");
    CHECK(seconds < 1.0);  // generous, for sanitizer builds (~0.45 s); a release build takes ~0.015 s
}

// ---- bad topology files: every message names file:line:col and the key path --------------------

TEST_CASE("an unknown key is reported with its line and a did-you-mean suggestion", "[topology][errors]") {
    const auto errors = errors_of("unknown_key.yaml");
    CHECK(any_contains(errors,
                       "fixtures/unknown_key.yaml:8:5: links.nvlink.bandwith: unknown key \"bandwith\" "
                       "(did you mean \"bandwidth\"?)"));
    CHECK(any_contains(errors, "links.nvlink: missing required key \"bandwidth\""));
}

TEST_CASE("a bandwidth without a unit is an error naming the file, line and key", "[topology][errors]") {
    const auto errors = errors_of("missing_unit.yaml");
    REQUIRE(errors.size() == 1);
    CHECK(any_contains(errors, "fixtures/missing_unit.yaml:8:16: links.nvlink.bandwidth:"));
    CHECK(any_contains(errors, "with no unit"));
}

TEST_CASE("a zero bandwidth and an efficiency above one are both reported", "[topology][errors]") {
    const auto errors = errors_of("zero_bandwidth.yaml");
    REQUIRE(errors.size() == 2);
    CHECK(any_contains(errors,
                       "fixtures/zero_bandwidth.yaml:9:27: links.infiniband.bandwidth: expected a positive "
                       "value; found 0Gbps"));
    CHECK(any_contains(errors,
                       "fixtures/zero_bandwidth.yaml:8:41: links.pcie.efficiency: expected an efficiency in "
                       "(0, 1]; found 1.5"));
}

TEST_CASE("a fabric whose leaves no spine joins is reported as disconnected", "[topology][errors]") {
    const auto errors = errors_of("disconnected.yaml");
    REQUIRE(errors.size() == 1);
    CHECK(any_contains(errors,
                       "fixtures/disconnected.yaml:11:3: fabric: the topology is disconnected: host0/gpu0 "
                       "cannot reach host32/gpu0"));
}

TEST_CASE("hosts with no fabric between them are reported as disconnected", "[topology][errors]") {
    const auto errors = errors_of("no_fabric.yaml");
    REQUIRE(errors.size() == 1);
    CHECK(any_contains(errors, "fixtures/no_fabric.yaml:5:8: hosts: the topology is disconnected"));
}

TEST_CASE("host, leaf and spine counts that do not fit together are reported", "[topology][errors]") {
    const auto errors = errors_of("inconsistent_counts.yaml");
    REQUIRE(errors.size() == 2);
    CHECK(any_contains(errors,
                       "fixtures/inconsistent_counts.yaml:12:19: fabric.hosts_per_leaf: the 48 hosts do not "
                       "fill whole leaves of 32 hosts"));
    CHECK(any_contains(errors,
                       "fixtures/inconsistent_counts.yaml:13:11: fabric.spines: each leaf's 32 uplinks do not "
                       "divide evenly over 5 spines"));
}

TEST_CASE("a missing topology file is an error, not a crash", "[topology][errors]") {
    const auto errors = errors_of("no_such_file.yaml");
    REQUIRE(errors.size() == 1);
    CHECK(any_contains(errors, "no_such_file.yaml: cannot open the file"));
}
