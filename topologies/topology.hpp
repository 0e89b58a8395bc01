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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clustersim {

class Diagnostics;
class MapReader;

enum class NodeKind { gpu, nvswitch, nic, leaf_switch, spine_switch };
enum class LinkKind { nvlink, pcie, infiniband };
// How the hosts are joined (topologies/README.md, "Graph model"): not at all (one NVLink domain),
// a rail-optimized two-tier fat tree, or DeepSeek's multi-plane fat tree (one plane per rail).
enum class FabricKind { none, rail_optimized, multi_plane };

const char* to_string(NodeKind kind);
const char* to_string(LinkKind kind);
const char* to_string(FabricKind kind);

using NodeIndex = std::uint32_t;
using LinkIndex = std::uint32_t;

struct TopologyNode {
    NodeKind kind;
    std::string name;  // unique, e.g. "host3/gpu5", "host3/nic5", "plane2/leaf1", "spine4"
    int gpu = -1;      // global GPU index for GPUs, else -1
    int host = -1;     // server (or NVL72 compute tray domain) index for GPUs, NICs and NVSwitches, else -1
    int rail = -1;     // local rank / rail / plane for GPUs, NICs and leaves (and a plane's spines), else -1
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

    // ---- additions (non-pure, so other implementations of Topology keep compiling) ----

    // The fabric that joins the hosts.
    virtual FabricKind fabric_kind() const { return FabricKind::none; }
    // The fewest hosts, at least `hosts`, that this topology's file builds with when its host count is
    // overridden (TopologyOverrides::hosts): a fat tree of several leaves fills whole leaves.
    virtual int hosts_that_hold(int hosts) const { return hosts; }
    // Same as route(), but appends to `path` (cleared first) so a hot loop can reuse one buffer.
    virtual void route_into(int src, int dst, std::uint64_t flow_key, std::vector<LinkIndex>& path) const {
        path = route(src, dst, flow_key);
    }
};

// Sum of the per-hop latencies of `path`.
Time path_latency(const Topology& topology, const std::vector<LinkIndex>& path);
// The smallest effective (nominal x efficiency) bandwidth along `path`; zero for an empty path.
Bandwidth path_bottleneck(const Topology& topology, const std::vector<LinkIndex>& path);

// Overrides a scenario may apply to a shipped topology file (see topologies/README.md).
struct TopologyOverrides {
    // Number of hosts (HGX servers, or NVL72 racks) instead of the file's `hosts` / `racks`.
    std::optional<int> hosts;
    // Where the override was written, so errors it causes point at the scenario, not the topology.
    std::string hosts_file;
    int hosts_line = 0;
    int hosts_column = 0;
    std::string hosts_key_path;
};

// A reference to a topology from a scenario: `topology: path.yaml` or
// `topology: {file: path.yaml, hosts: 2}`.
struct TopologySpec {
    std::string file;           // as written; resolved by load_topology(const TopologySpec&, ...)
    std::string resolved_file;  // the path actually opened (see read_topology_spec)
    TopologyOverrides overrides;
};

// Reads the topology reference under `key` of a scenario mapping (a string, or a mapping with
// `file` and optional `hosts`). A relative `file` is taken from the directory of the scenario
// file; a bare name (no '/') not found there is a shipped topology, topologies/<name>.yaml.
TopologySpec read_topology_spec(MapReader& parent, std::string_view key);

// Loads a topology file (YAML, units mandatory). Problems go to `diagnostics` with file, line and
// key path; the result is null when the file has errors.
std::shared_ptr<const Topology> load_topology(const std::string& path, Diagnostics& diagnostics);
// The same, with a scenario's overrides applied before the topology is built and validated.
std::shared_ptr<const Topology> load_topology(const std::string& path, Diagnostics& diagnostics,
                                              const TopologyOverrides& overrides);
std::shared_ptr<const Topology> load_topology(const TopologySpec& spec, Diagnostics& diagnostics);
// Loads from YAML text (`name` stands for the file name in diagnostics); for tests and tools.
std::shared_ptr<const Topology> load_topology_from_string(const std::string& text, const std::string& name,
                                                          Diagnostics& diagnostics,
                                                          const TopologyOverrides& overrides = {});

}  // namespace clustersim
