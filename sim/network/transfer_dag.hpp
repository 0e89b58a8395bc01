// TransferDag: a communication pattern as a graph of point-to-point transfers with dependencies,
// and its execution as flows on a FlowNetwork.
//
// Every collective (ring steps, tree chunks, hierarchical phases) and every expert-parallel
// dispatch or combine is built as such a graph: a transfer starts when all the transfers it
// depends on have delivered their last byte.
#pragma once

#include "flow_network.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace clustersim {

using TransferId = std::uint32_t;

struct Transfer {
    int src = 0;
    int dst = 0;
    Bytes bytes;
    std::vector<TransferId> deps;
    std::uint64_t flow_key = 0;          // ECMP choice
    std::vector<LinkIndex> path;         // explicit path; empty means "let the topology route it"
    bool explicit_path = false;
    std::string label;
    std::vector<std::uint32_t> rate_caps;  // TransferDag::add_rate_cap ids whose capacity the flow also shares
};

class TransferDag {
public:
    TransferId add(int src, int dst, Bytes bytes, std::vector<TransferId> deps = {}, std::string label = {});
    TransferId add_on_path(int src, int dst, Bytes bytes, std::vector<LinkIndex> path, std::vector<TransferId> deps,
                           std::string label = {});
    // A zero-byte, zero-latency marker that completes when all `deps` have: a barrier.
    TransferId join(int gpu, std::vector<TransferId> deps, std::string label = {});
    // A rate limit that transfers can share: when the graph runs, a virtual link of `capacity` on the
    // paths of the transfers given it (apply_rate_cap), so max-min sharing divides it like a link. For
    // limits that are not in the topology, such as the copy rate of the SMs that move a GPU's data.
    std::uint32_t add_rate_cap(Bandwidth capacity, std::string name = {});
    void apply_rate_cap(TransferId id, std::uint32_t cap);
    const std::vector<Bandwidth>& rate_caps() const { return rate_caps_; }
    const std::vector<std::string>& rate_cap_names() const { return rate_cap_names_; }
    const std::vector<Transfer>& transfers() const { return transfers_; }
    std::vector<Transfer>& transfers() { return transfers_; }
    std::size_t size() const { return transfers_.size(); }
    Bytes total_bytes() const;

private:
    std::vector<Transfer> transfers_;
    std::vector<Bandwidth> rate_caps_;
    std::vector<std::string> rate_cap_names_;
};

// Runs a TransferDag on the network; `on_done` runs when the last transfer has delivered. The
// graph's rate caps become virtual links of the network when the execution is made.
class DagExecution {
public:
    DagExecution(FlowNetwork& network, const TransferDag& dag);
    void start(std::function<void()> on_done = {});

    bool finished() const { return remaining_ == 0; }
    Time started_at() const { return started_at_; }
    Time finished_at() const { return finished_at_; }
    Time transfer_start(TransferId id) const { return starts_[id]; }
    Time transfer_end(TransferId id) const { return ends_[id]; }

private:
    void launch(TransferId id);
    void complete(TransferId id);

    FlowNetwork& network_;
    const TransferDag& dag_;
    std::vector<std::vector<TransferId>> dependents_;
    std::vector<std::uint32_t> waiting_on_;
    std::vector<Time> starts_;
    std::vector<Time> ends_;
    std::vector<LinkIndex> cap_links_;  // the virtual link of each rate cap
    std::vector<LinkIndex> path_scratch_;
    std::size_t remaining_ = 0;
    Time started_at_;
    Time finished_at_;
    std::function<void()> on_done_;
};

}  // namespace clustersim
