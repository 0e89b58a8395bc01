// Network-model benchmarks: max-min rate recomputation under load, and a full DeepEP EP64 dispatch
// (8 H800 hosts, 4,096 tokens per GPU, top-8 of 256 experts) as the network scenario runs it.
#include "sim/input/diagnostics.hpp"
#include "sim/network/expert_dispatch.hpp"

#include <benchmark/benchmark.h>

#include <functional>
#include <stdexcept>

using namespace clustersim;

namespace {

std::shared_ptr<const Topology> h800_hosts(int hosts) {
    Diagnostics diagnostics;
    TopologyOverrides overrides;
    overrides.hosts = hosts;
    auto topology = load_topology(std::string(CLUSTERSIM_SOURCE_DIR) + "/topologies/h800-ib-rail.yaml", diagnostics,
                                  overrides);
    diagnostics.throw_if_any();
    return topology;
}

// N long random flows among the GPUs of `hosts` hosts stay active; each iteration starts one short
// flow and runs until it has ended: two rate recomputations (its start and its end) over all N + 1
// flows.
void max_min_recompute(benchmark::State& state, int hosts) {
    const auto topology = h800_hosts(hosts);
    const int gpus = topology->gpu_count();
    Simulator sim(1);
    FlowNetwork network(sim, *topology);
    RngStream rng = sim.rng_stream("flows");
    auto random_flow = [&](Bytes size, std::function<void()> on_done) {
        const int src = static_cast<int>(rng.uniform_int(gpus));
        const int dst = static_cast<int>((static_cast<std::uint64_t>(src) + 1 + rng.uniform_int(gpus - 1)) % gpus);
        network.start(src, dst, size, std::move(on_done), rng.next_u64());
    };
    for (std::int64_t i = 0; i < state.range(0); ++i) random_flow(Bytes(1e15), {});
    sim.run_until(sim.now());
    for (auto _ : state) {
        bool done = false;
        random_flow(Bytes(1e3), [&] { done = true; });
        while (!done) sim.run_until(sim.now() + Time::from_us(1));
    }
    state.counters["active_flows"] = static_cast<double>(network.active_flows());
}

// 64 GPUs (8 H800 hosts).
void BM_MaxMinRecompute(benchmark::State& state) {
    max_min_recompute(state, 8);
}
BENCHMARK(BM_MaxMinRecompute)->Arg(256)->Arg(4096)->Unit(benchmark::kMicrosecond);

// 256 GPUs (32 H800 hosts), at the scale of the EP256 validation rows (N2c has 65,280 flows).
void BM_MaxMinRecompute256Gpus(benchmark::State& state) {
    max_min_recompute(state, 32);
}
BENCHMARK(BM_MaxMinRecompute256Gpus)->Arg(32768)->Unit(benchmark::kMicrosecond);

void BM_Ep64NormalDispatch(benchmark::State& state) {
    const auto topology = h800_hosts(8);
    ExpertParallelSpec spec;
    for (int g = 0; g < 64; ++g) spec.gpus.push_back(g);
    spec.tokens_per_gpu = 4096;
    for (auto _ : state) {
        Simulator sim(1);
        FlowNetwork network(sim, *topology);
        const ExpertCommPlan plan = build_expert_comm(spec, balanced_routing(spec, *topology, 1), *topology);
        DagExecution execution(network, plan.dag);
        execution.start();
        sim.run();
        if (!execution.finished()) throw std::logic_error("dispatch did not finish");
        state.counters["flows"] = static_cast<double>(network.flows_started());
        state.counters["simulated_us"] = (execution.finished_at() - execution.started_at()).us();
    }
}
BENCHMARK(BM_Ep64NormalDispatch)->Unit(benchmark::kMillisecond);

}  // namespace
