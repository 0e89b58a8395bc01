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
};

class TransferDag {
public:
    TransferId add(int src, int dst, Bytes bytes, std::vector<TransferId> deps = {}, std::string label = {});
    TransferId add_on_path(int src, int dst, Bytes bytes, std::vector<LinkIndex> path, std::vector<TransferId> deps,
                           std::string label = {});
    // A zero-byte, zero-latency marker that completes when all `deps` have: a barrier.
    TransferId join(int gpu, std::vector<TransferId> deps, std::string label = {});
    const std::vector<Transfer>& transfers() const { return transfers_; }
    std::vector<Transfer>& transfers() { return transfers_; }
    std::size_t size() const { return transfers_.size(); }
    Bytes total_bytes() const;

private:
    std::vector<Transfer> transfers_;
};

// Runs a TransferDag on the network; `on_done` runs when the last transfer has delivered.
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
    std::size_t remaining_ = 0;
    Time started_at_;
    Time finished_at_;
    std::function<void()> on_done_;
};

}  // namespace clustersim
