// The FIFO KV transfer channel (see kv_transfer_channel.hpp).
#include "sim/serving/kv_transfer_channel.hpp"

#include "sim/serving/workload.hpp"

#include <fmt/format.h>

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
    // In seconds first: a slow link behind a long queue could end past the simulator's time range.
    const double wire_s = transfer.bytes.bytes() / bandwidth_.bytes_per_second();
    const double end_s = start.seconds() + wire_s + latency_.seconds();
    if (!(end_s < kMaxSimulatedSeconds))
        throw TimeRangeError(
            "deployment.kv_transfer.bandwidth",
            fmt::format("the KV transfer of request {} ({} at {}, {} behind earlier transfers into the same decode "
                        "instance) would end at {}, past the simulator's time range (about 106 days): raise the "
                        "bandwidth",
                        transfer.request, to_string(transfer.bytes), to_string(bandwidth_),
                        to_string(start - sim_.now()), days_text(end_s)));
    const Time wire = transfer.bytes / bandwidth_;
    link_free_at_[link] = start + wire;
    sim_.schedule_at(start + wire + latency_, std::move(done));
    return start;
}

}  // namespace clustersim
