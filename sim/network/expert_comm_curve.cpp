// Curves of DeepEP dispatch and combine times over tokens per rank, simulated at anchors and cached.
#include "sim/network/expert_comm_curve.hpp"

#include "sim/core/simulator.hpp"
#include "sim/network/flow_network.hpp"
#include "sim/network/transfer_dag.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>

namespace clustersim {

const std::vector<int>& expert_comm_anchor_tokens(ExpertCommMode mode) {
    // Normal mode spans single tokens to twice DeepEP's benchmark batch of 4,096 tokens per rank (rows
    // N1); low-latency mode, single tokens to kLowLatencyMaxTokensPerRank around its benchmark batch of
    // 128 (rows N2). The anchors are geometric past the first: a call's time is nearly affine in its
    // tokens once bandwidth-bound, and dominated by fixed latencies below that.
    static const std::vector<int> normal = {1, 128, 512, 2048, 8192};
    static const std::vector<int> low_latency = {1, 16, 64, 128, kLowLatencyMaxTokensPerRank};
    return mode == ExpertCommMode::normal ? normal : low_latency;
}

Time expert_comm_rate_update_interval(ExpertCommMode mode) {
    return mode == ExpertCommMode::low_latency ? Time::from_ns(100) : Time::zero();
}

Time simulate_expert_call(const Topology& topology, const ExpertCommCurveSpec& c, int tokens_per_rank) {
    if (c.ep < 1 || c.ep > topology.gpu_count())
        throw std::invalid_argument(fmt::format("an EP{} call does not fit topology {} of {} GPUs", c.ep,
                                                topology.name(), topology.gpu_count()));
    if (tokens_per_rank < 1) throw std::invalid_argument("an expert-parallel call needs at least one token per rank");
    ExpertParallelSpec spec;
    for (int g = 0; g < c.ep; ++g) spec.gpus.push_back(g);
    spec.experts = c.experts;
    spec.top_k = c.top_k;
    spec.node_limit = c.node_limit;
    spec.tokens_per_gpu = tokens_per_rank;
    spec.hidden = c.hidden;
    spec.mode = c.mode;
    spec.phase = c.phase;
    spec.fp8_dispatch = c.fp8_dispatch;
    spec.sms = c.sms;
    // A fixed routing sample: the curve belongs to the network and the shape, not to a run's seed.
    constexpr std::uint64_t kRoutingSeed = 1;
    const TokenRouting routing = balanced_routing(spec, topology, kRoutingSeed);
    const ExpertCommPlan plan = build_expert_comm(spec, routing, topology);
    Simulator sim(kRoutingSeed);
    FlowNetwork network(sim, topology);
    network.set_rate_update_interval(expert_comm_rate_update_interval(c.mode));
    DagExecution execution(network, plan.dag);
    execution.start();
    sim.run();
    if (!execution.finished()) throw std::logic_error("an expert-parallel call ended with transfers pending");
    return execution.finished_at() - execution.started_at();
}

ExpertCommCurve::ExpertCommCurve(const Topology& topology, const ExpertCommCurveSpec& spec) : spec_(spec) {
    for (int tokens : expert_comm_anchor_tokens(spec.mode))
        anchors_.emplace_back(tokens, simulate_expert_call(topology, spec, tokens));
}

Time ExpertCommCurve::at(double tokens) const {
    if (tokens <= anchors_.front().first) return anchors_.front().second;
    // The segment holding `tokens`, or the last one beyond the last anchor.
    std::size_t i = 1;
    while (i + 1 < anchors_.size() && tokens > anchors_[i].first) ++i;
    const auto& [x0, t0] = anchors_[i - 1];
    const auto& [x1, t1] = anchors_[i];
    const double slope_ps = static_cast<double>(t1.ps() - t0.ps()) / (x1 - x0);
    return t0 + Time::from_ps(static_cast<std::int64_t>(std::llround(slope_ps * (tokens - x0))));
}

namespace {

// FNV-1a, 64 bits: deterministic across runs and platforms.
class Fnv1a {
public:
    void add(const void* data, std::size_t size) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) {
            hash_ ^= p[i];
            hash_ *= 0x100000001b3ULL;
        }
    }
    template <typename T>
    void add_value(T v) {
        add(&v, sizeof v);
    }
    void add_string(const std::string& s) {
        add_value(s.size());
        add(s.data(), s.size());
    }
    std::uint64_t value() const { return hash_; }

private:
    std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

}  // namespace

std::string topology_fingerprint(const Topology& t) {
    Fnv1a h;
    h.add_string(t.name());
    h.add_string(t.gpu_model());
    h.add_value(t.gpu_count());
    h.add_value(t.gpus_per_host());
    h.add_value(t.host_count());
    h.add_value(static_cast<int>(t.fabric_kind()));
    for (NodeIndex i = 0; i < t.node_count(); ++i) {
        const TopologyNode& n = t.node(i);
        h.add_value(static_cast<int>(n.kind));
        h.add_string(n.name);
        h.add_value(n.gpu);
        h.add_value(n.host);
        h.add_value(n.rail);
    }
    for (LinkIndex i = 0; i < t.link_count(); ++i) {
        const TopologyLink& l = t.link(i);
        h.add_value(l.from);
        h.add_value(l.to);
        h.add_value(static_cast<int>(l.kind));
        h.add_value(l.bandwidth.bytes_per_second());
        h.add_value(l.efficiency);
        h.add_value(l.latency.ps());
    }
    return fmt::format("{}/{}x{}/{:016x}", t.name(), t.host_count(), t.gpus_per_host(), h.value());
}

std::shared_ptr<const ExpertCommCurve> cached_expert_comm_curve(const Topology& topology,
                                                                const std::string& fingerprint,
                                                                const ExpertCommCurveSpec& spec) {
    using Entry = std::shared_future<std::shared_ptr<const ExpertCommCurve>>;
    static std::mutex mutex;
    static std::map<std::pair<std::string, ExpertCommCurveSpec>, Entry> cache;
    const auto key = std::make_pair(fingerprint, spec);
    std::promise<std::shared_ptr<const ExpertCommCurve>> promise;
    Entry entry;
    bool owner = false;
    {
        std::lock_guard lock(mutex);
        if (auto it = cache.find(key); it != cache.end()) {
            entry = it->second;
        } else {
            entry = promise.get_future().share();
            cache.emplace(key, entry);
            owner = true;
        }
    }
    // Another thread simulates (or has simulated) it: wait outside the lock, so that other curves can
    // be looked up and simulated meanwhile.
    if (!owner) return entry.get();
    // This thread simulates the curve; others asking for it wait on the future.
    try {
        auto curve = std::make_shared<const ExpertCommCurve>(topology, spec);
        promise.set_value(curve);
        return curve;
    } catch (...) {
        promise.set_exception(std::current_exception());
        std::lock_guard lock(mutex);
        cache.erase(key);  // a later call tries again (and reports the error again)
        throw;
    }
}

}  // namespace clustersim
