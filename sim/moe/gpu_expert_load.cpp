// Expected and sampled per-GPU expert load; see gpu_expert_load.hpp.
#include "sim/moe/gpu_expert_load.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace clustersim {
namespace {

void check_layer(const ExpertPlacement& placement, int layer, int experts) {
    if (layer < 0 || layer >= placement.num_layers())
        throw std::out_of_range(
            fmt::format("expert load: layer {} outside the placement's {} layers", layer, placement.num_layers()));
    if (experts != placement.num_logical())
        throw std::invalid_argument(fmt::format("expert load: {} expert loads for a placement of {} logical experts",
                                                experts, placement.num_logical()));
    if (placement.num_gpus < 1 || placement.num_physical() % placement.num_gpus != 0)
        throw std::invalid_argument(fmt::format("expert load: {} physical experts do not split over {} GPUs",
                                                placement.num_physical(), placement.num_gpus));
}

void check_batch(std::int64_t tokens, int top_k, int experts) {
    if (tokens < 0) throw std::invalid_argument(fmt::format("expert load: negative token count {}", tokens));
    if (top_k < 1 || top_k > experts)
        throw std::invalid_argument(
            fmt::format("expert load: top-k {} must be in 1..{} (the experts)", top_k, experts));
}

}  // namespace

std::vector<double> selection_probabilities(std::span<const double> popularity, int top_k) {
    const int experts = static_cast<int>(popularity.size());
    check_batch(0, top_k, experts);
    for (std::size_t e = 0; e < popularity.size(); ++e)
        if (!std::isfinite(popularity[e]) || popularity[e] < 0)
            throw std::invalid_argument(fmt::format(
                "expert load: expert {} has popularity {}, not a finite non-negative number", e, popularity[e]));
    const auto positive = std::count_if(popularity.begin(), popularity.end(), [](double p) { return p > 0; });
    if (positive < top_k)
        throw std::invalid_argument(fmt::format(
            "expert load: only {} experts have positive popularity; top-{} routing needs {}", positive, top_k, top_k));
    std::vector<double> pi(popularity.size(), 0.0);
    std::vector<bool> capped(popularity.size(), false);
    int num_capped = 0;
    // Water-filling: scale the uncapped experts to the selections left, cap any that reach 1,
    // repeat. Each pass caps at least one expert or ends, so at most top_k passes.
    while (true) {
        double mass = 0;
        for (std::size_t e = 0; e < popularity.size(); ++e)
            if (!capped[e]) mass += popularity[e];
        const double scale = (top_k - num_capped) / mass;
        bool newly_capped = false;
        for (std::size_t e = 0; e < popularity.size(); ++e)
            if (!capped[e] && popularity[e] * scale >= 1.0) {
                capped[e] = true;
                ++num_capped;
                newly_capped = true;
            }
        if (!newly_capped) {
            for (std::size_t e = 0; e < popularity.size(); ++e) pi[e] = capped[e] ? 1.0 : popularity[e] * scale;
            return pi;
        }
    }
}

std::vector<double> gpu_loads(std::span<const double> expert_load, const ExpertPlacement& placement, int layer) {
    check_layer(placement, layer, static_cast<int>(expert_load.size()));
    const auto& phy2log = placement.phy2log[static_cast<std::size_t>(layer)];
    const auto& logcnt = placement.logcnt[static_cast<std::size_t>(layer)];
    std::vector<double> load(static_cast<std::size_t>(placement.num_gpus), 0.0);
    for (int p = 0; p < placement.num_physical(); ++p) {
        const auto e = static_cast<std::size_t>(phy2log[static_cast<std::size_t>(p)]);
        load[static_cast<std::size_t>(placement.gpu_of(p))] += expert_load[e] / logcnt[e];
    }
    return load;
}

std::vector<double> expected_gpu_tokens(const ExpertRoutingModel& model, const ExpertPlacement& placement, int layer,
                                        std::int64_t tokens, int top_k) {
    check_batch(tokens, top_k, model.num_experts());
    std::vector<double> per_expert = selection_probabilities(model.popularity(layer), top_k);
    for (double& v : per_expert) v *= static_cast<double>(tokens);
    return gpu_loads(per_expert, placement, layer);
}

std::vector<int> sample_token_experts(const ExpertRoutingModel& model, int layer, std::int64_t tokens, int top_k,
                                      RngStream& rng) {
    const int experts = model.num_experts();
    check_batch(tokens, top_k, experts);
    const std::vector<double> pi = selection_probabilities(model.popularity(layer), top_k);
    std::vector<int> order(static_cast<std::size_t>(experts));
    std::iota(order.begin(), order.end(), 0);
    std::vector<int> chosen;
    chosen.reserve(static_cast<std::size_t>(tokens * top_k));
    std::vector<int> picked;
    for (std::int64_t t = 0; t < tokens; ++t) {
        // A fresh uniform order per token; shuffling the previous order keeps it uniform.
        for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.uniform_int(i + 1)]);
        // Systematic sampling: the points u, u+1, ..., u+k-1 on the line where the experts lie
        // end to end, each as long as its inclusion probability (at most 1, so none is hit twice).
        double target = rng.uniform01();
        double end = 0;
        picked.clear();
        for (const int e : order) {
            end += pi[static_cast<std::size_t>(e)];
            if (static_cast<int>(picked.size()) < top_k && target < end) {
                picked.push_back(e);
                target += 1.0;
            }
        }
        // Rounding can leave the last point just past the end; give it to the last unpicked
        // expert with positive probability.
        for (auto it = order.rbegin(); static_cast<int>(picked.size()) < top_k && it != order.rend(); ++it)
            if (pi[static_cast<std::size_t>(*it)] > 0 && std::find(picked.begin(), picked.end(), *it) == picked.end())
                picked.push_back(*it);
        chosen.insert(chosen.end(), picked.begin(), picked.end());
    }
    return chosen;
}

std::vector<std::int64_t> gpu_tokens(std::span<const int> token_experts, const ExpertPlacement& placement, int layer) {
    check_layer(placement, layer, placement.num_logical());
    const auto& phy2log = placement.phy2log[static_cast<std::size_t>(layer)];
    std::vector<std::vector<int>> replicas(static_cast<std::size_t>(placement.num_logical()));
    for (int p = 0; p < placement.num_physical(); ++p)
        replicas[static_cast<std::size_t>(phy2log[static_cast<std::size_t>(p)])].push_back(p);
    std::vector<std::size_t> next(replicas.size(), 0);
    std::vector<std::int64_t> count(static_cast<std::size_t>(placement.num_gpus), 0);
    for (const int e : token_experts) {
        if (e < 0 || e >= placement.num_logical())
            throw std::out_of_range(
                fmt::format("expert load: expert {} outside the placement's {} experts", e, placement.num_logical()));
        const auto& list = replicas[static_cast<std::size_t>(e)];
        if (list.empty())
            throw std::invalid_argument(fmt::format("expert load: expert {} has no replica in layer {}", e, layer));
        auto& n = next[static_cast<std::size_t>(e)];
        ++count[static_cast<std::size_t>(placement.gpu_of(list[n]))];
        n = (n + 1) % list.size();
    }
    return count;
}

std::vector<std::int64_t> sampled_gpu_tokens(const ExpertRoutingModel& model, const ExpertPlacement& placement,
                                             int layer, std::int64_t tokens, int top_k, RngStream& rng) {
    check_layer(placement, layer, model.num_experts());
    return gpu_tokens(sample_token_experts(model, layer, tokens, top_k, rng), placement, layer);
}

double max_over_mean(std::span<const double> load) {
    if (load.empty()) throw std::invalid_argument("max_over_mean: no loads");
    const double total = std::accumulate(load.begin(), load.end(), 0.0);
    if (!(total > 0)) return 1.0;
    return *std::max_element(load.begin(), load.end()) / (total / static_cast<double>(load.size()));
}

double max_over_mean(std::span<const std::int64_t> load) {
    const std::vector<double> as_double(load.begin(), load.end());
    return max_over_mean(std::span<const double>(as_double));
}

}  // namespace clustersim
