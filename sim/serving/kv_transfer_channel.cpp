// The FIFO KV transfer channel (see kv_transfer_channel.hpp).
#include "sim/serving/kv_transfer_channel.hpp"

#include <algorithm>
#include <stdexcept>

namespace clustersim {

FifoKvTransferChannel::FifoKvTransferChannel(Simulator& sim, Bandwidth bandwidth, Time latency)
    : sim_(sim), bandwidth_(bandwidth), latency_(latency) {
    if (!(bandwidth > Bandwidth{})) throw std::invalid_argument("a FIFO KV transfer link needs a positive bandwidth");
}

Time FifoKvTransferChannel::start(const KvTransfer& transfer, std::function<void()> done) {
    const auto link = static_cast<std::size_t>(transfer.to_instance);
    if (link >= link_free_at_.size()) link_free_at_.resize(link + 1);
    const Time start = std::max(sim_.now(), link_free_at_[link]);
    const Time wire = transfer.bytes / bandwidth_;
    link_free_at_[link] = start + wire;
    sim_.schedule_at(start + wire + latency_, std::move(done));
    return start;
}

}  // namespace clustersim
