// Simulator: the discrete-event engine every model runs on.
//
// One object per run, no globals. Events are ordered by (time, insertion sequence), so ties are
// broken the same way on every machine and every run. Cancellation is O(1): the event's slot is
// freed at once and its stale queue entry is skipped when it surfaces. Simulated time never moves
// backwards; scheduling into the past throws, in release builds too.
#pragma once

#include "rng_stream.hpp"
#include "signal.hpp"
#include "units.hpp"

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace clustersim {

// Raised for misuse of the engine (an event in the past, time running backwards).
class SimulationError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// A handle to a scheduled event, for cancelling it. Default-constructed handles refer to nothing.
struct EventId {
    std::uint32_t slot = 0;
    std::uint64_t seq = 0;  // 0 means "no event"
    bool valid() const { return seq != 0; }
};

// What observers learn about each event as it runs.
struct ExecutedEvent {
    Time time;
    std::uint64_t seq;
};

class Simulator {
public:
    using Callback = std::function<void()>;

    explicit Simulator(std::uint64_t seed = 0) : seed_(seed) {}
    Simulator(const Simulator&) = delete;
    Simulator& operator=(const Simulator&) = delete;

    Time now() const { return now_; }
    std::uint64_t seed() const { return seed_; }

    // Schedules `callback` at absolute time `at` (>= now()).
    EventId schedule_at(Time at, Callback callback);
    // Schedules `callback` after `delay` (>= 0).
    EventId schedule_in(Time delay, Callback callback) { return schedule_at(now_ + delay, std::move(callback)); }
    // Cancels a pending event; returns false if it already ran or was cancelled.
    bool cancel(EventId id);
    bool is_pending(EventId id) const;

    // Runs events until none are left or stop() is called.
    void run() { run_until(Time::max()); }
    // Runs events with time <= limit; afterwards now() is the time of the last event run.
    void run_until(Time limit);
    // Makes run() return after the current event.
    void stop() { stopped_ = true; }

    std::size_t pending_events() const { return live_events_; }
    std::uint64_t executed_events() const { return executed_; }

    // A deterministic random stream for the named component, derived from the run seed.
    RngStream rng_stream(std::string_view component) const { return RngStream(seed_, component); }

    // Hook: emitted before each event's callback runs.
    Signal<const ExecutedEvent&>& on_event() { return on_event_; }

private:
    struct QueueEntry {
        std::int64_t time_ps;
        std::uint64_t seq;
        std::uint32_t slot;
    };
    struct Slot {
        std::uint64_t seq = 0;  // the sequence number of the event occupying the slot, 0 if free
        Callback callback;
    };

    static bool earlier(const QueueEntry& a, const QueueEntry& b) {
        return a.time_ps < b.time_ps || (a.time_ps == b.time_ps && a.seq < b.seq);
    }
    void push(const QueueEntry& e);
    void pop();
    void sift_down(std::size_t i);
    void drop_stale_entries();

    // A 4-ary min-heap: shallower than a binary heap and its children share a cache line.
    std::vector<QueueEntry> heap_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    std::size_t live_events_ = 0;
    std::size_t stale_entries_ = 0;
    std::uint64_t next_seq_ = 1;
    std::uint64_t executed_ = 0;
    std::uint64_t seed_;
    Time now_ = Time::zero();
    bool stopped_ = false;
    Signal<const ExecutedEvent&> on_event_;
};

}  // namespace clustersim
