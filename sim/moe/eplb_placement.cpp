// EPLB placement (github.com/deepseek-ai/EPLB, eplb.py) in our own C++; see eplb_placement.hpp.
#include "sim/moe/eplb_placement.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace clustersim {
namespace {

// One layer's placement: phy2log, phyrank and logcnt.
struct LayerPlacement {
    std::vector<int> phy2log, phyrank, logcnt;
};

std::vector<int> inverse_permutation(const std::vector<int>& perm) {
    std::vector<int> inv(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) inv[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
    return inv;
}

// The three steps of eplb.py's rebalance_experts_hierarchical for one layer. Requirements are
// checked by the callers.
LayerPlacement place_layer(const std::vector<float>& w, int num_physical, int num_groups, int num_nodes, int num_gpus) {
    const int experts = static_cast<int>(w.size());
    const int group_size = experts / num_groups;
    const int groups_per_node = num_groups / num_nodes;
    const int experts_per_node = experts / num_nodes;
    const int physical_per_node = num_physical / num_nodes;
    const int physical_per_gpu = num_physical / num_gpus;
    const int gpus_per_node = num_gpus / num_nodes;

    // Step 1: whole groups to nodes. "mlog" numbers experts node by node, a node's groups in
    // the order they were packed, keeping each group's experts in order.
    std::vector<float> group_load(static_cast<std::size_t>(num_groups), 0.0f);
    for (int e = 0; e < experts; ++e)
        group_load[static_cast<std::size_t>(e / group_size)] += w[static_cast<std::size_t>(e)];
    const BalancedPacking groups = balanced_packing(group_load, num_nodes);
    std::vector<int> log2mlog(static_cast<std::size_t>(experts));
    for (int e = 0; e < experts; ++e) {
        const auto g = static_cast<std::size_t>(e / group_size);
        log2mlog[static_cast<std::size_t>(e)] =
            (groups.pack[g] * groups_per_node + groups.rank_in_pack[g]) * group_size + e % group_size;
    }
    const std::vector<int> mlog2log = inverse_permutation(log2mlog);

    LayerPlacement out;
    out.phy2log.resize(static_cast<std::size_t>(num_physical));
    out.phyrank.resize(static_cast<std::size_t>(num_physical));
    std::vector<int> mlogcnt(static_cast<std::size_t>(experts));
    for (int node = 0; node < num_nodes; ++node) {
        // Step 2: replicas within the node.
        std::vector<float> node_load(static_cast<std::size_t>(experts_per_node));
        for (int j = 0; j < experts_per_node; ++j)
            node_load[static_cast<std::size_t>(j)] =
                w[static_cast<std::size_t>(mlog2log[static_cast<std::size_t>(node * experts_per_node + j)])];
        const ExpertReplication rep = replicate_experts(node_load, physical_per_node);

        // Step 3: the node's replicas to its GPUs, each replica carrying an equal share of its expert.
        std::vector<float> replica_load(static_cast<std::size_t>(physical_per_node));
        for (int k = 0; k < physical_per_node; ++k) {
            const auto m = static_cast<std::size_t>(rep.phy2log[static_cast<std::size_t>(k)]);
            replica_load[static_cast<std::size_t>(k)] = node_load[m] / static_cast<float>(rep.logcnt[m]);
        }
        const BalancedPacking gpus = balanced_packing(replica_load, gpus_per_node);
        std::vector<int> slot_of(static_cast<std::size_t>(physical_per_node));
        for (int k = 0; k < physical_per_node; ++k)
            slot_of[static_cast<std::size_t>(k)] = gpus.pack[static_cast<std::size_t>(k)] * physical_per_gpu +
                                                   gpus.rank_in_pack[static_cast<std::size_t>(k)];
        const std::vector<int> replica_in_slot = inverse_permutation(slot_of);

        for (int q = 0; q < physical_per_node; ++q) {
            const auto k = static_cast<std::size_t>(replica_in_slot[static_cast<std::size_t>(q)]);
            const int mlog = rep.phy2log[k] + node * experts_per_node;
            const auto slot = static_cast<std::size_t>(node * physical_per_node + q);
            out.phy2log[slot] = mlog2log[static_cast<std::size_t>(mlog)];
            out.phyrank[slot] = rep.rank[k];
        }
        for (int j = 0; j < experts_per_node; ++j)
            mlogcnt[static_cast<std::size_t>(node * experts_per_node + j)] = rep.logcnt[static_cast<std::size_t>(j)];
    }
    out.logcnt.resize(static_cast<std::size_t>(experts));
    for (int e = 0; e < experts; ++e)
        out.logcnt[static_cast<std::size_t>(e)] =
            mlogcnt[static_cast<std::size_t>(log2mlog[static_cast<std::size_t>(e)])];
    return out;
}

// Every unmet requirement of the hierarchical policy, joined; empty when all hold.
std::string check_arguments(const ExpertLoadMatrix& weight, int num_physical, int num_groups, int num_nodes,
                            int num_gpus, bool hierarchical) {
    std::vector<std::string> problems;
    if (weight.empty() || weight.front().empty()) problems.push_back("the load matrix has no layers or no experts");
    const auto experts = weight.empty() ? std::size_t{0} : weight.front().size();
    for (std::size_t l = 0; l < weight.size(); ++l) {
        if (weight[l].size() != experts)
            problems.push_back(
                fmt::format("layer {} has {} expert loads, layer 0 has {}", l, weight[l].size(), experts));
        for (std::size_t e = 0; e < weight[l].size(); ++e)
            if (!std::isfinite(weight[l][e]) || weight[l][e] < 0) {
                problems.push_back(
                    fmt::format("layer {} expert {}: load {} is not a finite non-negative number", l, e, weight[l][e]));
                break;
            }
    }
    const int n = static_cast<int>(experts);
    if (num_groups < 1 || num_nodes < 1 || num_gpus < 1 || num_physical < 1) {
        problems.push_back(fmt::format("replicas ({}), groups ({}), nodes ({}) and GPUs ({}) must all be positive",
                                       num_physical, num_groups, num_nodes, num_gpus));
    } else {
        if (n > 0 && n % num_groups != 0)
            problems.push_back(fmt::format("{} experts do not split into {} equal groups", n, num_groups));
        if (hierarchical && num_groups % num_nodes != 0)
            problems.push_back(fmt::format("{} groups do not split evenly over {} nodes", num_groups, num_nodes));
        if (num_gpus % num_nodes != 0)
            problems.push_back(fmt::format("{} GPUs do not split evenly over {} nodes", num_gpus, num_nodes));
        if (num_physical % num_gpus != 0)
            problems.push_back(
                fmt::format("{} physical experts do not split evenly over {} GPUs", num_physical, num_gpus));
        if (num_physical < n)
            problems.push_back(fmt::format("{} physical experts cannot hold {} logical experts", num_physical, n));
    }
    std::string joined;
    for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
    return joined;
}

ExpertPlacement place_all(const ExpertLoadMatrix& weight, int num_physical, int num_groups, int num_nodes,
                          int num_gpus) {
    ExpertPlacement placement;
    placement.num_gpus = num_gpus;
    for (const auto& row : weight) {
        // The reference converts loads to float32 first; so do we, to order them the same way.
        const std::vector<float> w(row.begin(), row.end());
        LayerPlacement layer = place_layer(w, num_physical, num_groups, num_nodes, num_gpus);
        placement.phy2log.push_back(std::move(layer.phy2log));
        placement.phyrank.push_back(std::move(layer.phyrank));
        placement.logcnt.push_back(std::move(layer.logcnt));
    }
    return placement;
}

}  // namespace

BalancedPacking balanced_packing(std::span<const float> weight, int num_packs) {
    const int items = static_cast<int>(weight.size());
    if (num_packs < 1 || items % num_packs != 0)
        throw std::invalid_argument(
            fmt::format("balanced_packing: {} items do not split evenly into {} packs", items, num_packs));
    const int per_pack = items / num_packs;
    BalancedPacking out;
    out.pack.assign(static_cast<std::size_t>(items), -1);
    out.rank_in_pack.assign(static_cast<std::size_t>(items), -1);
    if (per_pack == 1) {
        // As in the reference: with one item per pack there is nothing to balance.
        std::iota(out.pack.begin(), out.pack.end(), 0);
        std::fill(out.rank_in_pack.begin(), out.rank_in_pack.end(), 0);
        return out;
    }
    std::vector<int> order(static_cast<std::size_t>(items));
    std::iota(order.begin(), order.end(), 0);
    // Heaviest first; the stable sort keeps equal loads in index order (tie rule in the header).
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return weight[static_cast<std::size_t>(a)] > weight[static_cast<std::size_t>(b)];
    });
    std::vector<float> pack_load(static_cast<std::size_t>(num_packs), 0.0f);
    std::vector<int> pack_items(static_cast<std::size_t>(num_packs), 0);
    for (const int item : order) {
        int best = -1;
        for (int p = 0; p < num_packs; ++p) {
            const auto pi = static_cast<std::size_t>(p);
            if (pack_items[pi] >= per_pack) continue;
            // Strict < keeps the lowest-index pack among equally light ones.
            if (best < 0 || pack_load[pi] < pack_load[static_cast<std::size_t>(best)]) best = p;
        }
        const auto b = static_cast<std::size_t>(best);
        const auto i = static_cast<std::size_t>(item);
        out.pack[i] = best;
        out.rank_in_pack[i] = pack_items[b];
        pack_load[b] += weight[i];
        ++pack_items[b];
    }
    return out;
}

ExpertReplication replicate_experts(std::span<const float> weight, int num_physical) {
    const int logical = static_cast<int>(weight.size());
    if (logical < 1 || num_physical < logical)
        throw std::invalid_argument(fmt::format("replicate_experts: {} physical experts cannot hold {} logical experts",
                                                num_physical, logical));
    ExpertReplication out;
    out.phy2log.resize(static_cast<std::size_t>(num_physical));
    std::iota(out.phy2log.begin(), out.phy2log.begin() + logical, 0);
    out.rank.assign(static_cast<std::size_t>(num_physical), 0);
    out.logcnt.assign(static_cast<std::size_t>(logical), 1);
    for (int p = logical; p < num_physical; ++p) {
        int best = 0;
        float best_load = weight[0] / static_cast<float>(out.logcnt[0]);
        for (int e = 1; e < logical; ++e) {
            const auto ei = static_cast<std::size_t>(e);
            const float load = weight[ei] / static_cast<float>(out.logcnt[ei]);
            if (load > best_load) {  // strict: the first maximum wins
                best = e;
                best_load = load;
            }
        }
        const auto pi = static_cast<std::size_t>(p);
        const auto bi = static_cast<std::size_t>(best);
        out.phy2log[pi] = best;
        out.rank[pi] = out.logcnt[bi];
        ++out.logcnt[bi];
    }
    return out;
}

ExpertPlacement rebalance_experts_hierarchical(const ExpertLoadMatrix& weight, int num_physical, int num_groups,
                                               int num_nodes, int num_gpus) {
    const std::string problems = check_arguments(weight, num_physical, num_groups, num_nodes, num_gpus, true);
    if (!problems.empty()) throw std::invalid_argument("EPLB hierarchical placement: " + problems);
    return place_all(weight, num_physical, num_groups, num_nodes, num_gpus);
}

ExpertPlacement rebalance_experts(const ExpertLoadMatrix& weight, int num_replicas, int num_groups, int num_nodes,
                                  int num_gpus) {
    const std::string problems = check_arguments(weight, num_replicas, num_groups, num_nodes, num_gpus, false);
    if (!problems.empty()) throw std::invalid_argument("EPLB placement: " + problems);
    // Global policy when the groups cannot stay whole on nodes. The first version of eplb.py only
    // replicated (no packing to GPUs); later versions run the hierarchical steps with one group
    // and one node, which also balances the GPUs. We follow the later version.
    const bool hierarchical = num_groups % num_nodes == 0;
    ExpertPlacement placement = hierarchical ? place_all(weight, num_replicas, num_groups, num_nodes, num_gpus)
                                             : place_all(weight, num_replicas, 1, 1, num_gpus);
    // The reference pads log2phy to the largest replica count with -1; we keep each list exactly
    // logcnt long, ordered by replica rank.
    for (int l = 0; l < placement.num_layers(); ++l) {
        const auto li = static_cast<std::size_t>(l);
        std::vector<std::vector<int>> lists(placement.logcnt[li].size());
        for (std::size_t e = 0; e < lists.size(); ++e)
            lists[e].assign(static_cast<std::size_t>(placement.logcnt[li][e]), -1);
        for (int p = 0; p < num_replicas; ++p) {
            const auto pi = static_cast<std::size_t>(p);
            lists[static_cast<std::size_t>(placement.phy2log[li][pi])]
                 [static_cast<std::size_t>(placement.phyrank[li][pi])] = p;
        }
        placement.log2phy.push_back(std::move(lists));
    }
    return placement;
}

ExpertPlacement contiguous_placement(int num_layers, int num_experts, int num_gpus) {
    if (num_layers < 1 || num_experts < 1 || num_gpus < 1 || num_experts % num_gpus != 0)
        throw std::invalid_argument(fmt::format(
            "contiguous placement: need positive counts and experts ({}) a multiple of GPUs ({}); {} layers",
            num_experts, num_gpus, num_layers));
    ExpertPlacement placement;
    placement.num_gpus = num_gpus;
    std::vector<int> identity(static_cast<std::size_t>(num_experts));
    std::iota(identity.begin(), identity.end(), 0);
    std::vector<std::vector<int>> lists(static_cast<std::size_t>(num_experts));
    for (int e = 0; e < num_experts; ++e) lists[static_cast<std::size_t>(e)] = {e};
    for (int l = 0; l < num_layers; ++l) {
        placement.phy2log.push_back(identity);
        placement.phyrank.emplace_back(static_cast<std::size_t>(num_experts), 0);
        placement.logcnt.emplace_back(static_cast<std::size_t>(num_experts), 1);
        placement.log2phy.push_back(lists);
    }
    return placement;
}

}  // namespace clustersim
