// A serving pool's expert load over a run: cost models per imbalance level, and the hold while weights move.
#include "sim/serving/pool_expert_load.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace clustersim {

ImbalanceCostModels::ImbalanceCostModels(ModelSpec model, std::shared_ptr<const KernelCostModel> kernels,
                                         ExecutionCostOptions base)
    : model_(std::move(model)), kernels_(std::move(kernels)), base_(std::move(base)) {}

double ImbalanceCostModels::level_of(double imbalance) {
    return static_cast<double>(std::llround(imbalance / kImbalanceStep)) * kImbalanceStep;
}

ExecutionBatchCostModel& ImbalanceCostModels::at(double imbalance) {
    const long long index = std::llround(imbalance / kImbalanceStep);
    auto it = models_.find(index);
    if (it == models_.end()) {
        ExecutionCostOptions o = base_;
        o.expert_imbalance = level_of(imbalance);
        it = models_.emplace(index, Level{std::make_unique<ExecutionBatchCostModel>(model_, kernels_, o), 0.0}).first;
    }
    return *it->second.model;
}

void ImbalanceCostModels::add_priced(double imbalance, Time t) {
    const auto it = models_.find(std::llround(imbalance / kImbalanceStep));
    if (it != models_.end()) it->second.priced_s += t.seconds();
}

nlohmann::ordered_json ImbalanceCostModels::provenance() const {
    nlohmann::ordered_json j;
    if (models_.empty()) return ExecutionBatchCostModel(model_, kernels_, base_).provenance();
    double total_s = 0;
    for (const auto& [index, level] : models_) total_s += level.priced_s;
    std::size_t shapes = 0;
    std::uint64_t lookups = 0;
    double mean_imbalance = 0, mean_noise = 0;
    nlohmann::ordered_json shares = nlohmann::ordered_json::object();
    nlohmann::ordered_json ep_shapes = nlohmann::ordered_json::object();  // shape counts, summed over the levels
    for (const auto& [index, level] : models_) {
        const nlohmann::ordered_json p = level.model->provenance();
        if (j.empty()) j = p;
        shapes += level.model->distinct_shapes();
        lookups += level.model->lookups();
        const double weight = total_s > 0 ? level.priced_s / total_s : 1.0 / static_cast<double>(models_.size());
        mean_imbalance += weight * p["expert_imbalance"].get<double>();
        if (p.contains("routing_noise")) mean_noise += weight * p["routing_noise"]["mean_factor"].get<double>();
        for (const auto& [kind, share] : p["time_shares"].items()) {
            const double prior = shares.contains(kind) ? shares[kind].get<double>() : 0.0;
            shares[kind] = prior + weight * share.get<double>();
        }
        if (p.contains("ep_communication"))
            for (const auto& [key, value] : p["ep_communication"].items())
                if (key.rfind("shapes_", 0) == 0)
                    ep_shapes[key] = (ep_shapes.contains(key) ? ep_shapes[key].get<std::uint64_t>() : 0) +
                                     value.get<std::uint64_t>();
    }
    j["expert_imbalance"] = mean_imbalance;
    // Each level's routing-noise factor and EP shape counts, not the first level's alone.
    if (j.contains("routing_noise")) j["routing_noise"]["mean_factor"] = mean_noise;
    for (const auto& [key, value] : ep_shapes.items()) j["ep_communication"][key] = value;
    j["expert_imbalance_levels"] = models_.size();
    j["distinct_shapes"] = shapes;
    j["lookups"] = lookups;
    j["time_shares"] = shares;
    j["note"] =
        "the expert imbalance changes over the run (expert_load drift and rebalance): iterations are priced at the "
        "imbalance when they start, rounded to a grid of 0.005, one memo per level; expert_imbalance is the mean "
        "level, routing_noise.mean_factor the levels' factors and time_shares their shares, weighted by the "
        "iteration time each level priced; EP shape counts are summed over the levels";
    return j;
}

PoolExpertLoad::PoolExpertLoad(const Simulator& sim, std::shared_ptr<ImbalanceCostModels> models,
                               ExpertLoadTimeline timeline)
    : sim_(sim), models_(std::move(models)), timeline_(std::move(timeline)) {
    if (!models_) throw std::invalid_argument("PoolExpertLoad needs its cost models");
}

Time PoolExpertLoad::iteration_time(const BatchWork& work) {
    timeline_.advance_to(sim_.now());
    const double imbalance = timeline_.imbalance();
    const Time t = models_->at(imbalance).iteration_time(work);
    models_->add_priced(imbalance, t);
    return t;
}

Time PoolExpertLoad::available_from(Time now) {
    timeline_.advance_to(now);
    return std::max(now, timeline_.paused_until());
}

}  // namespace clustersim
