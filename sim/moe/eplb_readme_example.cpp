// The EPLB README example (validation row X2a of ../shared/validation/published.csv).
#include "sim/moe/eplb_readme_example.hpp"

#include "sim/moe/gpu_expert_load.hpp"

namespace clustersim {

EplbReadmeExample eplb_readme_example() {
    EplbReadmeExample example;
    // Values as published in the EPLB README and copied into row X2a.
    example.weight = {{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                      {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
    example.expected_phy2log = {{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}};
    return example;
}

std::vector<double> eplb_readme_example_imbalance() {
    const EplbReadmeExample example = eplb_readme_example();
    // The imbalance follows from the published map alone: replica counts are how often each
    // expert appears in it.
    ExpertPlacement placement;
    placement.num_gpus = example.num_gpus;
    placement.phy2log = example.expected_phy2log;
    for (const auto& row : example.expected_phy2log) {
        std::vector<int> count(example.weight.front().size(), 0);
        for (const int e : row) ++count[static_cast<std::size_t>(e)];
        placement.logcnt.push_back(count);
    }
    std::vector<double> imbalance;
    for (int l = 0; l < placement.num_layers(); ++l)
        imbalance.push_back(max_over_mean(gpu_loads(example.weight[static_cast<std::size_t>(l)], placement, l)));
    return imbalance;
}

}  // namespace clustersim
