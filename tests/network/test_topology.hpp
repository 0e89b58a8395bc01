// A hand-made topology for network tests: GPUs joined by explicit directed links, routed forward
// around a ring, so closed-form answers are easy to write down.
#pragma once

#include "topologies/topology.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace clustersim::testing {

class RingTopology : public Topology {
public:
    // `gpus` GPUs in a ring, GPU i -> i+1 by one link of `bandwidth` and `latency` (efficiency 1).
    // With `gpus_per_host` > 0, hosts are consecutive groups of that many GPUs.
    RingTopology(int gpus, Bandwidth bandwidth, Time latency, int gpus_per_host = 0)
        : gpus_(gpus), per_host_(gpus_per_host > 0 ? gpus_per_host : gpus) {
        for (int g = 0; g < gpus; ++g) {
            nodes_.push_back({NodeKind::gpu, fmt::format("gpu{}", g), g, g / per_host_, g % per_host_});
        }
        for (int g = 0; g < gpus; ++g) {
            links_.push_back({static_cast<NodeIndex>(g), static_cast<NodeIndex>((g + 1) % gpus), LinkKind::nvlink,
                              bandwidth, 1.0, latency, fmt::format("gpu{}->gpu{}", g, (g + 1) % gpus)});
        }
    }
    // Adds a directed link (for hand-built path tests); returns its index.
    LinkIndex add_link(int from, int to, Bandwidth bandwidth, Time latency = Time::zero()) {
        links_.push_back({static_cast<NodeIndex>(from), static_cast<NodeIndex>(to), LinkKind::infiniband, bandwidth,
                          1.0, latency, fmt::format("extra{}", links_.size())});
        return static_cast<LinkIndex>(links_.size() - 1);
    }

    const std::string& name() const override { return name_; }
    const std::string& gpu_model() const override { return model_; }
    int gpu_count() const override { return gpus_; }
    int gpus_per_host() const override { return per_host_; }
    int host_count() const override { return gpus_ / per_host_; }
    int host_of(int gpu) const override { return gpu / per_host_; }
    int local_rank(int gpu) const override { return gpu % per_host_; }
    int gpu_at(int host, int rank) const override { return host * per_host_ + rank; }
    std::size_t node_count() const override { return nodes_.size(); }
    std::size_t link_count() const override { return links_.size(); }
    const TopologyNode& node(NodeIndex i) const override { return nodes_.at(i); }
    const TopologyLink& link(LinkIndex i) const override { return links_.at(i); }
    NodeIndex gpu_node(int gpu) const override { return static_cast<NodeIndex>(gpu); }
    std::vector<LinkIndex> route(int src, int dst, std::uint64_t) const override {
        std::vector<LinkIndex> path;
        for (int g = src; g != dst; g = (g + 1) % gpus_) path.push_back(static_cast<LinkIndex>(g));
        return path;
    }

private:
    int gpus_;
    int per_host_;
    std::string name_ = "test-ring";
    std::string model_ = "test";
    std::vector<TopologyNode> nodes_;
    std::vector<TopologyLink> links_;
};

}  // namespace clustersim::testing
