// KvTransferChannel: how a request's KV cache moves from a prefill instance to a decode instance
// (the interface the serving simulator asks), and FifoKvTransferChannel, one FIFO link per decode
// instance. The flow-level implementation on the network model is NetworkKvTransferChannel
// (network_kv_transfer_channel.hpp, in the scenario layer, which may depend on the network).
#pragma once

#include "sim/core/simulator.hpp"
#include "sim/core/units.hpp"

#include <cstdint>
#include <functional>
#include <vector>

namespace clustersim {

// One KV transfer. Instances are the serving simulator's indices (the pools' instances in order).
struct KvTransfer {
    std::int64_t request = 0;  // the request's id
    int from_instance = -1;    // the prefill instance; -1 when the sender is not simulated (a decode pool alone)
    int to_instance = 0;       // the decode instance
    std::int64_t tokens = 0;   // tokens whose KV moves
    Bytes bytes;               // all of it, summed over the receiving ranks
};

class KvTransferChannel {
public:
    virtual ~KvTransferChannel() = default;
    // Called when the decode instance has reserved the request's blocks: starts moving the KV and
    // returns when its bytes start to move (now, or later behind earlier transfers); `done` runs
    // when the last byte has arrived.
    virtual Time start(const KvTransfer& transfer, std::function<void()> done) = 0;
};

// Each decode instance's inbound link is a FIFO server of `bandwidth` (all its receiving NICs
// together): a transfer starts when the ones before it have left the link and arrives `latency`
// after its last byte was sent. Transfers into different decode instances never contend. A transfer
// that would end past the simulator's time range throws TimeRangeError (sim/serving/workload.hpp).
class FifoKvTransferChannel : public KvTransferChannel {
public:
    FifoKvTransferChannel(Simulator& sim, Bandwidth bandwidth, Time latency);
    Time start(const KvTransfer& transfer, std::function<void()> done) override;

private:
    Simulator& sim_;
    Bandwidth bandwidth_;
    Time latency_;
    std::vector<Time> link_free_at_;  // by decode instance, grown on demand
};

}  // namespace clustersim
