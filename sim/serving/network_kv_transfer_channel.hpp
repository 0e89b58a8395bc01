// NetworkKvTransferChannel: KV transfers as flows on the flow-level network model (FlowNetwork over
// the scenario's topology), so that transfers share NICs, leaf and spine links max-min fairly.
//
// Instances sit on consecutive GPUs of the topology, in the serving simulator's order (prefill pool,
// then decode pool). A request's KV lives on one attention-DP group of the prefill instance and goes
// to one group of the decode instance, both chosen as request id modulo the instance's DP groups.
// Rank k of the decode group (attention TP ranks) receives its share, bytes / attn_tp (MLA: each rank
// holds a full copy, which the bytes already count), from rank k modulo the prefill group's TP ranks:
// one flow per receiving rank, routed with the request id as the ECMP key. The transfer is done when
// all its flows are (the network adds the per-hop latencies).
#pragma once

#include "sim/network/flow_network.hpp"
#include "sim/serving/kv_transfer_channel.hpp"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace clustersim {

// Where one instance sits: GPUs first_gpu .. first_gpu + attn_dp x attn_tp - 1, DP group g on
// first_gpu + g x attn_tp and the attn_tp GPUs after it.
struct KvEndpoint {
    int first_gpu = 0;
    int attn_dp = 1;
    int attn_tp = 1;
};

// Places instances of `gpus` GPUs each, in order, on consecutive GPUs from GPU 0.
std::vector<KvEndpoint> place_consecutively(const std::vector<int>& gpus, const std::vector<int>& attn_dp);

class NetworkKvTransferChannel : public KvTransferChannel {
public:
    // `instances` by the serving simulator's instance index; the topology must hold them all.
    NetworkKvTransferChannel(Simulator& sim, const Topology& topology, std::vector<KvEndpoint> instances);
    Time start(const KvTransfer& transfer, std::function<void()> done) override;

    const FlowNetwork& network() const { return network_; }
    // The topology link that carried the most bytes for its capacity, and its mean utilization over
    // [0, until] (bytes / (capacity x until)); {"", 0} when no byte moved.
    std::pair<std::string, double> busiest_link(Time until) const;

private:
    struct Pending {
        int flows_left = 0;
        std::function<void()> done;
    };
    void flow_done(int pending);

    FlowNetwork network_;
    std::vector<KvEndpoint> instances_;
    std::vector<Pending> pending_;  // transfers in flight, in reused slots
    std::vector<int> free_pending_;
};

}  // namespace clustersim
