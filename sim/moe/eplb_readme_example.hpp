// The worked example of the EPLB README (github.com/deepseek-ai/EPLB), validation row X2a.
#pragma once

#include "sim/moe/eplb_placement.hpp"

#include <vector>

namespace clustersim {

// Inputs and the published physical-to-logical map of the example: 2 layers x 12 experts,
// 16 replicas, 4 groups, 2 nodes, 8 GPUs (hierarchical policy).
struct EplbReadmeExample {
    ExpertLoadMatrix weight;
    int num_replicas = 16;
    int num_groups = 4;
    int num_nodes = 2;
    int num_gpus = 8;
    std::vector<std::vector<int>> expected_phy2log;  // [layer][physical slot], from the README
};

EplbReadmeExample eplb_readme_example();

// Per layer, the per-GPU load max/mean when the example's weights are the loads, placed by the
// README's map (each replica taking an equal share): what the map implies for the busiest GPU.
std::vector<double> eplb_readme_example_imbalance();

}  // namespace clustersim
