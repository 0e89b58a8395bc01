// Event-engine benchmarks: the classic hold model, and scheduling with cancellation.
//
// Hold model (Vaucher and Duval, 1975; the standard priority-queue benchmark for simulators): the
// queue holds N pending events; each step pops the earliest and schedules one at a random later
// time, so the queue size stays N. The figure of merit is events per second at N = 100,000.
#include "sim/core/simulator.hpp"

#include <benchmark/benchmark.h>

using namespace clustersim;

namespace {

// The increment distributions of the classic hold-model studies (Jones, CACM 1986): uniform on
// [0, 2 us] and exponential with mean 1 us. Both have mean 1 us.
enum class Increment { uniform, exponential };

std::int64_t draw_increment_ps(RngStream& rng, Increment kind) {
    if (kind == Increment::uniform) return static_cast<std::int64_t>(rng.uniform_int(2'000'000));
    return static_cast<std::int64_t>(rng.exponential(1e6));
}

// Each event reschedules itself at now + a random increment.
struct HoldEvent {
    Simulator* sim;
    RngStream* rng;
    Increment kind;
    void operator()() const { sim->schedule_in(Time::from_ps(draw_increment_ps(*rng, kind)), *this); }
};

template <Increment kind>
void BM_HoldModel(benchmark::State& state) {
    const auto pending = static_cast<std::size_t>(state.range(0));
    Simulator sim(1);
    RngStream rng = sim.rng_stream("hold");
    for (std::size_t i = 0; i < pending; ++i)
        sim.schedule_at(Time::from_ps(draw_increment_ps(rng, kind)), HoldEvent{&sim, &rng, kind});
    // Run every pending event about 50 times before timing, so the queue's buckets have reached
    // their steady-state sizes (a steady state is what the hold model measures).
    sim.run_until(sim.now() + Time::from_us(50));
    constexpr std::uint64_t kBatch = 100000;
    for (auto _ : state) {
        const std::uint64_t target = sim.executed_events() + kBatch;
        while (sim.executed_events() < target) sim.run_until(sim.now() + Time::from_us(1));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
    state.counters["pending"] = static_cast<double>(sim.pending_events());
}
BENCHMARK_TEMPLATE(BM_HoldModel, Increment::uniform)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_HoldModel, Increment::exponential)->Arg(100000)->Unit(benchmark::kMillisecond);

// Schedule then cancel half: the cost of cancellation and of skipping stale entries.
void BM_ScheduleAndCancel(benchmark::State& state) {
    Simulator sim(1);
    RngStream rng = sim.rng_stream("cancel");
    constexpr int kEvents = 100000;
    std::vector<EventId> ids(kEvents);
    for (auto _ : state) {
        for (int i = 0; i < kEvents; ++i)
            ids[static_cast<std::size_t>(i)] =
                sim.schedule_in(Time::from_ps(static_cast<std::int64_t>(rng.uniform_int(1000000))), [] {});
        for (int i = 0; i < kEvents; i += 2) sim.cancel(ids[static_cast<std::size_t>(i)]);
        sim.run();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kEvents);
}
BENCHMARK(BM_ScheduleAndCancel)->Unit(benchmark::kMillisecond);

}  // namespace
