// Simulator: the discrete-event engine every model runs on.
//
// One object per run, no globals. Events are ordered by (time, insertion sequence), so ties are
// broken the same way on every machine and every run. Cancellation is O(1). Simulated time never
// moves backwards; scheduling into the past throws, in release builds too.
#pragma once

#include "block_pool.hpp"
#include "event_callback.hpp"
#include "rng_stream.hpp"
#include "signal.hpp"
#include "units.hpp"

#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace clustersim {

// Raised for misuse of the engine (an event in the past, time running backwards).
class SimulationError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// A handle to a scheduled event, for cancelling it. Default-constructed handles refer to nothing.
struct EventId {
    std::int64_t time_ps = 0;
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
    using Callback = EventCallback;

    explicit Simulator(std::uint64_t seed = 0) : seed_(seed) {}
    ~Simulator();
    Simulator(const Simulator&) = delete;
    Simulator& operator=(const Simulator&) = delete;

    Time now() const { return now_; }
    std::uint64_t seed() const { return seed_; }

    // Schedules `callback` at absolute time `at` (>= now()).
    EventId schedule_at(Time at, Callback callback);
    // Schedules `callback` after `delay` (>= 0).
    EventId schedule_in(Time delay, Callback callback) { return schedule_at(now_ + delay, callback); }
    // Cancels a pending event; returns false if it already ran or was cancelled.
    bool cancel(EventId id);
    bool is_pending(EventId id) const;

    // Runs events until none are left or stop() is called.
    void run() { run_until(Time::max()); }
    // Runs events with time <= limit, then moves the clock to `limit` (unless stopped early).
    void run_until(Time limit);
    // Makes run() return after the current event.
    void stop() { stopped_ = true; }

    std::size_t pending_events() const { return queued_entries_ - cancelled_.size(); }
    std::uint64_t executed_events() const { return executed_; }

    // A deterministic random stream for the named component, derived from the run seed.
    RngStream rng_stream(std::string_view component) const { return RngStream(seed_, component); }

    // Hook: emitted before each event's callback runs.
    Signal<const ExecutedEvent&>& on_event() { return on_event_; }

private:
    // A queue entry holds time, sequence number and the callback itself (48 bytes), so taking an
    // event out reads memory that the queue just scanned in order.
    struct QueueEntry {
        std::int64_t time_ps;
        std::uint64_t seq;
        EventCallback callback;
    };

    // The event queue is a radix heap (Ahuja, Mehlhorn, Orlin and Tarjan, J. ACM 1990) with
    // 4-bit digits, which fits a simulator because no event is ever scheduled before the last
    // one taken out. `now_queue_` holds the entries at exactly `last_ps_`, taken out first-in
    // first-out. Any other entry sits in bucket (level, digit): `level` is the highest digit in
    // which its time differs from `last_ps_`, `digit` its own value of that digit. Buckets in
    // (level, digit) order hold ever later times, so the first non-empty one (found through
    // bitmaps) holds the earliest entry; when it is emptied into the levels below, relative to
    // its earliest time, every other entry stays where it is. An entry therefore moves at most
    // sixteen times (a few, for delays up to microseconds), and only by sequential appends, which is far kinder to the cache than a binary
    // heap. Every bucket stays in insertion order (appends come in sequence order, and a bucket is
    // refilled from a higher one only while empty), so ties come out in insertion order without
    // comparing sequence numbers.
    static constexpr int kDigitBits = 4;
    static constexpr int kLevels = 64 / kDigitBits;
    static constexpr int kDigits = 1 << kDigitBits;
    static constexpr int kBuckets = kLevels * kDigits;
    static constexpr int kNowQueue = -1;
    // The bucket for `time_ps` relative to `last_ps` (time_ps >= last_ps), or kNowQueue.
    static int bucket_for(std::int64_t time_ps, std::int64_t last_ps);
    void push(const QueueEntry& entry, int bucket);
    // The first non-empty bucket, or -1.
    int first_bucket() const;
    // Makes the now-queue hold the earliest entries if the earliest time is <= limit_ps; false if
    // the queue is empty or its earliest entry is later than limit_ps.
    bool refill(std::int64_t limit_ps);
    // Removes cancelled entries from the buckets, when they have come to dominate the queue.
    void drop_cancelled_entries();
    void set_occupied(int bucket, bool occupied);

    using Bucket = std::vector<QueueEntry, PoolAllocator<QueueEntry>>;
    BlockPool pool_;  // declared first: destroyed after the buckets that hold its blocks
    Bucket now_queue_{PoolAllocator<QueueEntry>(&pool_)};
    std::size_t now_head_ = 0;  // entries of now_queue_ before this index were taken out
    std::vector<Bucket> buckets_ = std::vector<Bucket>(kBuckets, Bucket(PoolAllocator<QueueEntry>(&pool_)));
    std::int64_t bucket_min_ps_[kBuckets];           // earliest time in each non-empty bucket
    std::uint64_t occupied_[kLevels] = {};  // non-empty buckets, one bit per digit
    std::uint32_t occupied_levels_ = 0;                    // levels with a non-empty bucket
    std::int64_t last_ps_ = 0;        // the time of the entries in now_queue_; never above now_
    std::size_t queued_entries_ = 0;  // entries in all buckets, cancelled ones included
    // Sequence numbers of cancelled events still in the queue. Only looked up, never iterated,
    // so its hash order cannot leak into results.
    std::unordered_set<std::uint64_t> cancelled_;
    std::uint64_t last_run_seq_ = 0;  // the event that ran last; with now_, the execution frontier
    std::uint64_t next_seq_ = 1;
    std::uint64_t executed_ = 0;
    std::uint64_t seed_;
    Time now_ = Time::zero();
    bool stopped_ = false;
    Signal<const ExecutedEvent&> on_event_;
};

}  // namespace clustersim
