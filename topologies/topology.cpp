// Names of the topology enums and the path helpers shared by every Topology.
#include "topologies/topology.hpp"

#include <algorithm>

namespace clustersim {

const char* to_string(NodeKind kind) {
    switch (kind) {
        case NodeKind::gpu:
            return "gpu";
        case NodeKind::nvswitch:
            return "nvswitch";
        case NodeKind::nic:
            return "nic";
        case NodeKind::leaf_switch:
            return "leaf_switch";
        case NodeKind::spine_switch:
            return "spine_switch";
    }
    return "?";
}

const char* to_string(LinkKind kind) {
    switch (kind) {
        case LinkKind::nvlink:
            return "nvlink";
        case LinkKind::pcie:
            return "pcie";
        case LinkKind::infiniband:
            return "infiniband";
    }
    return "?";
}

const char* to_string(FabricKind kind) {
    switch (kind) {
        case FabricKind::none:
            return "none";
        case FabricKind::rail_optimized:
            return "rail-optimized";
        case FabricKind::multi_plane:
            return "multi-plane";
    }
    return "?";
}

Time path_latency(const Topology& topology, const std::vector<LinkIndex>& path) {
    Time total = Time::zero();
    for (const LinkIndex l : path) total += topology.link(l).latency;
    return total;
}

Bandwidth path_bottleneck(const Topology& topology, const std::vector<LinkIndex>& path) {
    if (path.empty()) return Bandwidth{};
    Bandwidth least = topology.link(path.front()).effective_bandwidth();
    for (const LinkIndex l : path) least = std::min(least, topology.link(l).effective_bandwidth());
    return least;
}

}  // namespace clustersim
