// Topology: a cluster as a graph of GPUs, NVSwitch domains, NICs and switches joined by directed
// links, with routing between GPUs. The flow-level network (sim/network) runs on top of it.
//
// Links are directed: a full-duplex cable is two links, one per direction, each with the
// per-direction bandwidth. Every link carries its kind, nominal bandwidth, achievable-bandwidth
// efficiency (documented in the topology file with its source) and per-hop latency.
#pragma once

#include "sim/core/units.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clustersim {

class Diagnostics;

enum class NodeKind { gpu, nvswitch, nic, leaf_switch, spine_switch };
enum class LinkKind { nvlink, pcie, infiniband };

const char* to_string(NodeKind kind);
const char* to_string(LinkKind kind);

using NodeIndex = std::uint32_t;
using LinkIndex = std::uint32_t;

struct TopologyNode {
    NodeKind kind;
    std::string name;  // unique, e.g. "host3/gpu5", "host3/nic5", "plane2/leaf1", "spine4"
    int gpu = -1;      // global GPU index for GPUs, else -1
    int host = -1;     // server (or NVL72 compute tray domain) index for GPUs, NICs and NVSwitches, else -1
    int rail = -1;     // local rank / rail / plane for GPUs and NICs, else -1
};

struct TopologyLink {
    NodeIndex from;
    NodeIndex to;
    LinkKind kind;
    Bandwidth bandwidth;  // nominal, per direction
    double efficiency;    // achievable share of `bandwidth` in (0, 1]
    Time latency;         // per hop
    std::string name;     // "host0/gpu1->host0/nvswitch"
    Bandwidth effective_bandwidth() const { return bandwidth * efficiency; }
};

class Topology {
public:
    virtual ~Topology() = default;

    virtual const std::string& name() const = 0;
    virtual const std::string& gpu_model() const = 0;  // "H800", "H100", "GB200", ...
    virtual int gpu_count() const = 0;
    virtual int gpus_per_host() const = 0;  // GPUs per NVLink domain (8 for HGX, 72 for NVL72)
    virtual int host_count() const = 0;
    virtual int host_of(int gpu) const = 0;
    virtual int local_rank(int gpu) const = 0;
    virtual int gpu_at(int host, int local_rank) const = 0;

    virtual std::size_t node_count() const = 0;
    virtual std::size_t link_count() const = 0;
    virtual const TopologyNode& node(NodeIndex i) const = 0;
    virtual const TopologyLink& link(LinkIndex i) const = 0;
    virtual NodeIndex gpu_node(int gpu) const = 0;

    // The directed links from GPU `src` to GPU `dst` (empty when src == dst). Among equal-cost
    // paths the choice is deterministic in `flow_key` (ECMP): the same key always takes the same
    // path, different keys spread over the paths. Within a host the path is NVLink only; across
    // hosts on a rail-optimized fabric it stays on the source GPU's rail where it can.
    virtual std::vector<LinkIndex> route(int src, int dst, std::uint64_t flow_key = 0) const = 0;
};

// Loads a topology file (YAML, units mandatory). Problems go to `diagnostics` with file, line and
// key path; the result is null when the file has errors.
std::shared_ptr<const Topology> load_topology(const std::string& path, Diagnostics& diagnostics);

}  // namespace clustersim
