// The event loop, the radix-heap event queue and cancellation.
#include "simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace clustersim {

Simulator::~Simulator() {
    for (std::size_t i = now_head_; i < now_queue_.size(); ++i) now_queue_[i].callback.destroy();
    for (auto& bucket : buckets_)
        for (auto& entry : bucket) entry.callback.destroy();
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
    if (diff == 0) return kNowQueue;
    const int level = (63 - std::countl_zero(diff)) / kDigitBits;
    const auto digit =
        static_cast<int>((static_cast<std::uint64_t>(time_ps) >> (kDigitBits * level)) & (kDigits - 1));
    return level * kDigits + digit;
}

void Simulator::set_occupied(int bucket, bool occupied) {
    const int level = bucket / kDigits;
    const int digit = bucket % kDigits;
    std::uint64_t& word = occupied_[level];
    const std::uint64_t bit = std::uint64_t{1} << digit;
    word = occupied ? (word | bit) : (word & ~bit);
    occupied_levels_ = word != 0 ? (occupied_levels_ | (1u << level)) : (occupied_levels_ & ~(1u << level));
}

void Simulator::push(const QueueEntry& entry, int bucket) {
    if (bucket == kNowQueue) {
        now_queue_.push_back(entry);
        return;
    }
    auto& target = buckets_[bucket];
    if (target.empty()) {
        set_occupied(bucket, true);
        bucket_min_ps_[bucket] = entry.time_ps;
    } else if (entry.time_ps < bucket_min_ps_[bucket]) {
        bucket_min_ps_[bucket] = entry.time_ps;
    }
    target.push_back(entry);
}

int Simulator::first_bucket() const {
    if (occupied_levels_ == 0) return -1;
    const int level = std::countr_zero(occupied_levels_);
    return level * kDigits + std::countr_zero(occupied_[level]);
}

bool Simulator::refill(std::int64_t limit_ps) {
    if (now_head_ < now_queue_.size()) return last_ps_ <= limit_ps;
    now_queue_.clear();
    now_head_ = 0;
    const int b = first_bucket();
    if (b < 0) return false;
    const std::int64_t earliest = bucket_min_ps_[b];
    if (earliest > limit_ps) return false;
    // Relative to the new reference time every entry of bucket b belongs in a lower level.
    last_ps_ = earliest;
    Bucket& source = buckets_[static_cast<std::size_t>(b)];
    set_occupied(b, false);
    for (const QueueEntry& e : source) push(e, bucket_for(e.time_ps, earliest));
    source.clear();
    return true;
}

void Simulator::run_until(Time limit) {
    stopped_ = false;
    while (!stopped_ && refill(limit.ps())) {
        QueueEntry& top = now_queue_[now_head_++];
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
        // Copy out first: the callback may schedule events, which can reallocate the now-queue.
        EventCallback callback = top.callback;
        callback.invoke_and_destroy();
    }
    // Cancelled entries taken out may have moved the reference time past now_. Advancing the clock
    // to the limit (or to the reference time) keeps every later schedule_at valid for the queue.
    if (!stopped_ && limit != Time::max() && limit > now_) now_ = limit;
    if (last_ps_ > now_.ps()) now_ = Time::from_ps(last_ps_);
}

void Simulator::drop_cancelled_entries() {
    // Keeps the surviving entries of `bucket` from `begin` on, in order; returns how many.
    const auto compact = [this](Bucket& bucket, std::size_t begin) {
        std::size_t kept = begin;
        for (std::size_t i = begin; i < bucket.size(); ++i) {
            if (cancelled_.contains(bucket[i].seq)) {
                bucket[i].callback.destroy();
            } else {
                bucket[kept++] = bucket[i];
            }
        }
        bucket.resize(kept);
        return kept - begin;
    };
    queued_entries_ = compact(now_queue_, now_head_);
    for (int b = 0; b < kBuckets; ++b) {
        auto& bucket = buckets_[b];
        if (bucket.empty()) continue;
        queued_entries_ += compact(bucket, 0);
        if (bucket.empty()) {
            set_occupied(b, false);
        } else {
            bucket_min_ps_[b] = bucket.front().time_ps;
            for (const QueueEntry& e : bucket) bucket_min_ps_[b] = std::min(bucket_min_ps_[b], e.time_ps);
        }
    }
    cancelled_.clear();
}

}  // namespace clustersim
