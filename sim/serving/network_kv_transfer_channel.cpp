// KV transfers as flows on the network model (see network_kv_transfer_channel.hpp).
#include "sim/serving/network_kv_transfer_channel.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace clustersim {

std::vector<KvEndpoint> place_consecutively(const std::vector<int>& gpus, const std::vector<int>& attn_dp) {
    if (gpus.size() != attn_dp.size()) throw std::invalid_argument("one attention DP size per instance");
    std::vector<KvEndpoint> out;
    int next = 0;
    for (std::size_t i = 0; i < gpus.size(); ++i) {
        if (attn_dp[i] < 1 || gpus[i] % attn_dp[i] != 0)
            throw std::invalid_argument(
                fmt::format("instance {}: {} GPUs do not split into {} attention DP groups", i, gpus[i], attn_dp[i]));
        out.push_back({next, attn_dp[i], gpus[i] / attn_dp[i]});
        next += gpus[i];
    }
    return out;
}

NetworkKvTransferChannel::NetworkKvTransferChannel(Simulator& sim, const Topology& topology,
                                                   std::vector<KvEndpoint> instances)
    : network_(sim, topology), instances_(std::move(instances)) {
    for (std::size_t i = 0; i < instances_.size(); ++i) {
        const KvEndpoint& e = instances_[i];
        if (e.first_gpu < 0 || e.first_gpu + e.attn_dp * e.attn_tp > topology.gpu_count())
            throw std::invalid_argument(fmt::format("instance {} (GPUs {} to {}) is not on the topology's {} GPUs", i,
                                                    e.first_gpu, e.first_gpu + e.attn_dp * e.attn_tp - 1,
                                                    topology.gpu_count()));
    }
}

Time NetworkKvTransferChannel::start(const KvTransfer& transfer, std::function<void()> done) {
    if (transfer.from_instance < 0 || transfer.from_instance >= static_cast<int>(instances_.size()) ||
        transfer.to_instance < 0 || transfer.to_instance >= static_cast<int>(instances_.size()))
        throw std::logic_error(
            fmt::format("KV transfer of request {} between instances {} and {}: the network "
                        "channel needs both placed",
                        transfer.request, transfer.from_instance, transfer.to_instance));
    const KvEndpoint& from = instances_[static_cast<std::size_t>(transfer.from_instance)];
    const KvEndpoint& to = instances_[static_cast<std::size_t>(transfer.to_instance)];
    const auto id = static_cast<std::uint64_t>(transfer.request);
    const int src_group =
        from.first_gpu + static_cast<int>(id % static_cast<std::uint64_t>(from.attn_dp)) * from.attn_tp;
    const int dst_group = to.first_gpu + static_cast<int>(id % static_cast<std::uint64_t>(to.attn_dp)) * to.attn_tp;
    int slot;
    if (!free_pending_.empty()) {
        slot = free_pending_.back();
        free_pending_.pop_back();
    } else {
        slot = static_cast<int>(pending_.size());
        pending_.emplace_back();
    }
    pending_[static_cast<std::size_t>(slot)] = {to.attn_tp, std::move(done)};
    const Bytes share = transfer.bytes / static_cast<double>(to.attn_tp);
    for (int k = 0; k < to.attn_tp; ++k)
        network_.start(
            src_group + k % from.attn_tp, dst_group + k, share, [this, slot] { flow_done(slot); }, id);
    return network_.simulator().now();
}

void NetworkKvTransferChannel::flow_done(int slot) {
    Pending& p = pending_[static_cast<std::size_t>(slot)];
    if (--p.flows_left > 0) return;
    std::function<void()> done = std::move(p.done);
    p.done = nullptr;
    free_pending_.push_back(slot);
    done();
}

std::pair<std::string, double> NetworkKvTransferChannel::busiest_link(Time until) const {
    const Topology& t = network_.topology();
    std::pair<std::string, double> best{"", 0.0};
    if (!(until > Time::zero())) return best;
    for (LinkIndex l = 0; l < t.link_count(); ++l) {
        const double capacity = t.link(l).effective_bandwidth().bytes_per_second();
        const double utilization = network_.link_bytes(l).bytes() / (capacity * until.seconds());
        if (utilization > best.second) best = {t.link(l).name, utilization};
    }
    return best;
}

}  // namespace clustersim
