// Building DeepEP-style dispatch and combine transfer graphs.
#include "expert_dispatch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <tuple>

namespace clustersim {

double dispatch_token_bytes(const ExpertParallelSpec& spec) {
    // DeepEP test_internode.py: FP8 bytes = BF16 bytes * (1 + 4/128) / 2, i.e. one byte per value
    // plus a 4-byte scale per 128 values.
    return spec.fp8_dispatch ? spec.hidden * (1.0 + 4.0 / 128.0) : spec.hidden * 2.0;
}

double combine_token_bytes(const ExpertParallelSpec& spec) { return spec.hidden * 2.0; }

double low_latency_dispatch_message_bytes(const ExpertParallelSpec& spec) {
    // DeepEP csrc/kernels/internode_ll.cu: num_bytes_per_msg = sizeof(int4) + (kUseFP8 ? hidden +
    // num_scales * sizeof(float) : hidden * sizeof(bf16)): 7,408 bytes at hidden 7,168 in FP8 (README).
    return spec.fp8_dispatch ? spec.hidden + spec.hidden / 128.0 * 4.0 + 16.0 : spec.hidden * 2.0 + 16.0;
}

double low_latency_combine_message_bytes(const ExpertParallelSpec& spec) { return spec.hidden * 2.0; }

// Per-SM copy throughput, from DeepEP's own bandwidth model of its kernels: deepseek-ai/DeepEP
// deep_ep/buffers/elastic.py, ElasticBuffer.get_theoretical_num_sms(), whose defaults are
// sm_read_gbs = 200 and sm_write_gbs = 50, documented there as "the per-SM HBM read/write bandwidth in
// GB/s" (with a TODO to use other values on other architectures). That model charges every byte an SM
// stores, whether into a local send buffer or to a peer over NVLink ("Issue NVLink"), to sm_write, and
// every byte it loads to sm_read. GB is 1e9 bytes there, as in DeepEP's tests.
Bandwidth deepep_sm_write_rate() { return Bandwidth::bytes_per_second(50e9); }
Bandwidth deepep_sm_read_rate() { return Bandwidth::bytes_per_second(200e9); }

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

// What the SMs of a normal-mode kernel do, by role. DeepEP splits the kernel's SMs into sms / 2
// channels of two blocks each (deepseek-ai/DeepEP csrc/kernels/intranode.cu and internode.cu:
// `num_channels = num_sms / 2`), one block of each channel per role below, so each role has sms / 2
// SMs on every GPU:
//   intranode dispatch: even blocks send (store each token into the receiver's queue over NVLink),
//     odd blocks receive (copy from their queue into recv_x): both store every byte once.
//   intranode combine: even blocks send (store each expert output into the token owner's queue), odd
//     blocks load every received copy and reduce it into the token.
//   internode dispatch (`is_forwarder = sm_id % 2 == 0`): the forwarder block's kRDMAAndNVLForwarder
//     warps store each token received by RDMA into the NVLink peers' queues; the other block holds the
//     kRDMASender warps (copy each token into the RDMA send buffer) and the kNVLReceivers (copy from
//     the NVLink queue into recv_x).
//   internode combine (`is_rdma_receiver_sm = sm_id % 2 == 1`): one block holds the kNVLSender warps
//     (store into the relay's NVLink queue) and the kNVLAndRDMAForwarder warps (reduce and store into
//     the RDMA send buffer); the receiver block's kRDMAReceiver warps load every copy and reduce.
enum class SmRole { even_blocks, odd_blocks };

class SmCaps {
public:
    SmCaps(const ExpertParallelSpec& spec, TransferDag& dag, const Topology& topology)
        : spec_(spec), dag_(dag), topology_(topology) {}
    // Limits transfer `id` by the store rate of `role` on EP rank `rank` (or its load rate); `rank`'s
    // GPU is the transfer's source or its destination.
    void limit(TransferId id, std::size_t rank, SmRole role, bool loads = false) {
        if (!spec_.sm_copy_limit || spec_.mode != ExpertCommMode::normal || spec_.sms < 2) return;
        Pending& p = pending_[std::make_tuple(rank, static_cast<int>(role), loads)];
        p.transfers.push_back(id);
        // The link by which the transfer leaves (or reaches) that GPU.
        const Transfer& t = dag_.transfers()[id];
        if (t.explicit_path) {
            path_ = t.path;
        } else {
            topology_.route_into(t.src, t.dst, t.flow_key, path_);
        }
        if (path_.empty()) return;
        p.gpu_links.insert(t.src == spec_.gpus[rank] ? path_.front() : path_.back());
    }

    // Adds the caps to the graph. A cap whose capacity is at least that of all the links by which its
    // transfers leave or reach the GPU can never bind (those links already hold the transfers to less),
    // so it is left out: max-min rates are the same, and the filling does not pay for a link shared by
    // hundreds of flows.
    void apply() {
        const double channels = spec_.sms / 2;
        for (const auto& [key, p] : pending_) {
            const auto& [rank, role, loads] = key;
            const Bandwidth rate = loads ? deepep_sm_read_rate() : deepep_sm_write_rate();
            const double cap = channels * rate.bytes_per_second();
            double links = 0;
            for (LinkIndex l : p.gpu_links) links += topology_.link(l).effective_bandwidth().bytes_per_second();
            if (cap >= links) continue;
            const std::uint32_t id = dag_.add_rate_cap(
                Bandwidth::bytes_per_second(cap),
                fmt::format("rank {} {} SMs {}", rank, role == static_cast<int>(SmRole::even_blocks) ? "even" : "odd",
                            loads ? "loads" : "stores"));
            for (TransferId t : p.transfers) dag_.apply_rate_cap(t, id);
        }
    }

private:
    struct Pending {
        std::vector<TransferId> transfers;
        std::set<LinkIndex> gpu_links;
    };
    const ExpertParallelSpec& spec_;
    TransferDag& dag_;
    const Topology& topology_;
    std::map<std::tuple<std::size_t, int, bool>, Pending> pending_;
    std::vector<LinkIndex> path_;
};

// One barrier round among the EP ranks `group`: every rank signals every other with a zero-byte
// message and is through once all the others' signals have arrived, so a round costs the slowest
// path's latency. This is how DeepEP's barriers work: intranode.cu barrier_device (a flag written to
// each NVLink peer, then a wait for all peers' flags) and nvshmem_sync among the RDMA ranks.
void barrier_round(TransferDag& dag, const std::vector<int>& gpus, const std::vector<std::size_t>& group,
                   std::vector<std::vector<TransferId>>& ready, const std::string& label) {
    std::vector<std::vector<TransferId>> arrived(group.size());
    for (std::size_t i = 0; i < group.size(); ++i) {
        for (std::size_t j = 0; j < group.size(); ++j) {
            if (i == j) continue;
            arrived[j].push_back(dag.add(gpus[group[i]], gpus[group[j]], Bytes(0), ready[group[i]], label));
        }
    }
    for (std::size_t j = 0; j < group.size(); ++j) {
        auto& deps = arrived[j];
        deps.insert(deps.end(), ready[group[j]].begin(), ready[group[j]].end());
        ready[group[j]] = {dag.join(gpus[group[j]], std::move(deps), label + " done")};
    }
}

// The notify kernel DeepEP runs before a normal-mode dispatch or combine with a cached layout (what
// its tests time, and what a combine or a backward dispatch always runs): within a host,
// intranode.cu cached_notify_dispatch and cached_notify_combine each do barrier_device, clean the
// queues, barrier_device again; across hosts, internode.cu cached_notify runs, on two blocks at once,
// nvshmem_sync_with_same_gpu_idx among the RDMA ranks twice (around a clean) and barrier_block among
// the NVLink peers twice. Returns, per EP rank, what its data transfers must wait for.
std::vector<std::vector<TransferId>> notify_barriers(TransferDag& dag, const ExpertParallelSpec& spec,
                                                     const Layout& layout) {
    const std::size_t n = spec.gpus.size();
    std::vector<std::vector<TransferId>> ready(n);
    if (!spec.kernel_sync || n < 2) return ready;
    const std::string phase = spec.phase == ExpertCommPhase::dispatch ? "dispatch" : "combine";
    std::vector<std::vector<TransferId>> nvl = ready;
    for (int round = 0; round < 2; ++round)
        for (const auto& on_host : layout.ranks_on_host) {
            std::vector<std::size_t> group(on_host.begin(), on_host.end());
            if (group.size() > 1) barrier_round(dag, spec.gpus, group, nvl, "notify " + phase + " nvlink barrier");
        }
    if (layout.hosts.size() == 1) return nvl;
    std::vector<std::vector<TransferId>> rdma = ready;
    const std::size_t per_host = layout.ranks_on_host.front().size();
    for (int round = 0; round < 2; ++round)
        for (std::size_t rail = 0; rail < per_host; ++rail) {
            std::vector<std::size_t> group;
            for (const auto& on_host : layout.ranks_on_host) group.push_back(static_cast<std::size_t>(on_host[rail]));
            barrier_round(dag, spec.gpus, group, rdma, "notify " + phase + " rdma barrier");
        }
    for (std::size_t r = 0; r < n; ++r) {
        std::vector<TransferId> deps = nvl[r];
        deps.insert(deps.end(), rdma[r].begin(), rdma[r].end());
        ready[r] = {dag.join(spec.gpus[r], std::move(deps), "notify " + phase + " done")};
    }
    return ready;
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
                if (d == r) continue;
                const TransferId data = add(r, d, count * message, {}, dispatch ? "ll dispatch" : "ll combine");
                // Then the signal the receiver waits for before it reads the data: in
                // csrc/kernels/internode_ll.cu, dispatch writes each expert's token count to the
                // destination once that expert's tokens are all sent (an RDMA atomic, or a store over
                // NVLink), and combine sets rdma_recv_flag the same way; the receiving warp group spins
                // on it. One zero-byte message per (sender, receiver) pair: a path latency after its data.
                if (spec.kernel_sync) add(r, d, 0, {data}, dispatch ? "ll dispatch count" : "ll combine flag");
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

    const std::vector<std::vector<TransferId>> ready = notify_barriers(plan.dag, spec, layout);
    SmCaps sm_caps(spec, plan.dag, topology);

    if (hosts == 1) {
        // Intranode kernels: direct NVLink transfers; DeepEP counts the bytes each rank receives.
        plan.logical_bytes_kind = "nvlink";
        for (std::size_t r = 0; r < n; ++r) {
            for (std::size_t d = 0; d < n; ++d) {
                const double bytes = tokens_to_rank[r * n + d] * token;
                plan.logical_bytes[dispatch ? d : r] += bytes;
                if (d == r || bytes == 0) continue;
                const std::size_t sender = dispatch ? r : d, receiver = dispatch ? d : r;
                const TransferId id = add(r, d, bytes, ready[sender], dispatch ? "dispatch nvlink" : "combine nvlink");
                sm_caps.limit(id, sender, SmRole::even_blocks);
                sm_caps.limit(id, receiver, SmRole::odd_blocks, /*loads=*/!dispatch);
            }
        }
        sm_caps.apply();
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
            // Dispatch's first RDMA chunk waits for the notify; combine's gathers do (below).
            std::vector<TransferId> rdma_prev = dispatch ? ready[r] : std::vector<TransferId>{};
            std::vector<TransferId> fwd_prev(targets.size());
            for (int c = 0; c < chunks; ++c) {
                const std::string tag = fmt::format("chunk {}", c);
                std::vector<TransferId> fwd(targets.size());
                if (dispatch) {
                    // RDMA chunk c to the relay, then the relay forwards chunk c to each target.
                    std::vector<TransferId> rdma_deps = rdma_prev;
                    const TransferId rdma =
                        h == own_host ? plan.dag.join(gpu(r), rdma_deps, "local " + tag)
                                      : add(r, relay, host_tokens * token / chunks, rdma_deps, "dispatch rdma " + tag);
                    if (h != own_host) sm_caps.limit(rdma, r, SmRole::odd_blocks);  // kRDMASender warps
                    rdma_prev = {rdma};
                    for (std::size_t i = 0; i < targets.size(); ++i) {
                        const auto d = static_cast<std::size_t>(targets[i]);
                        std::vector<TransferId> deps = {rdma};
                        if (c > 0) deps.push_back(fwd_prev[i]);
                        const double bytes = tokens_to_rank[r * n + d] * token / chunks;
                        fwd[i] = d == relay || bytes == 0 ? plan.dag.join(gpu(d), deps, "forward " + tag)
                                                          : plan.dag.add(gpu(relay), gpu(d), Bytes(bytes), deps,
                                                                         "dispatch nvlink forward " + tag);
                        if (d != relay && bytes > 0) {
                            plan.nvlink_bytes += bytes;
                            sm_caps.limit(fwd[i], relay, SmRole::even_blocks);  // kRDMAAndNVLForwarder warps
                            sm_caps.limit(fwd[i], d, SmRole::odd_blocks);       // kNVLReceivers
                        }
                    }
                } else {
                    // Combine: each expert GPU sends chunk c to the relay, which reduces and sends it home.
                    for (std::size_t i = 0; i < targets.size(); ++i) {
                        const auto d = static_cast<std::size_t>(targets[i]);
                        std::vector<TransferId> deps = c > 0 ? std::vector<TransferId>{fwd_prev[i]} : ready[d];
                        const double bytes = tokens_to_rank[r * n + d] * token / chunks;
                        fwd[i] = d == relay || bytes == 0 ? plan.dag.join(gpu(d), deps, "gather " + tag)
                                                          : plan.dag.add(gpu(d), gpu(relay), Bytes(bytes), deps,
                                                                         "combine nvlink gather " + tag);
                        if (d != relay && bytes > 0) {
                            plan.nvlink_bytes += bytes;
                            sm_caps.limit(fwd[i], d, SmRole::even_blocks);  // kNVLSender warps
                        }
                    }
                    std::vector<TransferId> deps = fwd;
                    deps.insert(deps.end(), rdma_prev.begin(), rdma_prev.end());
                    const TransferId rdma =
                        h == own_host ? plan.dag.join(gpu(r), deps, "local " + tag)
                                      : plan.dag.add(gpu(relay), gpu(r), Bytes(host_tokens * token / chunks), deps,
                                                     "combine rdma " + tag);
                    if (h != own_host) {
                        plan.ib_bytes += host_tokens * token / chunks;
                        sm_caps.limit(rdma, relay, SmRole::even_blocks);             // kNVLAndRDMAForwarder warps
                        sm_caps.limit(rdma, r, SmRole::odd_blocks, /*loads=*/true);  // kRDMAReceiver warps
                    }
                    rdma_prev = {rdma};
                }
                fwd_prev = fwd;
            }
        }
    }
    sm_caps.apply();
    return plan;
}

}  // namespace clustersim
