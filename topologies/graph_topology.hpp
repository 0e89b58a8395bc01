// GraphTopology: the one implementation of Topology, a Boost.Graph of nodes and directed links
// with routing tables precomputed once, so route() costs a few table lookups per hop.
#pragma once

#include "topologies/topology.hpp"

#include <boost/graph/adjacency_list.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace clustersim {

struct LinkSpec;

class GraphTopology final : public Topology {
public:
    struct Shape {
        std::string name;
        std::string gpu_model;
        int hosts = 1;
        int gpus_per_host = 8;
        FabricKind fabric = FabricKind::none;
        // Rail-optimized fabrics only: cross-rail traffic goes over NVLink to the source host's GPU
        // on the destination's rail first (PXN). Multi-plane fabrics always forward this way.
        bool cross_rail_over_nvlink = true;
        int hosts_per_leaf = 0;  // fat trees: hosts under one leaf switch (0: no fabric)
    };
    explicit GraphTopology(Shape shape);

    // ---- building (topology_builder.cpp) ----
    NodeIndex add_node(TopologyNode node);
    LinkIndex add_link(NodeIndex from, NodeIndex to, LinkKind kind, const LinkSpec& spec);
    // A full-duplex cable: two links, one per direction.
    void add_cable(NodeIndex a, NodeIndex b, LinkKind kind, const LinkSpec& spec);
    // Checks that every GPU can reach every other and prepares the routing tables. Returns the
    // problems found (empty when the topology is usable); routing is only valid when it is empty.
    std::vector<std::string> finalize();

    // ---- Topology ----
    const std::string& name() const override { return shape_.name; }
    const std::string& gpu_model() const override { return shape_.gpu_model; }
    int gpu_count() const override { return shape_.hosts * shape_.gpus_per_host; }
    int gpus_per_host() const override { return shape_.gpus_per_host; }
    int host_count() const override { return shape_.hosts; }
    int host_of(int gpu) const override;
    int local_rank(int gpu) const override;
    int gpu_at(int host, int local_rank) const override;

    std::size_t node_count() const override { return nodes_.size(); }
    std::size_t link_count() const override { return links_.size(); }
    const TopologyNode& node(NodeIndex i) const override { return nodes_.at(i); }
    const TopologyLink& link(LinkIndex i) const override { return links_.at(i); }
    NodeIndex gpu_node(int gpu) const override;

    std::vector<LinkIndex> route(int src, int dst, std::uint64_t flow_key = 0) const override;
    void route_into(int src, int dst, std::uint64_t flow_key, std::vector<LinkIndex>& path) const override;
    FabricKind fabric_kind() const override { return shape_.fabric; }
    int hosts_that_hold(int hosts) const override;

private:
    static constexpr LinkIndex kNoLink = ~LinkIndex{0};
    static constexpr std::uint16_t kUnreachable = 0xFFFF;

    // Boost.Graph holds the structure (connectivity and shortest-path checks); our vectors hold the
    // node and link records, indexed the same way (vertex i is node i, edge property is the link).
    using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, boost::no_property, LinkIndex>;

    // Per GPU: its links into and out of the NVLink domain and to and from its NIC, and the NIC's
    // links to and from the fabric (usually one each way; several for multi-ported NICs).
    struct GpuPorts {
        LinkIndex nvlink_out = kNoLink;
        LinkIndex nvlink_in = kNoLink;
        LinkIndex pcie_out = kNoLink;
        LinkIndex pcie_in = kNoLink;
        std::vector<LinkIndex> fabric_out;  // NIC -> leaf
        std::vector<LinkIndex> fabric_in;   // leaf -> NIC
    };

    void check_gpu(int gpu) const;
    int switch_id(NodeIndex n) const { return switch_id_of_node_[n]; }
    std::uint16_t switch_distance(int from, int to) const {
        return switch_distance_[static_cast<std::size_t>(from) * switch_count_ + static_cast<std::size_t>(to)];
    }
    // The GPU whose NIC carries a cross-host transfer from `src` to `dst` (src itself, or the GPU of
    // src's host on dst's rail when the policy forwards over NVLink first).
    int fabric_entry_gpu(int src, int dst) const;
    // Appends NIC(a) -> fabric -> NIC(b), with PCIe at both ends; false if the fabric has no path.
    bool append_fabric_path(int a, int b, std::uint64_t flow_hash, std::vector<LinkIndex>& path) const;
    std::vector<std::string> check_routes() const;

    Shape shape_;
    std::vector<TopologyNode> nodes_;
    std::vector<TopologyLink> links_;
    Graph graph_;
    std::vector<NodeIndex> gpu_nodes_;
    std::vector<GpuPorts> gpu_ports_;

    // Leaf and spine switches, numbered 0..switch_count_-1; hop distances between all pairs and,
    // per (switch, target switch), the links that lie on a shortest path (the ECMP candidates).
    std::vector<int> switch_id_of_node_;
    std::vector<NodeIndex> switch_nodes_;
    std::size_t switch_count_ = 0;
    std::vector<std::uint16_t> switch_distance_;
    std::vector<std::uint32_t> next_hop_offsets_;
    std::vector<LinkIndex> next_hops_;
    bool finalized_ = false;
};

}  // namespace clustersim
