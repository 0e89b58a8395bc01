// The event loop, the radix-heap event queue and cancellation.
#include "simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace clustersim {

Simulator::~Simulator() {
    for (int b = 0; b < kBuckets; ++b) {
        auto& bucket = buckets_[b];
        for (std::size_t i = (b == 0 ? bucket0_head_ : 0); i < bucket.size(); ++i) bucket[i].callback.destroy();
    }
}

EventId Simulator::schedule_at(Time at, Callback callback) {
    if (at < now_) {
        callback.destroy();
        throw SimulationError(fmt::format("cannot schedule an event at {}, before the current simulated time {}",
                                          to_string(at), to_string(now_)));
    }
    const std::uint64_t seq = next_seq_++;
    push({at.ps(), seq, callback}, bucket_for(at.ps(), last_ps_));
    ++queued_entries_;
    return {at.ps(), seq};
}

bool Simulator::is_pending(EventId id) const {
    if (!id.valid() || id.seq >= next_seq_) return false;
    // Events run in increasing (time, sequence) order, so one at or before the last event run has run.
    const bool ran = id.time_ps < now_.ps() || (id.time_ps == now_.ps() && id.seq <= last_run_seq_);
    return !ran && !cancelled_.contains(id.seq);
}

bool Simulator::cancel(EventId id) {
    if (!is_pending(id)) return false;
    cancelled_.insert(id.seq);
    if (cancelled_.size() > 1024 && cancelled_.size() * 2 > queued_entries_) drop_cancelled_entries();
    return true;
}

int Simulator::bucket_for(std::int64_t time_ps, std::int64_t last_ps) {
    const auto diff = static_cast<std::uint64_t>(time_ps ^ last_ps);
    return diff == 0 ? 0 : 64 - std::countl_zero(diff);
}

bool Simulator::refill(std::int64_t limit_ps) {
    if (bucket0_head_ < buckets_[0].size()) return last_ps_ <= limit_ps;
    buckets_[0].clear();
    bucket0_head_ = 0;
    int b = 1;
    while (b < kBuckets && buckets_[b].empty()) ++b;
    if (b == kBuckets) return false;
    std::vector<QueueEntry>& source = buckets_[b];
    const std::int64_t earliest = bucket_min_ps_[b];
    if (earliest > limit_ps) return false;
    // Relative to the new reference time every entry of `source` belongs in a lower bucket.
    last_ps_ = earliest;
    for (const QueueEntry& e : source) push(e, bucket_for(e.time_ps, earliest));
    source.clear();
    return true;
}

void Simulator::run_until(Time limit) {
    stopped_ = false;
    while (!stopped_ && refill(limit.ps())) {
        QueueEntry& top = buckets_[0][bucket0_head_++];
        --queued_entries_;
        if (!cancelled_.empty() && cancelled_.erase(top.seq) != 0) {
            top.callback.destroy();
            continue;
        }
        if (top.time_ps < now_.ps()) {
            throw SimulationError(fmt::format("simulated time would move backwards from {} to {}", to_string(now_),
                                              to_string(Time::from_ps(top.time_ps))));
        }
        now_ = Time::from_ps(top.time_ps);
        last_run_seq_ = top.seq;
        ++executed_;
        if (on_event_.has_subscribers()) on_event_.emit(ExecutedEvent{now_, top.seq});
        // Copy out first: the callback may schedule events, which can reallocate bucket 0.
        EventCallback callback = top.callback;
        callback.invoke_and_destroy();
    }
    // Cancelled entries taken out may have moved the reference time past now_. Advancing the clock
    // to the limit (or to the reference time) keeps every later schedule_at valid for the queue.
    if (!stopped_ && limit != Time::max() && limit > now_) now_ = limit;
    if (last_ps_ > now_.ps()) now_ = Time::from_ps(last_ps_);
}

void Simulator::drop_cancelled_entries() {
    queued_entries_ = 0;
    for (int b = 0; b < kBuckets; ++b) {
        auto& bucket = buckets_[b];
        const std::size_t begin = (b == 0 ? bucket0_head_ : 0);
        std::size_t kept = begin;
        for (std::size_t i = begin; i < bucket.size(); ++i) {
            if (cancelled_.contains(bucket[i].seq)) {
                bucket[i].callback.destroy();
            } else {
                bucket[kept++] = bucket[i];  // stable: keeps insertion order
            }
        }
        bucket.resize(kept);
        queued_entries_ += kept - begin;
        if (b > 0 && !bucket.empty()) {
            bucket_min_ps_[b] = bucket.front().time_ps;
            for (const QueueEntry& e : bucket) bucket_min_ps_[b] = std::min(bucket_min_ps_[b], e.time_ps);
        }
    }
    cancelled_.clear();
}

}  // namespace clustersim
