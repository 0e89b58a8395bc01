// EPLB: where each MoE layer's experts and their redundant replicas live on the GPUs.
//
// The algorithm is DeepSeek's Expert Parallelism Load Balancer (github.com/deepseek-ai/EPLB,
// eplb.py), rewritten here. Given per-expert loads it (1) packs expert groups onto nodes, (2)
// gives the busiest experts of each node extra replicas, (3) packs the node's replicas onto its
// GPUs, each step a greedy balanced packing. When the groups do not divide over the nodes it uses
// the "global" policy: the same steps with one group and one node, so replicas go anywhere.
//
// Everything runs in single precision because the reference does (`weight.float()`); with the
// same arithmetic and the tie rules below, orderings and so the maps match the reference bit for
// bit. Tie rules (the reference relies on PyTorch's behaviour; we make it explicit):
//   - packing visits items by load, heaviest first; equal loads in increasing item index (what a
//     stable sort gives, and what PyTorch's CPU sort gives for rows of up to 16 items);
//   - an item goes to the lightest pack that still has room; equal loads: the lowest pack index
//     (Python's min() returns the first minimum);
//   - each extra replica goes to the expert with the highest load per replica; equal: the lowest
//     expert index (torch.max over a dimension returns the first maximum).
#pragma once

#include <span>
#include <vector>

namespace clustersim {

// Loads of the logical experts: load[layer][expert], any non-negative unit (tokens, share).
using ExpertLoadMatrix = std::vector<std::vector<double>>;

// The result of packing n items into m packs of exactly n/m items each.
struct BalancedPacking {
    std::vector<int> pack;          // pack[item]: which pack the item went to
    std::vector<int> rank_in_pack;  // rank_in_pack[item]: its position in that pack, in packing order
};

// Greedy balanced packing: items heaviest first, each into the lightest pack with room.
// weight.size() must be a multiple of num_packs. With one item per pack, item i is pack i.
BalancedPacking balanced_packing(std::span<const float> weight, int num_packs);

// Replicas of logical experts making up num_physical physical experts.
struct ExpertReplication {
    std::vector<int> phy2log;  // phy2log[physical]: its logical expert; the first num_logical are 0..n-1
    std::vector<int> rank;     // rank[physical]: which replica of its logical expert it is (0 = first)
    std::vector<int> logcnt;   // logcnt[logical]: its number of replicas (at least 1)
};

// Adds num_physical - weight.size() replicas one by one, each to the expert whose load per replica
// is highest, which greedily minimizes the largest load of any replica.
ExpertReplication replicate_experts(std::span<const float> weight, int num_physical);

// Placement of every MoE layer's experts on the GPUs. Physical slot p lives on GPU
// p / physical_per_gpu(); GPUs are numbered node by node.
struct ExpertPlacement {
    int num_gpus = 0;
    std::vector<std::vector<int>> phy2log;               // [layer][physical slot] -> logical expert
    std::vector<std::vector<int>> phyrank;               // [layer][physical slot] -> replica rank
    std::vector<std::vector<std::vector<int>>> log2phy;  // [layer][logical][replica rank] -> physical slot
    std::vector<std::vector<int>> logcnt;                // [layer][logical] -> number of replicas

    int num_layers() const { return static_cast<int>(phy2log.size()); }
    int num_physical() const { return phy2log.empty() ? 0 : static_cast<int>(phy2log.front().size()); }
    int num_logical() const { return logcnt.empty() ? 0 : static_cast<int>(logcnt.front().size()); }
    int physical_per_gpu() const { return num_gpus > 0 ? num_physical() / num_gpus : 0; }
    int gpu_of(int physical_slot) const { return physical_slot / physical_per_gpu(); }
};

// EPLB's hierarchical policy: groups of experts (DeepSeek-V3's routing groups) are kept whole on
// one node, so group-limited routing also limits the nodes a token visits. Requires
// experts % num_groups == 0, num_groups % num_nodes == 0, num_gpus % num_nodes == 0 and
// num_physical % num_gpus == 0. Returns phy2log, phyrank and logcnt (log2phy is left empty).
ExpertPlacement rebalance_experts_hierarchical(const ExpertLoadMatrix& weight, int num_physical, int num_groups,
                                               int num_nodes, int num_gpus);

// EPLB's entry point: the hierarchical policy when num_groups divides over num_nodes, else the
// global policy (the hierarchical one with one group and one node). Fills log2phy too, each list
// ordered by replica rank. Throws std::invalid_argument naming any unmet requirement.
ExpertPlacement rebalance_experts(const ExpertLoadMatrix& weight, int num_replicas, int num_groups, int num_nodes,
                                  int num_gpus);

// The placement without EPLB: expert e in slot e, experts spread over the GPUs in order, no
// replicas. num_experts must be a multiple of num_gpus.
ExpertPlacement contiguous_placement(int num_layers, int num_experts, int num_gpus);

}  // namespace clustersim
