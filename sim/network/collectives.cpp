// Builders of collective communication patterns.
#include "collectives.hpp"

#include <fmt/format.h>

#include <map>
#include <stdexcept>

namespace clustersim {

const char* to_string(CollectiveOp op) {
    switch (op) {
        case CollectiveOp::all_reduce: return "all_reduce";
        case CollectiveOp::all_gather: return "all_gather";
        case CollectiveOp::reduce_scatter: return "reduce_scatter";
        case CollectiveOp::all_to_all: return "all_to_all";
        case CollectiveOp::point_to_point: return "point_to_point";
    }
    return "?";
}

const char* to_string(CollectiveAlgorithm algorithm) {
    switch (algorithm) {
        case CollectiveAlgorithm::ring: return "ring";
        case CollectiveAlgorithm::tree: return "tree";
        case CollectiveAlgorithm::hierarchical: return "hierarchical";
        case CollectiveAlgorithm::direct: return "direct";
    }
    return "?";
}

const std::vector<std::string>& collective_op_names() {
    static const std::vector<std::string> names = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all",
                                                   "point_to_point"};
    return names;
}

const std::vector<std::string>& collective_algorithm_names() {
    static const std::vector<std::string> names = {"ring", "tree", "hierarchical", "direct"};
    return names;
}

CollectiveOp collective_op_from(const std::string& name) {
    for (auto op : {CollectiveOp::all_reduce, CollectiveOp::all_gather, CollectiveOp::reduce_scatter,
                    CollectiveOp::all_to_all, CollectiveOp::point_to_point})
        if (name == to_string(op)) return op;
    throw std::invalid_argument("unknown collective: " + name);
}

CollectiveAlgorithm collective_algorithm_from(const std::string& name) {
    for (auto a : {CollectiveAlgorithm::ring, CollectiveAlgorithm::tree, CollectiveAlgorithm::hierarchical,
                   CollectiveAlgorithm::direct})
        if (name == to_string(a)) return a;
    throw std::invalid_argument("unknown collective algorithm: " + name);
}

double bus_bandwidth_factor(CollectiveOp op, std::size_t ranks) {
    const double n = static_cast<double>(ranks);
    switch (op) {
        case CollectiveOp::all_reduce: return 2.0 * (n - 1) / n;
        case CollectiveOp::all_gather:
        case CollectiveOp::reduce_scatter:
        case CollectiveOp::all_to_all: return (n - 1) / n;
        case CollectiveOp::point_to_point: return 1.0;
    }
    return 1.0;
}

std::vector<TransferId> add_ring_phase(TransferDag& dag, const std::vector<int>& ranks, Bytes size, int steps,
                                       const std::vector<std::vector<TransferId>>& after, const std::string& label) {
    const std::size_t n = ranks.size();
    std::vector<TransferId> last(n);
    if (n == 1) {
        last[0] = dag.join(ranks[0], after.empty() ? std::vector<TransferId>{} : after[0], label);
        return last;
    }
    const Bytes piece = size / static_cast<double>(n);
    // sent[i]: the transfer rank i sent in the previous step (to rank i+1).
    std::vector<TransferId> sent(n);
    for (int step = 0; step < steps; ++step) {
        std::vector<TransferId> now(n);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t next = (i + 1) % n;
            const std::size_t prev = (i + n - 1) % n;
            std::vector<TransferId> deps;
            if (step == 0) {
                if (!after.empty()) deps = after[i];
            } else {
                deps = {sent[prev], sent[i]};  // the piece it must forward has arrived; its last send is done
            }
            now[i] = dag.add(ranks[i], ranks[next], piece, std::move(deps), fmt::format("{} step {}", label, step));
        }
        sent = now;
    }
    // Rank i's result is complete when the last piece from its predecessor has arrived.
    for (std::size_t i = 0; i < n; ++i) last[i] = sent[(i + n - 1) % n];
    return last;
}

namespace {

void check_ranks(const CollectiveSpec& spec, const Topology& topology) {
    if (spec.gpus.empty()) throw std::invalid_argument("a collective needs at least one GPU");
    for (int g : spec.gpus)
        if (g < 0 || g >= topology.gpu_count())
            throw std::invalid_argument(fmt::format("GPU {} is not in topology {} ({} GPUs)", g, topology.name(),
                                                    topology.gpu_count()));
}

// A pipelined binary-tree all-reduce: chunks are reduced up the tree (rank i's parent is
// (i-1)/2 in the given order) and broadcast back down, each chunk moving as soon as it can.
void build_tree_all_reduce(TransferDag& dag, const std::vector<int>& ranks, Bytes size, int chunks) {
    const std::size_t n = ranks.size();
    const Bytes piece = size / static_cast<double>(chunks);
    std::vector<TransferId> up_prev(n, 0), down_prev(n, 0);
    std::vector<bool> has_up_prev(n, false);
    for (int c = 0; c < chunks; ++c) {
        // Reduce: leaves first. up[i] is rank i's send of chunk c to its parent.
        std::vector<TransferId> up(n);
        for (std::size_t i = n; i-- > 1;) {
            std::vector<TransferId> deps;
            for (std::size_t child : {2 * i + 1, 2 * i + 2})
                if (child < n) deps.push_back(up[child]);
            if (has_up_prev[i]) deps.push_back(up_prev[i]);
            up[i] = dag.add(ranks[i], ranks[(i - 1) / 2], piece, std::move(deps), fmt::format("tree reduce chunk {}", c));
            up_prev[i] = up[i];
            has_up_prev[i] = true;
        }
        // Broadcast: the root has chunk c once both children delivered it.
        std::vector<TransferId> have(n);
        std::vector<TransferId> root_deps;
        for (std::size_t child : {std::size_t{1}, std::size_t{2}})
            if (child < n) root_deps.push_back(up[child]);
        have[0] = dag.join(ranks[0], root_deps, fmt::format("tree root chunk {}", c));
        for (std::size_t i = 1; i < n; ++i) {
            std::vector<TransferId> deps = {have[(i - 1) / 2]};
            if (c > 0) deps.push_back(down_prev[i]);
            have[i] = dag.add(ranks[(i - 1) / 2], ranks[i], piece, std::move(deps),
                              fmt::format("tree broadcast chunk {}", c));
            down_prev[i] = have[i];
        }
    }
}

// Groups ranks by host, keeping their order; every host must hold the same number of them.
std::vector<std::vector<int>> ranks_by_host(const std::vector<int>& gpus, const Topology& topology) {
    std::map<int, std::vector<int>> by_host;
    std::vector<int> host_order;
    for (int g : gpus) {
        const int h = topology.host_of(g);
        if (!by_host.count(h)) host_order.push_back(h);
        by_host[h].push_back(g);
    }
    std::vector<std::vector<int>> groups;
    for (int h : host_order) groups.push_back(by_host[h]);
    for (const auto& group : groups)
        if (group.size() != groups.front().size())
            throw std::invalid_argument("a hierarchical collective needs the same number of GPUs on every host");
    return groups;
}

}  // namespace

TransferDag build_collective(const CollectiveSpec& spec, const Topology& topology) {
    check_ranks(spec, topology);
    TransferDag dag;
    const auto& ranks = spec.gpus;
    const std::size_t n = ranks.size();
    const std::string op = to_string(spec.op);
    switch (spec.op) {
        case CollectiveOp::point_to_point:
            if (n != 2) throw std::invalid_argument("point_to_point needs exactly two GPUs (from, to)");
            dag.add(ranks[0], ranks[1], spec.size, {}, "p2p");
            return dag;
        case CollectiveOp::all_to_all:
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j)
                    if (i != j) dag.add(ranks[i], ranks[j], spec.size / static_cast<double>(n), {}, "all_to_all");
            return dag;
        case CollectiveOp::all_gather:
        case CollectiveOp::reduce_scatter:
            if (spec.algorithm == CollectiveAlgorithm::hierarchical) {
                const auto hosts = ranks_by_host(ranks, topology);
                const std::size_t local = hosts.front().size();
                // Reduce-scatter: inside each host first (full buffer), then across hosts per local
                // rank (1/local of it). All-gather runs the same two phases in reverse order.
                const bool rs = spec.op == CollectiveOp::reduce_scatter;
                std::map<int, std::vector<TransferId>> done_first;
                auto run_intra = [&](Bytes size, const std::map<int, std::vector<TransferId>>& after) {
                    std::map<int, std::vector<TransferId>> out;
                    for (const auto& host : hosts) {
                        std::vector<std::vector<TransferId>> deps;
                        for (int g : host) deps.push_back(after.count(g) ? after.at(g) : std::vector<TransferId>{});
                        const auto last = add_ring_phase(dag, host, size, static_cast<int>(host.size()) - 1, deps,
                                                         op + " nvlink");
                        for (std::size_t i = 0; i < host.size(); ++i) out[host[i]] = {last[i]};
                    }
                    return out;
                };
                auto run_inter = [&](Bytes size, const std::map<int, std::vector<TransferId>>& after) {
                    std::map<int, std::vector<TransferId>> out;
                    for (std::size_t l = 0; l < local; ++l) {
                        std::vector<int> rail;
                        std::vector<std::vector<TransferId>> deps;
                        for (const auto& host : hosts) {
                            rail.push_back(host[l]);
                            deps.push_back(after.count(host[l]) ? after.at(host[l]) : std::vector<TransferId>{});
                        }
                        const auto last = add_ring_phase(dag, rail, size, static_cast<int>(rail.size()) - 1, deps,
                                                         op + " across hosts");
                        for (std::size_t i = 0; i < rail.size(); ++i) out[rail[i]] = {last[i]};
                    }
                    return out;
                };
                const Bytes inter = spec.size / static_cast<double>(local);
                if (rs) {
                    run_inter(inter, run_intra(spec.size, {}));
                } else {
                    run_intra(spec.size, run_inter(inter, {}));
                }
                return dag;
            }
            add_ring_phase(dag, ranks, spec.size, static_cast<int>(n) - 1, {}, op);
            return dag;
        case CollectiveOp::all_reduce:
            if (spec.algorithm == CollectiveAlgorithm::tree) {
                if (n > 1) build_tree_all_reduce(dag, ranks, spec.size, std::max(1, spec.chunks));
                return dag;
            }
            if (spec.algorithm == CollectiveAlgorithm::hierarchical) {
                // Reduce-scatter inside each host, all-reduce across hosts on each rail, all-gather inside.
                const auto hosts = ranks_by_host(ranks, topology);
                const std::size_t local = hosts.front().size();
                std::map<int, std::vector<TransferId>> ready;
                for (const auto& host : hosts) {
                    const auto last = add_ring_phase(dag, host, spec.size, static_cast<int>(host.size()) - 1, {},
                                                     "all_reduce nvlink reduce-scatter");
                    for (std::size_t i = 0; i < host.size(); ++i) ready[host[i]] = {last[i]};
                }
                const Bytes shard = spec.size / static_cast<double>(local);
                std::map<int, std::vector<TransferId>> reduced;
                for (std::size_t l = 0; l < local; ++l) {
                    std::vector<int> rail;
                    std::vector<std::vector<TransferId>> deps;
                    for (const auto& host : hosts) {
                        rail.push_back(host[l]);
                        deps.push_back(ready[host[l]]);
                    }
                    const int m = static_cast<int>(rail.size());
                    const auto last = add_ring_phase(dag, rail, shard, m == 1 ? 0 : 2 * (m - 1), deps,
                                                     "all_reduce across hosts");
                    for (std::size_t i = 0; i < rail.size(); ++i) reduced[rail[i]] = {last[i]};
                }
                for (const auto& host : hosts) {
                    std::vector<std::vector<TransferId>> deps;
                    for (int g : host) deps.push_back(reduced[g]);
                    add_ring_phase(dag, host, spec.size, static_cast<int>(host.size()) - 1, deps,
                                   "all_reduce nvlink all-gather");
                }
                return dag;
            }
            add_ring_phase(dag, ranks, spec.size, 2 * (static_cast<int>(n) - 1), {}, op);
            return dag;
    }
    return dag;
}

}  // namespace clustersim
