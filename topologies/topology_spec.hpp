// The typed contents of a topology file, read and checked with MapReader (one struct per section).
#pragma once

#include "sim/core/units.hpp"
#include "topologies/topology.hpp"

#include <memory>
#include <string>

namespace clustersim {

class YamlDocument;

// One kind of link: nominal per-direction bandwidth, achievable share, per-hop latency.
struct LinkSpec {
    Bandwidth bandwidth;
    double efficiency = 1.0;
    Time latency;
};

// The InfiniBand fabric that joins the hosts.
struct FabricSpec {
    FabricKind kind = FabricKind::none;
    int hosts_per_leaf = 0;              // downlinks of a leaf switch: one NIC of each of that many hosts
    int spines = 0;                      // rail-optimized: spine switches shared by all rails
    int spines_per_plane = 0;            // multi-plane: spine switches of each plane
    double oversubscription = 1.0;       // leaf downlink capacity / leaf uplink capacity
    bool cross_rail_over_nvlink = true;  // rail-optimized: cross-rail traffic forwarded over NVLink (PXN)
};

enum class TopologyBuilderKind { hgx, nvl72 };

struct TopologyFileSpec {
    std::string name;
    TopologyBuilderKind builder = TopologyBuilderKind::hgx;
    std::string gpu_model;
    int hosts = 1;          // HGX servers, or NVL72 racks
    int gpus_per_host = 8;  // GPUs per NVLink domain
    LinkSpec nvlink;
    LinkSpec pcie;
    LinkSpec infiniband;
    FabricSpec fabric;
};

}  // namespace clustersim
