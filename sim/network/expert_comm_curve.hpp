// ExpertCommCurve: the time of one DeepEP dispatch or combine as a function of the tokens per rank,
// from flow-level simulations at a few anchor token counts, cached once per process per distinct key.
//
// Users that price many calls of different sizes (the serving cost model prices one per memoized
// iteration shape) cannot afford a network simulation per call: an EP144 low-latency call has
// 20,736 sender-receiver pairs. A curve simulates the call (sim/network/expert_dispatch.hpp, the model
// validated by rows N1 and N2) at the anchors of its mode, alone on the fabric, on the first `ep` GPUs
// of the topology, and answers other sizes by linear interpolation between anchors; beyond the last
// anchor it extrapolates with the slope of the last segment (bandwidth-bound calls grow linearly in
// their bytes), and below the first it answers the first anchor's time.
#pragma once

#include "sim/network/expert_dispatch.hpp"
#include "topologies/topology.hpp"

#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clustersim {

// What a curve depends on, besides the topology.
struct ExpertCommCurveSpec {
    int ep = 8;         // EP ranks: GPUs 0 .. ep - 1 of the topology
    int experts = 256;  // physical experts (routed + redundant), spread evenly over the ranks
    int top_k = 8;
    int node_limit = 4;  // most hosts a token goes to (group-limited routing)
    int hidden = 7168;
    bool fp8_dispatch = true;  // dispatch payload FP8 with scales (else BF16); combine is BF16
    ExpertCommMode mode = ExpertCommMode::normal;
    ExpertCommPhase phase = ExpertCommPhase::dispatch;
    int sms = 20;  // normal mode: SMs the kernels hold (DeepEP's Buffer.num_sms default)

    auto operator<=>(const ExpertCommCurveSpec&) const = default;
};

// The largest token count per rank a low-latency curve is simulated at (its last anchor): 256 tokens
// per rank, twice the 128 of DeepEP's test_low_latency.py and of SGLang's default low-latency buffer
// (SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK). Larger calls are extrapolated.
constexpr int kLowLatencyMaxTokensPerRank = 256;
// The most tokens per rank DeepEP's low-latency kernels take at all: SGLang asserts
// num_max_dispatch_tokens_per_rank <= 1024 because internode_ll's dispatch counts with
// FINISHED_SUM_TAG = 1024 (sglang python/sglang/srt/layers/moe/token_dispatcher/deepep.py). Users route
// larger batches to normal mode.
constexpr int kLowLatencyKernelMaxTokensPerRank = 1024;

// The token counts per rank a curve of `mode` is simulated at, increasing.
const std::vector<int>& expert_comm_anchor_tokens(ExpertCommMode mode);

// The flow network's rate-update interval used for `mode`: 100 ns for low-latency calls, the setting
// of the validated EP256 rows N2c and N2f (scenarios/validation/N2c.yaml: at most 0.3% slower than
// exact max-min); exact (zero) for normal mode, as rows N1a-N1e run.
Time expert_comm_rate_update_interval(ExpertCommMode mode);

// One call of `spec` with `tokens_per_rank` tokens on every rank, simulated alone on `topology`
// (balanced node-limited routing drawn from a fixed seed, so a curve is a property of the network and
// the shape, not of a run). Throws std::invalid_argument when the EP group does not fit the topology.
Time simulate_expert_call(const Topology& topology, const ExpertCommCurveSpec& spec, int tokens_per_rank);

class ExpertCommCurve {
public:
    // Simulates every anchor of spec.mode.
    ExpertCommCurve(const Topology& topology, const ExpertCommCurveSpec& spec);

    // The time of a call with `tokens_per_rank` tokens on every rank.
    Time at(double tokens_per_rank) const;
    // Whether `tokens_per_rank` lies beyond the last anchor (answered by extrapolation).
    bool extrapolates(double tokens_per_rank) const { return tokens_per_rank > anchors_.back().first; }

    const ExpertCommCurveSpec& spec() const { return spec_; }
    const std::vector<std::pair<int, Time>>& anchors() const { return anchors_; }

private:
    ExpertCommCurveSpec spec_;
    std::vector<std::pair<int, Time>> anchors_;  // (tokens per rank, time), increasing in tokens
};

// A fingerprint of everything about a topology that a simulated call can depend on: its name, sizes,
// nodes and links (kinds, bandwidths, efficiencies, latencies). Two loads of the same file with the
// same overrides have the same fingerprint.
std::string topology_fingerprint(const Topology& topology);

// The curve of `spec` on `topology`, simulated on first use and then shared: one per process per
// (topology fingerprint, spec). Safe to call from several threads at once (`clustersim plan` and
// `sweep` run scenarios in parallel): a curve being simulated by one thread is waited for by the
// others, and different curves are simulated in parallel. `fingerprint` is topology_fingerprint(topology)
// (passed in so callers compute it once).
std::shared_ptr<const ExpertCommCurve> cached_expert_comm_curve(const Topology& topology,
                                                                const std::string& fingerprint,
                                                                const ExpertCommCurveSpec& spec);

}  // namespace clustersim
