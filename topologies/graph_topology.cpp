// Building the topology graph, checking it, precomputing the routing tables, and routing.
#include "topologies/graph_topology.hpp"

#include "topologies/topology_spec.hpp"

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/reverse_graph.hpp>
#include <boost/graph/visitors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

namespace clustersim {
namespace {

// SplitMix64's finalizer: a stable, platform-independent 64-bit mix (no std::hash, whose values
// differ between standard libraries).
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// The hash of one flow: its key and its endpoints, like a switch hashing a packet's header fields.
std::uint64_t flow_hash_of(std::uint64_t flow_key, int src, int dst) {
    const std::uint64_t pair =
        (static_cast<std::uint64_t>(static_cast<std::uint32_t>(src)) << 32) | static_cast<std::uint32_t>(dst);
    return mix(flow_key ^ mix(pair));
}

// Which of `count` equal-cost choices the flow takes at `node`: depends only on the flow's hash and
// the node, so the same flow always takes the same path and different flows spread.
std::size_t ecmp_choice(std::uint64_t flow_hash, NodeIndex node, std::size_t count) {
    return static_cast<std::size_t>(mix(flow_hash ^ mix(0xec3bULL + node)) % count);
}

constexpr std::size_t kMaxReportedProblems = 5;

}  // namespace

GraphTopology::GraphTopology(Shape shape) : shape_(std::move(shape)) {
    gpu_nodes_.assign(static_cast<std::size_t>(gpu_count()), std::numeric_limits<NodeIndex>::max());
}

NodeIndex GraphTopology::add_node(TopologyNode node) {
    const auto index = static_cast<NodeIndex>(nodes_.size());
    if (node.kind == NodeKind::gpu) {
        if (node.gpu < 0 || node.gpu >= gpu_count()) throw std::logic_error("GPU index out of range: " + node.name);
        gpu_nodes_[static_cast<std::size_t>(node.gpu)] = index;
    }
    nodes_.push_back(std::move(node));
    boost::add_vertex(graph_);
    finalized_ = false;
    return index;
}

LinkIndex GraphTopology::add_link(NodeIndex from, NodeIndex to, LinkKind kind, const LinkSpec& spec) {
    const auto index = static_cast<LinkIndex>(links_.size());
    links_.push_back(TopologyLink{from, to, kind, spec.bandwidth, spec.efficiency, spec.latency,
                                  nodes_.at(from).name + "->" + nodes_.at(to).name});
    boost::add_edge(from, to, index, graph_);
    finalized_ = false;
    return index;
}

void GraphTopology::add_cable(NodeIndex a, NodeIndex b, LinkKind kind, const LinkSpec& spec) {
    add_link(a, b, kind, spec);
    add_link(b, a, kind, spec);
}

std::vector<std::string> GraphTopology::finalize() {
    std::vector<std::string> problems;
    for (int g = 0; g < gpu_count(); ++g) {
        if (gpu_nodes_[static_cast<std::size_t>(g)] == std::numeric_limits<NodeIndex>::max()) {
            problems.push_back(fmt::format("GPU {} was never built (a builder bug)", g));
        }
    }
    if (!problems.empty()) return problems;

    // 1. Physical connectivity, with Boost's BFS from GPU 0 forwards and on the reversed graph: every
    //    GPU must reach GPU 0 and be reached from it, so every GPU reaches every other.
    const std::size_t n = nodes_.size();
    auto unreached = [&](const auto& graph) {
        std::vector<int> hops(n, -1);
        hops[gpu_nodes_[0]] = 0;
        boost::breadth_first_search(
            graph, boost::vertex(gpu_nodes_[0], graph),
            boost::visitor(boost::make_bfs_visitor(boost::record_distances(hops.data(), boost::on_tree_edge()))));
        std::vector<int> missing;
        for (int g = 1; g < gpu_count(); ++g) {
            if (hops[gpu_nodes_[static_cast<std::size_t>(g)]] < 0) missing.push_back(g);
        }
        return missing;
    };
    for (const bool reversed : {false, true}) {
        const std::vector<int> missing = reversed ? unreached(boost::make_reverse_graph(graph_)) : unreached(graph_);
        if (missing.empty()) continue;
        const TopologyNode& first = nodes_[gpu_nodes_[0]];
        const TopologyNode& other = nodes_[gpu_nodes_[static_cast<std::size_t>(missing.front())]];
        problems.push_back(
            fmt::format("the topology is disconnected: {} cannot {} {}{} (is a fabric missing, or are there no spines "
                        "to join the leaves?)",
                        first.name, reversed ? "be reached from" : "reach", other.name,
                        missing.size() > 1 ? fmt::format(" and {} other GPUs", missing.size() - 1) : std::string()));
        return problems;
    }

    // 2. Per-GPU ports: NVLink to the domain's switch, PCIe to the NIC, and the NIC's fabric links.
    gpu_ports_.assign(static_cast<std::size_t>(gpu_count()), GpuPorts{});
    std::vector<int> gpu_of_nic(n, -1);
    for (LinkIndex l = 0; l < links_.size(); ++l) {
        const TopologyLink& link = links_[l];
        const TopologyNode& from = nodes_[link.from];
        const TopologyNode& to = nodes_[link.to];
        if (link.kind == LinkKind::nvlink && from.kind == NodeKind::gpu) gpu_ports_[from.gpu].nvlink_out = l;
        if (link.kind == LinkKind::nvlink && to.kind == NodeKind::gpu) gpu_ports_[to.gpu].nvlink_in = l;
        if (link.kind == LinkKind::pcie && from.kind == NodeKind::gpu && to.kind == NodeKind::nic) {
            gpu_ports_[from.gpu].pcie_out = l;
            gpu_of_nic[link.to] = from.gpu;
        }
        if (link.kind == LinkKind::pcie && to.kind == NodeKind::gpu) gpu_ports_[to.gpu].pcie_in = l;
    }
    for (LinkIndex l = 0; l < links_.size(); ++l) {
        const TopologyLink& link = links_[l];
        if (link.kind != LinkKind::infiniband) continue;
        if (gpu_of_nic[link.from] >= 0) gpu_ports_[gpu_of_nic[link.from]].fabric_out.push_back(l);
        if (gpu_of_nic[link.to] >= 0) gpu_ports_[gpu_of_nic[link.to]].fabric_in.push_back(l);
    }
    for (int g = 0; g < gpu_count(); ++g) {
        const GpuPorts& p = gpu_ports_[g];
        if (shape_.gpus_per_host > 1 && (p.nvlink_out == kNoLink || p.nvlink_in == kNoLink)) {
            problems.push_back(fmt::format("{} has no NVLink to its NVSwitch", nodes_[gpu_nodes_[g]].name));
        }
        if (shape_.hosts > 1 &&
            (p.pcie_out == kNoLink || p.pcie_in == kNoLink || p.fabric_out.empty() || p.fabric_in.empty())) {
            problems.push_back(fmt::format("{} has no NIC on the fabric", nodes_[gpu_nodes_[g]].name));
        }
        if (problems.size() >= kMaxReportedProblems) return problems;
    }
    if (!problems.empty()) return problems;

    // 3. Switch-level shortest paths: hop distances between all leaf and spine switches (Boost BFS on
    //    the switch subgraph, reversed so one search gives every switch's distance *to* a target),
    //    then the equal-cost next hops of every (switch, target) pair, in link-index order.
    switch_id_of_node_.assign(n, -1);
    switch_nodes_.clear();
    for (NodeIndex v = 0; v < n; ++v) {
        if (nodes_[v].kind == NodeKind::leaf_switch || nodes_[v].kind == NodeKind::spine_switch) {
            switch_id_of_node_[v] = static_cast<int>(switch_nodes_.size());
            switch_nodes_.push_back(v);
        }
    }
    switch_count_ = switch_nodes_.size();
    using SwitchGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;
    SwitchGraph switches(switch_count_);
    std::vector<std::vector<LinkIndex>> out_links(switch_count_);
    for (LinkIndex l = 0; l < links_.size(); ++l) {
        const int a = switch_id_of_node_[links_[l].from];
        const int b = switch_id_of_node_[links_[l].to];
        if (a < 0 || b < 0) continue;
        boost::add_edge(static_cast<std::size_t>(a), static_cast<std::size_t>(b), switches);
        out_links[static_cast<std::size_t>(a)].push_back(l);
    }
    switch_distance_.assign(switch_count_ * switch_count_, kUnreachable);
    const auto reversed_switches = boost::make_reverse_graph(switches);
    std::vector<int> hops(switch_count_);
    for (std::size_t target = 0; target < switch_count_; ++target) {
        std::fill(hops.begin(), hops.end(), -1);
        hops[target] = 0;
        boost::breadth_first_search(
            reversed_switches, target,
            boost::visitor(boost::make_bfs_visitor(boost::record_distances(hops.data(), boost::on_tree_edge()))));
        for (std::size_t from = 0; from < switch_count_; ++from) {
            if (hops[from] >= 0)
                switch_distance_[from * switch_count_ + target] = static_cast<std::uint16_t>(hops[from]);
        }
    }
    next_hop_offsets_.assign(switch_count_ * switch_count_ + 1, 0);
    next_hops_.clear();
    for (std::size_t from = 0; from < switch_count_; ++from) {
        for (std::size_t target = 0; target < switch_count_; ++target) {
            next_hop_offsets_[from * switch_count_ + target] = static_cast<std::uint32_t>(next_hops_.size());
            const std::uint16_t d = switch_distance_[from * switch_count_ + target];
            if (d == kUnreachable || d == 0) continue;
            for (const LinkIndex l : out_links[from]) {
                const auto via = static_cast<std::size_t>(switch_id_of_node_[links_[l].to]);
                if (switch_distance_[via * switch_count_ + target] == d - 1) next_hops_.push_back(l);
            }
        }
    }
    next_hop_offsets_.back() = static_cast<std::uint32_t>(next_hops_.size());

    finalized_ = true;
    problems = check_routes();
    if (!problems.empty()) finalized_ = false;
    return problems;
}

// Every pair of hosts must be routable on every rail the policy uses: with NVLink forwarding the
// fabric only carries same-rail traffic, otherwise any rail to any rail.
std::vector<std::string> GraphTopology::check_routes() const {
    std::vector<std::string> problems;
    if (shape_.hosts <= 1) return problems;
    const int rails = shape_.gpus_per_host;
    const bool forwards = shape_.fabric == FabricKind::multi_plane || shape_.cross_rail_over_nvlink;
    std::vector<LinkIndex> path;
    // The first (source GPU, destination GPU) pair between two hosts that the fabric cannot join.
    auto unroutable = [&](int h1, int h2) -> std::optional<std::pair<int, int>> {
        for (int r1 = 0; r1 < rails; ++r1) {
            for (int r2 = 0; r2 < rails; ++r2) {
                if (forwards && r1 != r2) continue;
                path.clear();
                if (!append_fabric_path(gpu_at(h1, r1), gpu_at(h2, r2), 0, path)) {
                    return std::pair{gpu_at(h1, r1), gpu_at(h2, r2)};
                }
            }
        }
        return std::nullopt;
    };
    for (int h1 = 0; h1 < shape_.hosts; ++h1) {
        for (int h2 = 0; h2 < shape_.hosts; ++h2) {
            if (h1 == h2) continue;
            const auto pair = unroutable(h1, h2);
            if (!pair) continue;
            problems.push_back(fmt::format(
                "the fabric has no path from {} to {} (is a fabric missing, or are there no spines to join the "
                "leaves?)",
                nodes_[gpu_nodes_[pair->first]].name, nodes_[gpu_nodes_[pair->second]].name));
            if (problems.size() >= kMaxReportedProblems) return problems;
        }
    }
    return problems;
}

void GraphTopology::check_gpu(int gpu) const {
    if (gpu < 0 || gpu >= gpu_count()) {
        throw std::out_of_range(
            fmt::format("GPU {} is out of range: topology {} has {} GPUs", gpu, shape_.name, gpu_count()));
    }
}

int GraphTopology::hosts_that_hold(int hosts) const {
    // The loader's rule (topology_loader.cpp): more than one leaf's worth of hosts fills whole leaves.
    const int per_leaf = shape_.hosts_per_leaf;
    if (per_leaf <= 0 || hosts <= per_leaf) return hosts;
    return (hosts + per_leaf - 1) / per_leaf * per_leaf;
}

int GraphTopology::host_of(int gpu) const {
    check_gpu(gpu);
    return gpu / shape_.gpus_per_host;
}

int GraphTopology::local_rank(int gpu) const {
    check_gpu(gpu);
    return gpu % shape_.gpus_per_host;
}

int GraphTopology::gpu_at(int host, int rank) const {
    if (host < 0 || host >= shape_.hosts || rank < 0 || rank >= shape_.gpus_per_host) {
        throw std::out_of_range(fmt::format("no GPU at host {}, local rank {} in topology {} ({} hosts of {} GPUs)",
                                            host, rank, shape_.name, shape_.hosts, shape_.gpus_per_host));
    }
    return host * shape_.gpus_per_host + rank;
}

NodeIndex GraphTopology::gpu_node(int gpu) const {
    check_gpu(gpu);
    return gpu_nodes_[static_cast<std::size_t>(gpu)];
}

int GraphTopology::fabric_entry_gpu(int src, int dst) const {
    const int rank_src = src % shape_.gpus_per_host;
    const int rank_dst = dst % shape_.gpus_per_host;
    if (rank_src == rank_dst) return src;
    const bool forwards = shape_.fabric == FabricKind::multi_plane || shape_.cross_rail_over_nvlink;
    return forwards ? src - rank_src + rank_dst : src;
}

bool GraphTopology::append_fabric_path(int a, int b, std::uint64_t flow_hash, std::vector<LinkIndex>& path) const {
    const GpuPorts& from = gpu_ports_[static_cast<std::size_t>(a)];
    const GpuPorts& to = gpu_ports_[static_cast<std::size_t>(b)];
    // The NIC's uplink and the destination NIC's downlink: among the pairs whose leaves are closest,
    // pick one by the flow's hash at the source NIC (one pair for single-ported NICs).
    std::uint16_t best = kUnreachable;
    std::size_t candidates = 0;
    for (const LinkIndex up : from.fabric_out) {
        for (const LinkIndex down : to.fabric_in) {
            const std::uint16_t d = switch_distance(switch_id(links_[up].to), switch_id(links_[down].from));
            if (d < best) {
                best = d;
                candidates = 1;
            } else if (d == best) {
                ++candidates;
            }
        }
    }
    if (best == kUnreachable) return false;
    std::size_t pick = candidates == 1 ? 0 : ecmp_choice(flow_hash, links_[from.pcie_out].to, candidates);
    LinkIndex uplink = kNoLink;
    LinkIndex downlink = kNoLink;
    for (const LinkIndex up : from.fabric_out) {
        for (const LinkIndex down : to.fabric_in) {
            if (switch_distance(switch_id(links_[up].to), switch_id(links_[down].from)) != best) continue;
            if (pick-- == 0) {
                uplink = up;
                downlink = down;
            }
        }
    }
    path.push_back(from.pcie_out);
    path.push_back(uplink);
    const int target = switch_id(links_[downlink].from);
    int at = switch_id(links_[uplink].to);
    while (at != target) {
        const std::size_t cell = static_cast<std::size_t>(at) * switch_count_ + static_cast<std::size_t>(target);
        const std::uint32_t begin = next_hop_offsets_[cell];
        const std::uint32_t count = next_hop_offsets_[cell + 1] - begin;
        const LinkIndex hop = next_hops_[begin + (count == 1 ? 0 : ecmp_choice(flow_hash, switch_nodes_[at], count))];
        path.push_back(hop);
        at = switch_id(links_[hop].to);
    }
    path.push_back(downlink);
    path.push_back(to.pcie_in);
    return true;
}

void GraphTopology::route_into(int src, int dst, std::uint64_t flow_key, std::vector<LinkIndex>& path) const {
    check_gpu(src);
    check_gpu(dst);
    if (!finalized_) throw std::logic_error("GraphTopology::route called before a successful finalize()");
    path.clear();
    if (src == dst) return;
    const int gph = shape_.gpus_per_host;
    const auto& ports = gpu_ports_;
    // Inside one NVLink domain: GPU -> NVSwitch -> GPU.
    if (src / gph == dst / gph) {
        path.push_back(ports[src].nvlink_out);
        path.push_back(ports[dst].nvlink_in);
        return;
    }
    // Across hosts: NVLink to the GPU on the destination's rail if the policy says so, then that GPU's
    // NIC, the fabric, and the destination's NIC.
    const std::uint64_t flow_hash = flow_hash_of(flow_key, src, dst);
    const int entry = fabric_entry_gpu(src, dst);
    if (entry != src) {
        path.push_back(ports[src].nvlink_out);
        path.push_back(ports[entry].nvlink_in);
    }
    if (!append_fabric_path(entry, dst, flow_hash, path)) {
        throw std::logic_error(fmt::format("no route from GPU {} to GPU {} in topology {}", src, dst, shape_.name));
    }
}

std::vector<LinkIndex> GraphTopology::route(int src, int dst, std::uint64_t flow_key) const {
    std::vector<LinkIndex> path;
    path.reserve(10);
    route_into(src, dst, flow_key, path);
    return path;
}

}  // namespace clustersim
