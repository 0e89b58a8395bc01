// Building transfer graphs and running them as flows.
#include "transfer_dag.hpp"

#include <stdexcept>

namespace clustersim {

TransferId TransferDag::add(int src, int dst, Bytes bytes, std::vector<TransferId> deps, std::string label) {
    for (TransferId d : deps)
        if (d >= transfers_.size()) throw std::logic_error("TransferDag: a transfer depends on one not yet added");
    Transfer t;
    t.src = src;
    t.dst = dst;
    t.bytes = bytes;
    t.deps = std::move(deps);
    t.flow_key = transfers_.size();
    t.label = std::move(label);
    transfers_.push_back(std::move(t));
    return static_cast<TransferId>(transfers_.size() - 1);
}

TransferId TransferDag::add_on_path(int src, int dst, Bytes bytes, std::vector<LinkIndex> path,
                                    std::vector<TransferId> deps, std::string label) {
    const TransferId id = add(src, dst, bytes, std::move(deps), std::move(label));
    transfers_[id].path = std::move(path);
    transfers_[id].explicit_path = true;
    return id;
}

TransferId TransferDag::join(int gpu, std::vector<TransferId> deps, std::string label) {
    return add_on_path(gpu, gpu, Bytes(0), {}, std::move(deps), std::move(label));
}

std::uint32_t TransferDag::add_rate_cap(Bandwidth capacity, std::string name) {
    if (!(capacity.bytes_per_second() > 0)) throw std::invalid_argument("TransferDag: a rate cap needs a positive capacity");
    rate_caps_.push_back(capacity);
    rate_cap_names_.push_back(std::move(name));
    return static_cast<std::uint32_t>(rate_caps_.size() - 1);
}

void TransferDag::apply_rate_cap(TransferId id, std::uint32_t cap) {
    if (id >= transfers_.size() || cap >= rate_caps_.size()) throw std::logic_error("TransferDag: no such transfer or rate cap");
    transfers_[id].rate_caps.push_back(cap);
}

Bytes TransferDag::total_bytes() const {
    Bytes total;
    for (const auto& t : transfers_) total += t.bytes;
    return total;
}

DagExecution::DagExecution(FlowNetwork& network, const TransferDag& dag)
    : network_(network),
      dag_(dag),
      dependents_(dag.size()),
      waiting_on_(dag.size()),
      starts_(dag.size()),
      ends_(dag.size()),
      remaining_(dag.size()) {
    for (Bandwidth capacity : dag.rate_caps()) cap_links_.push_back(network.add_virtual_link(capacity));
    for (TransferId id = 0; id < dag.size(); ++id) {
        const auto& deps = dag.transfers()[id].deps;
        waiting_on_[id] = static_cast<std::uint32_t>(deps.size());
        for (TransferId d : deps) dependents_[d].push_back(id);
    }
}

void DagExecution::start(std::function<void()> on_done) {
    on_done_ = std::move(on_done);
    started_at_ = network_.simulator().now();
    finished_at_ = started_at_;
    if (dag_.size() == 0) {
        if (on_done_) on_done_();
        return;
    }
    for (TransferId id = 0; id < dag_.size(); ++id)
        if (waiting_on_[id] == 0) launch(id);
}

void DagExecution::launch(TransferId id) {
    const Transfer& t = dag_.transfers()[id];
    starts_[id] = network_.simulator().now();
    auto done = [this, id] { complete(id); };
    if (!t.rate_caps.empty() && t.bytes.value() > 0) {
        // The flow's route, then the virtual links of its caps.
        path_scratch_.clear();
        if (t.explicit_path) {
            path_scratch_ = t.path;
        } else if (t.src != t.dst) {
            network_.topology().route_into(t.src, t.dst, t.flow_key, path_scratch_);
        }
        for (std::uint32_t cap : t.rate_caps) path_scratch_.push_back(cap_links_[cap]);
        network_.start_on_path(t.src, t.dst, path_scratch_, t.bytes, done, t.label);
    } else if (t.explicit_path) {
        network_.start_on_path(t.src, t.dst, t.path, t.bytes, done, t.label);
    } else {
        network_.start(t.src, t.dst, t.bytes, done, t.flow_key, t.label);
    }
}

void DagExecution::complete(TransferId id) {
    ends_[id] = network_.simulator().now();
    finished_at_ = std::max(finished_at_, ends_[id]);
    for (TransferId next : dependents_[id])
        if (--waiting_on_[next] == 0) launch(next);
    if (--remaining_ == 0 && on_done_) on_done_();
}

}  // namespace clustersim
