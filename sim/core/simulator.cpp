// The event loop, the 4-ary event heap and cancellation.
#include "simulator.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace clustersim {

namespace {
constexpr std::size_t kArity = 4;
}

EventId Simulator::schedule_at(Time at, Callback callback) {
    if (at < now_) {
        throw SimulationError(fmt::format("cannot schedule an event at {}, before the current simulated time {}",
                                          to_string(at), to_string(now_)));
    }
    std::uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    const std::uint64_t seq = next_seq_++;
    slots_[slot].seq = seq;
    slots_[slot].callback = std::move(callback);
    push({at.ps(), seq, slot});
    ++live_events_;
    return {slot, seq};
}

bool Simulator::is_pending(EventId id) const {
    return id.valid() && id.slot < slots_.size() && slots_[id.slot].seq == id.seq;
}

bool Simulator::cancel(EventId id) {
    if (!is_pending(id)) return false;
    Slot& s = slots_[id.slot];
    s.seq = 0;
    s.callback = nullptr;
    free_slots_.push_back(id.slot);
    --live_events_;
    ++stale_entries_;
    // Many cancellations would leave the heap mostly dead entries; rebuild it when they dominate.
    if (stale_entries_ > 1024 && stale_entries_ * 2 > heap_.size()) drop_stale_entries();
    return true;
}

void Simulator::run_until(Time limit) {
    stopped_ = false;
    while (!heap_.empty() && !stopped_) {
        const QueueEntry top = heap_.front();
        if (top.time_ps > limit.ps()) break;
        pop();
        Slot& s = slots_[top.slot];
        if (s.seq != top.seq) {  // cancelled; its slot may already hold a newer event
            --stale_entries_;
            continue;
        }
        if (top.time_ps < now_.ps()) {
            throw SimulationError(fmt::format("simulated time would move backwards from {} to {}", to_string(now_),
                                              to_string(Time::from_ps(top.time_ps))));
        }
        now_ = Time::from_ps(top.time_ps);
        Callback callback = std::move(s.callback);
        s.seq = 0;
        s.callback = nullptr;
        free_slots_.push_back(top.slot);
        --live_events_;
        ++executed_;
        if (on_event_.has_subscribers()) on_event_.emit(ExecutedEvent{now_, top.seq});
        callback();
    }
}

void Simulator::push(const QueueEntry& e) {
    std::size_t i = heap_.size();
    heap_.push_back(e);
    while (i > 0) {
        const std::size_t parent = (i - 1) / kArity;
        if (!earlier(e, heap_[parent])) break;
        heap_[i] = heap_[parent];
        i = parent;
    }
    heap_[i] = e;
}

void Simulator::pop() {
    const QueueEntry last = heap_.back();
    heap_.pop_back();
    if (heap_.empty()) return;
    heap_[0] = last;
    sift_down(0);
}

void Simulator::sift_down(std::size_t i) {
    const QueueEntry e = heap_[i];
    const std::size_t n = heap_.size();
    while (true) {
        const std::size_t first = i * kArity + 1;
        if (first >= n) break;
        const std::size_t last = std::min(first + kArity, n);
        std::size_t best = first;
        for (std::size_t c = first + 1; c < last; ++c)
            if (earlier(heap_[c], heap_[best])) best = c;
        if (!earlier(heap_[best], e)) break;
        heap_[i] = heap_[best];
        i = best;
    }
    heap_[i] = e;
}

void Simulator::drop_stale_entries() {
    std::erase_if(heap_, [this](const QueueEntry& e) { return slots_[e.slot].seq != e.seq; });
    stale_entries_ = 0;
    if (heap_.size() < 2) return;
    for (std::size_t i = (heap_.size() - 2) / kArity + 1; i-- > 0;) sift_down(i);
}

}  // namespace clustersim
