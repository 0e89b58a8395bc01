// Building DeepEP-style dispatch and combine transfer graphs.
#include "expert_dispatch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace clustersim {

double dispatch_token_bytes(const ExpertParallelSpec& spec) {
    // DeepEP test_internode.py: FP8 bytes = BF16 bytes * (1 + 4/128) / 2, i.e. one byte per value
    // plus a 4-byte scale per 128 values.
    return spec.fp8_dispatch ? spec.hidden * (1.0 + 4.0 / 128.0) : spec.hidden * 2.0;
}

double combine_token_bytes(const ExpertParallelSpec& spec) { return spec.hidden * 2.0; }

double low_latency_dispatch_message_bytes(const ExpertParallelSpec& spec) {
    return spec.hidden + spec.hidden / 128.0 * 4.0 + 16.0;  // 7,408 bytes at hidden 7,168 (DeepEP README)
}

double low_latency_combine_message_bytes(const ExpertParallelSpec& spec) { return spec.hidden * 2.0; }

namespace {

struct Layout {
    std::vector<int> host_of_rank;    // host index (0-based among the EP hosts) of each rank
    std::vector<int> hosts;           // topology host ids, in order
    std::vector<std::vector<int>> ranks_on_host;  // EP ranks on each EP host
    int experts_per_rank = 0;
};

Layout make_layout(const ExpertParallelSpec& spec, const Topology& topology) {
    const int n = static_cast<int>(spec.gpus.size());
    if (n == 0) throw std::invalid_argument("expert parallelism needs at least one GPU");
    if (spec.experts % n != 0) {
        throw std::invalid_argument(
            fmt::format("{} experts cannot be spread evenly over {} EP ranks", spec.experts, n));
    }
    if (spec.top_k > spec.experts) throw std::invalid_argument("top_k exceeds the number of experts");
    Layout layout;
    layout.experts_per_rank = spec.experts / n;
    for (int r = 0; r < n; ++r) {
        const int g = spec.gpus[static_cast<std::size_t>(r)];
        if (g < 0 || g >= topology.gpu_count())
            throw std::invalid_argument(fmt::format("GPU {} is not in topology {}", g, topology.name()));
        const int host = topology.host_of(g);
        auto it = std::find(layout.hosts.begin(), layout.hosts.end(), host);
        if (it == layout.hosts.end()) {
            layout.hosts.push_back(host);
            layout.ranks_on_host.emplace_back();
            it = layout.hosts.end() - 1;
        }
        const int h = static_cast<int>(it - layout.hosts.begin());
        layout.host_of_rank.push_back(h);
        layout.ranks_on_host[static_cast<std::size_t>(h)].push_back(r);
    }
    for (const auto& on_host : layout.ranks_on_host)
        if (on_host.size() != layout.ranks_on_host.front().size())
            throw std::invalid_argument("expert parallelism needs the same number of EP ranks on every host");
    return layout;
}

}  // namespace

TokenRouting balanced_routing(const ExpertParallelSpec& spec, const Topology& topology, std::uint64_t seed) {
    const Layout layout = make_layout(spec, topology);
    const int hosts = static_cast<int>(layout.hosts.size());
    const int experts_per_host = spec.experts / hosts;
    const int hosts_per_token = std::min(std::max(1, spec.node_limit), hosts);
    if (spec.top_k > hosts_per_token * experts_per_host)
        throw std::invalid_argument("top_k exceeds the experts reachable under the node limit");
    TokenRouting routing(spec.gpus.size());
    std::vector<int> host_ids(static_cast<std::size_t>(hosts));
    std::vector<int> candidates;
    for (std::size_t r = 0; r < spec.gpus.size(); ++r) {
        RngStream rng(seed, fmt::format("routing/rank{}", r));
        auto& out = routing[r];
        out.reserve(static_cast<std::size_t>(spec.tokens_per_gpu * spec.top_k));
        for (int t = 0; t < spec.tokens_per_gpu; ++t) {
            // Partial Fisher-Yates shuffles: a uniform choice of hosts, then of experts among theirs.
            std::iota(host_ids.begin(), host_ids.end(), 0);
            candidates.clear();
            for (int i = 0; i < hosts_per_token; ++i) {
                const auto j = static_cast<std::size_t>(i) + rng.uniform_int(static_cast<std::uint64_t>(hosts - i));
                std::swap(host_ids[static_cast<std::size_t>(i)], host_ids[j]);
                const int h = host_ids[static_cast<std::size_t>(i)];
                for (int e = 0; e < experts_per_host; ++e) candidates.push_back(h * experts_per_host + e);
            }
            for (int k = 0; k < spec.top_k; ++k) {
                const auto j =
                    static_cast<std::size_t>(k) + rng.uniform_int(static_cast<std::uint64_t>(candidates.size()) - k);
                std::swap(candidates[static_cast<std::size_t>(k)], candidates[j]);
                out.push_back(candidates[static_cast<std::size_t>(k)]);
            }
        }
    }
    return routing;
}

ExpertCommPlan build_expert_comm(const ExpertParallelSpec& spec, const TokenRouting& routing, const Topology& topology) {
    const Layout layout = make_layout(spec, topology);
    const std::size_t n = spec.gpus.size();
    const std::size_t hosts = layout.hosts.size();
    const bool dispatch = spec.phase == ExpertCommPhase::dispatch;
    ExpertCommPlan plan;
    plan.logical_bytes.assign(n, 0.0);
    auto gpu = [&](std::size_t rank) { return spec.gpus[rank]; };
    auto add = [&](std::size_t from, std::size_t to, double bytes, std::vector<TransferId> deps, const std::string& label) {
        // Dispatch sends from token owners to experts; combine is the same pattern reversed.
        const int src = gpu(dispatch ? from : to);
        const int dst = gpu(dispatch ? to : from);
        if (src != dst) {
            (topology.host_of(src) == topology.host_of(dst) ? plan.nvlink_bytes : plan.ib_bytes) += bytes;
        }
        return plan.dag.add(src, dst, Bytes(bytes), std::move(deps), label);
    };

    if (spec.mode == ExpertCommMode::low_latency) {
        const double message = dispatch ? low_latency_dispatch_message_bytes(spec) : low_latency_combine_message_bytes(spec);
        plan.logical_bytes_kind = "messages";
        std::vector<double> pair_messages(n * n, 0.0);
        for (std::size_t r = 0; r < n; ++r)
            for (int e : routing[r]) pair_messages[r * n + static_cast<std::size_t>(e / layout.experts_per_rank)] += 1;
        for (std::size_t r = 0; r < n; ++r) {
            for (std::size_t d = 0; d < n; ++d) {
                const double count = pair_messages[r * n + d];
                if (count == 0) continue;
                plan.logical_bytes[r] += count * message;
                if (d != r) add(r, d, count * message, {}, dispatch ? "ll dispatch" : "ll combine");
            }
        }
        return plan;
    }

    const double token = dispatch ? dispatch_token_bytes(spec) : combine_token_bytes(spec);
    // tokens_to_rank[r][d]: tokens of rank r with at least one expert on rank d.
    // tokens_to_host[r][h]: tokens of rank r with at least one expert on host h.
    std::vector<double> tokens_to_rank(n * n, 0.0), tokens_to_host(n * hosts, 0.0);
    std::vector<int> seen_rank(n, -1), seen_host(hosts, -1);
    for (std::size_t r = 0; r < n; ++r) {
        const auto& chosen = routing[r];
        for (int t = 0; t < spec.tokens_per_gpu; ++t) {
            const int mark = static_cast<int>(r) * spec.tokens_per_gpu + t;
            for (int k = 0; k < spec.top_k; ++k) {
                const auto d = static_cast<std::size_t>(chosen[static_cast<std::size_t>(t * spec.top_k + k)] /
                                                        layout.experts_per_rank);
                const auto h = static_cast<std::size_t>(layout.host_of_rank[d]);
                if (seen_rank[d] != mark) {
                    seen_rank[d] = mark;
                    tokens_to_rank[r * n + d] += 1;
                }
                if (seen_host[h] != mark) {
                    seen_host[h] = mark;
                    tokens_to_host[r * hosts + h] += 1;
                }
            }
        }
    }

    if (hosts == 1) {
        // Intranode kernels: direct NVLink transfers; DeepEP counts the bytes each rank receives.
        plan.logical_bytes_kind = "nvlink";
        for (std::size_t r = 0; r < n; ++r) {
            for (std::size_t d = 0; d < n; ++d) {
                const double bytes = tokens_to_rank[r * n + d] * token;
                plan.logical_bytes[dispatch ? d : r] += bytes;
                if (d != r && bytes > 0) add(r, d, bytes, {}, dispatch ? "dispatch nvlink" : "combine nvlink");
            }
        }
        return plan;
    }

    // Internode kernels: RDMA to the same-rail GPU of each destination host, NVLink forwarding there.
    plan.logical_bytes_kind = "rdma";
    const int chunks = std::max(1, spec.pipeline_chunks);
    for (std::size_t r = 0; r < n; ++r) {
        const auto own_host = static_cast<std::size_t>(layout.host_of_rank[r]);
        const std::size_t rail = static_cast<std::size_t>(
            std::find(layout.ranks_on_host[own_host].begin(), layout.ranks_on_host[own_host].end(),
                      static_cast<int>(r)) -
            layout.ranks_on_host[own_host].begin());
        for (std::size_t h = 0; h < hosts; ++h) {
            const double host_tokens = tokens_to_host[r * hosts + h];
            if (host_tokens == 0) continue;
            plan.logical_bytes[r] += host_tokens * token;
            const auto relay = static_cast<std::size_t>(layout.ranks_on_host[h][rail]);
            const auto& targets = layout.ranks_on_host[h];
            std::vector<TransferId> rdma_prev, fwd_prev(targets.size());
            for (int c = 0; c < chunks; ++c) {
                const std::string tag = fmt::format("chunk {}", c);
                std::vector<TransferId> fwd(targets.size());
                if (dispatch) {
                    // RDMA chunk c to the relay, then the relay forwards chunk c to each target.
                    std::vector<TransferId> rdma_deps = rdma_prev;
                    const TransferId rdma =
                        h == own_host ? plan.dag.join(gpu(r), rdma_deps, "local " + tag)
                                      : add(r, relay, host_tokens * token / chunks, rdma_deps, "dispatch rdma " + tag);
                    rdma_prev = {rdma};
                    for (std::size_t i = 0; i < targets.size(); ++i) {
                        const auto d = static_cast<std::size_t>(targets[i]);
                        std::vector<TransferId> deps = {rdma};
                        if (c > 0) deps.push_back(fwd_prev[i]);
                        const double bytes = tokens_to_rank[r * n + d] * token / chunks;
                        fwd[i] = d == relay || bytes == 0 ? plan.dag.join(gpu(d), deps, "forward " + tag)
                                                          : plan.dag.add(gpu(relay), gpu(d), Bytes(bytes), deps,
                                                                         "dispatch nvlink forward " + tag);
                        if (d != relay) plan.nvlink_bytes += bytes;
                    }
                } else {
                    // Combine: each expert GPU sends chunk c to the relay, which reduces and sends it home.
                    for (std::size_t i = 0; i < targets.size(); ++i) {
                        const auto d = static_cast<std::size_t>(targets[i]);
                        std::vector<TransferId> deps;
                        if (c > 0) deps.push_back(fwd_prev[i]);
                        const double bytes = tokens_to_rank[r * n + d] * token / chunks;
                        fwd[i] = d == relay || bytes == 0 ? plan.dag.join(gpu(d), deps, "gather " + tag)
                                                          : plan.dag.add(gpu(d), gpu(relay), Bytes(bytes), deps,
                                                                         "combine nvlink gather " + tag);
                        if (d != relay) plan.nvlink_bytes += bytes;
                    }
                    std::vector<TransferId> deps = fwd;
                    deps.insert(deps.end(), rdma_prev.begin(), rdma_prev.end());
                    const TransferId rdma =
                        h == own_host ? plan.dag.join(gpu(r), deps, "local " + tag)
                                      : plan.dag.add(gpu(relay), gpu(r), Bytes(host_tokens * token / chunks), deps,
                                                     "combine rdma " + tag);
                    if (h != own_host) plan.ib_bytes += host_tokens * token / chunks;
                    rdma_prev = {rdma};
                }
                fwd_prev = fwd;
            }
        }
    }
    return plan;
}

}  // namespace clustersim
