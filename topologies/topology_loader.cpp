// Reading a topology file into a TopologyFileSpec, building the graph for its kind, and loading.
#include "topologies/graph_topology.hpp"
#include "topologies/topology.hpp"
#include "topologies/topology_spec.hpp"

#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace clustersim {
namespace {

Check<double> efficiency_range() {
    return [](const double& v) -> std::optional<std::string> {
        if (!(v > 0.0 && v <= 1.0)) return std::string("expected an efficiency in (0, 1]");
        return std::nullopt;
    };
}

Check<Time> non_negative_time() {
    return [](const Time& t) -> std::optional<std::string> {
        if (t < Time::zero()) return std::string("expected a non-negative time");
        return std::nullopt;
    };
}

LinkSpec read_link(MapReader& links, std::string_view key, std::string_view meaning, bool required) {
    MapReader r = links.child(key, meaning, required);
    LinkSpec spec;
    spec.bandwidth = r.required<Bandwidth>("bandwidth", "nominal bandwidth per direction", positive<Bandwidth>());
    spec.efficiency = r.optional<double>("efficiency", 1.0, "achievable share of the nominal bandwidth, in (0, 1]",
                                         efficiency_range());
    spec.latency = r.required<Time>("latency", "latency of one hop over this link", non_negative_time());
    r.finish();
    return spec;
}

// Reads the file's fields; errors go to the document's diagnostics.
TopologyFileSpec read_spec(MapReader& root, const TopologyOverrides& overrides) {
    Diagnostics& diagnostics = root.document()->diagnostics();
    TopologyFileSpec spec;
    spec.name = root.required<std::string>("name", "the topology's name");
    const std::string kind = root.choice("kind", {"hgx", "nvl72"}, std::nullopt, "which builder makes the topology");
    spec.builder = kind == "nvl72" ? TopologyBuilderKind::nvl72 : TopologyBuilderKind::hgx;
    spec.gpu_model = root.required<std::string>("gpu_model", "the GPU, e.g. H800 (names the GPU profile)");
    if (spec.builder == TopologyBuilderKind::hgx) {
        spec.hosts = root.required<int>("hosts", "number of 8-GPU servers", at_least(1));
        spec.gpus_per_host =
            root.optional<int>("gpus_per_host", 8, "GPUs per server, all on one NVSwitch", at_least(1));
    } else {
        spec.hosts = root.optional<int>("racks", 1, "number of NVL72 racks (NVLink domains)", at_least(1));
        spec.gpus_per_host =
            root.optional<int>("gpus_per_rack", 72, "GPUs per rack, all in one NVLink domain", at_least(1));
    }
    if (overrides.hosts) {
        if (*overrides.hosts < 1) {
            diagnostics.error({overrides.hosts_file, overrides.hosts_line, overrides.hosts_column},
                              overrides.hosts_key_path,
                              fmt::format("expected a value of at least 1; found {}", *overrides.hosts));
        } else {
            spec.hosts = *overrides.hosts;
            root.resolved()[spec.builder == TopologyBuilderKind::hgx ? "hosts" : "racks"] = spec.hosts;
        }
    }

    MapReader fabric = root.child("fabric", "the InfiniBand fabric joining the hosts", false);
    const std::string fabric_kind =
        fabric.choice("kind", {"none", "rail-optimized", "multi-plane"}, std::string("none"), "the fabric's shape");
    spec.fabric.kind = fabric_kind == "rail-optimized" ? FabricKind::rail_optimized
                       : fabric_kind == "multi-plane"  ? FabricKind::multi_plane
                                                       : FabricKind::none;
    const bool has_fabric = spec.fabric.kind != FabricKind::none;
    if (has_fabric) {
        spec.fabric.hosts_per_leaf =
            fabric.required<int>("hosts_per_leaf", "hosts under one leaf switch (its downlinks per rail)", at_least(1));
        spec.fabric.oversubscription = fabric.optional<double>(
            "oversubscription", 1.0, "leaf downlink capacity over leaf uplink capacity (2 for 2:1)", at_least(1.0));
        if (spec.fabric.kind == FabricKind::rail_optimized) {
            spec.fabric.spines = fabric.required<int>("spines", "spine switches shared by all rails", at_least(0));
            spec.fabric.cross_rail_over_nvlink =
                fabric.choice("cross_rail", {"nvlink-forwarding", "fabric"}, std::string("nvlink-forwarding"),
                              "how traffic between different rails travels") == "nvlink-forwarding";
        } else {
            spec.fabric.spines_per_plane =
                fabric.required<int>("spines_per_plane", "spine switches of each plane", at_least(0));
        }
    }
    fabric.finish();

    MapReader links = root.child("links", "bandwidth, efficiency and latency per kind of link");
    spec.nvlink = read_link(links, "nvlink", "GPU <-> NVSwitch, per GPU and direction", true);
    if (has_fabric) {
        spec.pcie = read_link(links, "pcie", "GPU <-> NIC", true);
        spec.infiniband = read_link(links, "infiniband", "NIC <-> leaf and leaf <-> spine", true);
    }
    links.finish();
    root.finish();

    // Counts that must agree with each other (only when the fields themselves were fine).
    if (has_fabric && spec.fabric.hosts_per_leaf >= 1 && spec.fabric.oversubscription >= 1.0) {
        const int per_leaf = spec.fabric.hosts_per_leaf;
        if (spec.hosts > per_leaf && spec.hosts % per_leaf != 0) {
            fabric.error("hosts_per_leaf",
                         fmt::format("the {} hosts do not fill whole leaves of {} hosts; use a host count that is "
                                     "a multiple of hosts_per_leaf (or at most one leaf's worth)",
                                     spec.hosts, per_leaf));
        }
        const double uplinks = per_leaf / spec.fabric.oversubscription;
        const double whole = std::round(uplinks);
        if (std::abs(uplinks - whole) > 1e-9) {
            fabric.error("oversubscription",
                         fmt::format("hosts_per_leaf / oversubscription = {} / {} = {} uplinks per leaf; expected a "
                                     "whole number",
                                     per_leaf, spec.fabric.oversubscription, uplinks));
        } else {
            const int spines =
                spec.fabric.kind == FabricKind::rail_optimized ? spec.fabric.spines : spec.fabric.spines_per_plane;
            const char* key = spec.fabric.kind == FabricKind::rail_optimized ? "spines" : "spines_per_plane";
            if (spines > 0 && static_cast<int>(whole) % spines != 0) {
                fabric.error(key, fmt::format("each leaf's {} uplinks do not divide evenly over {} spines; expected a "
                                              "divisor of {}",
                                              static_cast<int>(whole), spines, static_cast<int>(whole)));
            }
        }
    }
    return spec;
}

// ---- builders ------------------------------------------------------------------------------------

// One NVLink domain per host: `gpus_per_host` GPUs, each with one link each way to the domain's
// logical NVSwitch (the NVSwitch chips of an HGX board, or of an NVL72 rack, act as one crossbar).
// With a fabric, one NIC per GPU, joined to it by PCIe.
void build_hosts(GraphTopology& topology, const TopologyFileSpec& spec, const char* host_word,
                 std::vector<NodeIndex>& nics) {
    const bool has_fabric = spec.fabric.kind != FabricKind::none;
    for (int h = 0; h < spec.hosts; ++h) {
        const NodeIndex nvswitch =
            topology.add_node({NodeKind::nvswitch, fmt::format("{}{}/nvswitch", host_word, h), -1, h, -1});
        for (int r = 0; r < spec.gpus_per_host; ++r) {
            const int gpu = h * spec.gpus_per_host + r;
            const NodeIndex g =
                topology.add_node({NodeKind::gpu, fmt::format("{}{}/gpu{}", host_word, h, r), gpu, h, r});
            topology.add_cable(g, nvswitch, LinkKind::nvlink, spec.nvlink);
            if (has_fabric) {
                const NodeIndex nic =
                    topology.add_node({NodeKind::nic, fmt::format("{}{}/nic{}", host_word, h, r), -1, h, r});
                topology.add_cable(g, nic, LinkKind::pcie, spec.pcie);
                nics.push_back(nic);
            }
        }
    }
}

// Two-tier fat tree per rail group. Rail-optimized: rail r's NICs go to rail r's leaves, and every
// leaf goes to every spine (shared by all rails). Multi-plane: the same, but each rail is its own
// plane with its own spines, so planes share no switch (DeepSeek, arXiv 2505.09343, section 5.1).
// Each leaf has hosts_per_leaf / oversubscription uplink cables of the InfiniBand bandwidth,
// spread evenly over the spines it connects to (parallel cables are separate ECMP choices).
void build_fat_tree(GraphTopology& topology, const TopologyFileSpec& spec, const std::vector<NodeIndex>& nics) {
    const FabricSpec& f = spec.fabric;
    const int rails = spec.gpus_per_host;
    const int leaves_per_rail = (spec.hosts + f.hosts_per_leaf - 1) / f.hosts_per_leaf;
    const int uplinks = static_cast<int>(std::lround(f.hosts_per_leaf / f.oversubscription));
    const bool planes = f.kind == FabricKind::multi_plane;
    const int spines_per_group = planes ? f.spines_per_plane : f.spines;
    const int cables_per_spine = spines_per_group > 0 ? uplinks / spines_per_group : 0;

    std::vector<NodeIndex> shared_spines;
    if (!planes) {
        for (int s = 0; s < f.spines; ++s) {
            shared_spines.push_back(topology.add_node({NodeKind::spine_switch, fmt::format("spine{}", s), -1, -1, -1}));
        }
    }
    for (int r = 0; r < rails; ++r) {
        const std::string group = fmt::format("{}{}", planes ? "plane" : "rail", r);
        std::vector<NodeIndex> spines = shared_spines;
        if (planes) {
            for (int s = 0; s < f.spines_per_plane; ++s) {
                spines.push_back(
                    topology.add_node({NodeKind::spine_switch, fmt::format("{}/spine{}", group, s), -1, -1, r}));
            }
        }
        for (int l = 0; l < leaves_per_rail; ++l) {
            const NodeIndex leaf =
                topology.add_node({NodeKind::leaf_switch, fmt::format("{}/leaf{}", group, l), -1, -1, r});
            const int first_host = l * f.hosts_per_leaf;
            const int end_host = std::min(spec.hosts, first_host + f.hosts_per_leaf);
            for (int h = first_host; h < end_host; ++h) {
                topology.add_cable(nics[static_cast<std::size_t>(h * rails + r)], leaf, LinkKind::infiniband,
                                   spec.infiniband);
            }
            for (const NodeIndex spine : spines) {
                for (int c = 0; c < cables_per_spine; ++c)
                    topology.add_cable(leaf, spine, LinkKind::infiniband, spec.infiniband);
            }
        }
    }
}

std::unique_ptr<GraphTopology> build(const TopologyFileSpec& spec) {
    GraphTopology::Shape shape{spec.name,
                               spec.gpu_model,
                               spec.hosts,
                               spec.gpus_per_host,
                               spec.fabric.kind,
                               spec.fabric.cross_rail_over_nvlink,
                               spec.fabric.kind == FabricKind::none ? 0 : spec.fabric.hosts_per_leaf};
    auto topology = std::make_unique<GraphTopology>(std::move(shape));
    std::vector<NodeIndex> nics;
    build_hosts(*topology, spec, spec.builder == TopologyBuilderKind::nvl72 ? "rack" : "host", nics);
    if (spec.fabric.kind != FabricKind::none) build_fat_tree(*topology, spec, nics);
    return topology;
}

std::shared_ptr<const Topology> load_document(const std::shared_ptr<YamlDocument>& doc, Diagnostics& diagnostics,
                                              const TopologyOverrides& overrides) {
    const std::size_t errors_before = diagnostics.size();
    if (!doc->parsed()) return nullptr;
    MapReader root = MapReader::root(doc);
    const TopologyFileSpec spec = read_spec(root, overrides);
    if (diagnostics.size() != errors_before) return nullptr;
    std::unique_ptr<GraphTopology> topology = build(spec);
    const std::vector<std::string> problems = topology->finalize();
    for (const std::string& problem : problems) {
        if (spec.fabric.kind != FabricKind::none) {
            root.error("fabric", problem);
        } else {
            root.error(spec.builder == TopologyBuilderKind::hgx ? "hosts" : "racks", problem);
        }
    }
    if (!problems.empty()) return nullptr;
    return topology;
}

}  // namespace

std::shared_ptr<const Topology> load_topology(const std::string& path, Diagnostics& diagnostics) {
    return load_topology(path, diagnostics, TopologyOverrides{});
}

std::shared_ptr<const Topology> load_topology(const std::string& path, Diagnostics& diagnostics,
                                              const TopologyOverrides& overrides) {
    const std::size_t errors_before = diagnostics.size();
    auto doc = YamlDocument::load_file(path, diagnostics);
    if (diagnostics.size() != errors_before) return nullptr;
    return load_document(doc, diagnostics, overrides);
}

std::shared_ptr<const Topology> load_topology_from_string(const std::string& text, const std::string& name,
                                                          Diagnostics& diagnostics,
                                                          const TopologyOverrides& overrides) {
    const std::size_t errors_before = diagnostics.size();
    auto doc = YamlDocument::load_string(text, name, diagnostics);
    if (diagnostics.size() != errors_before) return nullptr;
    return load_document(doc, diagnostics, overrides);
}

std::shared_ptr<const Topology> load_topology(const TopologySpec& spec, Diagnostics& diagnostics) {
    return load_topology(spec.resolved_file.empty() ? spec.file : spec.resolved_file, diagnostics, spec.overrides);
}

namespace {

// The file a scenario's topology name refers to, "" if there is none: a path as given (a relative one taken
// from the folder of the file that names it, so a scenario works from any working directory), or a bare
// name such as "h800-ib-rail" among the shipped topologies/*.yaml.
std::string resolve_topology_file(const MapReader& parent, const std::string& file) {
    namespace fs = std::filesystem;
    if (fs::path(file).is_absolute()) return fs::exists(file) ? file : std::string();
    const fs::path beside = fs::path(parent.document()->file()).parent_path() / file;
    if (fs::exists(beside)) return beside.string();
    const fs::path shipped = fs::path(CLUSTERSIM_SOURCE_DIR) / "topologies" / (file + ".yaml");
    return file.find('/') == std::string::npos && fs::exists(shipped) ? shipped.string() : std::string();
}

std::string missing_topology_message(const std::string& file) {
    namespace fs = std::filesystem;
    std::vector<std::string> shipped;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path(CLUSTERSIM_SOURCE_DIR) / "topologies", ec))
        if (entry.path().extension() == ".yaml") shipped.push_back(entry.path().stem().string());
    std::sort(shipped.begin(), shipped.end());
    std::string message = fmt::format(
        "no topology file \"{}\" (a path is taken from the scenario's folder, a bare name from the shipped "
        "topologies/*.yaml)",
        file);
    const std::string stem = fs::path(file).stem().string();
    if (const std::string close = closest_match(stem, shipped); !close.empty())
        message += fmt::format("; did you mean \"{}\"?", close);
    return message;
}

}  // namespace

TopologySpec read_topology_spec(MapReader& parent, std::string_view key) {
    TopologySpec spec;
    const YAML::Node& map = parent.node();
    const YAML::Node value = map[std::string(key)];
    if (value.IsDefined() && value.IsScalar()) {
        spec.file = parent.required<std::string>(key, "topology file (topologies/*.yaml)");
        spec.resolved_file = spec.file.empty() ? std::string() : resolve_topology_file(parent, spec.file);
        if (!spec.file.empty() && spec.resolved_file.empty()) parent.error(key, missing_topology_message(spec.file));
    } else {
        MapReader r = parent.child(key, "the cluster topology: {file: ..., hosts: ...}");
        spec.file = r.required<std::string>("file", "topology file (topologies/*.yaml)");
        spec.resolved_file = spec.file.empty() ? std::string() : resolve_topology_file(parent, spec.file);
        if (!spec.file.empty() && spec.resolved_file.empty()) r.error("file", missing_topology_message(spec.file));
        spec.overrides.hosts =
            r.maybe<int>("hosts", "number of hosts (NVL72: racks) instead of the file's", at_least(1));
        if (spec.overrides.hosts) {
            const YAML::Node& inner = r.node();
            const YAML::Mark mark = inner["hosts"].Mark();
            spec.overrides.hosts_file = parent.document()->file();
            spec.overrides.hosts_line = mark.is_null() ? 0 : mark.line + 1;
            spec.overrides.hosts_column = mark.is_null() ? 0 : mark.column + 1;
            spec.overrides.hosts_key_path = r.path() + ".hosts";
        }
        r.finish();
    }
    // A file found nowhere was reported above and is not loaded (resolved_file stays empty).
    return spec;
}

}  // namespace clustersim
