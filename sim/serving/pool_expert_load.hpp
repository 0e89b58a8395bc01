// A serving pool's expert load over a run: iterations priced at the imbalance of the moment, and the pool held while
// expert weights move.
//
// The expert-load logic (drift, EPLB reruns, the weight-fetch pause) is ExpertLoadTimeline in
// sim/moe/expert_rebalancing.hpp; this is its hook-up to the serving simulator. ImbalanceCostModels
// keeps one ExecutionBatchCostModel per imbalance level (levels on a grid of kImbalanceStep, so a
// drifting imbalance reuses the memos of levels it visited), shared by the runs of a scenario (a load
// search runs it many times). PoolExpertLoad is one pool's state in one run: a BatchCostModel that
// prices each iteration at the imbalance when it starts, and a PoolAvailability that holds the pool's
// instances until a rebalance's weights have arrived.
#pragma once

#include "sim/core/simulator.hpp"
#include "sim/moe/expert_rebalancing.hpp"
#include "sim/serving/batch_cost_model.hpp"
#include "sim/serving/serving_simulator.hpp"

#include <map>
#include <memory>

namespace clustersim {

class ImbalanceCostModels {
public:
    // Imbalance levels are multiples of this: a level is within 0.25% of the imbalance it stands for,
    // and the imbalance scales the rows of the routed-expert GEMMs (a modelling choice of resolution).
    static constexpr double kImbalanceStep = 0.005;

    // `base` is the pool's options; each level's model takes them with its expert_imbalance.
    ImbalanceCostModels(ModelSpec model, std::shared_ptr<const KernelCostModel> kernels, ExecutionCostOptions base);
    // The level an imbalance is priced at.
    static double level_of(double imbalance);
    // The model of imbalance's level (built on first use).
    ExecutionBatchCostModel& at(double imbalance);
    std::size_t levels() const { return models_.size(); }
    // The levels' provenance together: shapes and lookups summed, time shares weighted by the time each
    // level priced.
    nlohmann::ordered_json provenance() const;
    // Records that a level priced `t` of iteration time (for the weights of provenance()).
    void add_priced(double imbalance, Time t);

private:
    ModelSpec model_;
    std::shared_ptr<const KernelCostModel> kernels_;
    ExecutionCostOptions base_;
    struct Level {
        std::unique_ptr<ExecutionBatchCostModel> model;
        double priced_s = 0;
    };
    std::map<long long, Level> models_;  // by level index (imbalance / kImbalanceStep)
};

class PoolExpertLoad : public BatchCostModel, public PoolAvailability {
public:
    PoolExpertLoad(const Simulator& sim, std::shared_ptr<ImbalanceCostModels> models, ExpertLoadTimeline timeline);
    Time iteration_time(const BatchWork& work) override;
    nlohmann::ordered_json provenance() const override { return models_->provenance(); }
    Time available_from(Time now) override;
    ExpertLoadTimeline& timeline() { return timeline_; }

private:
    const Simulator& sim_;
    std::shared_ptr<ImbalanceCostModels> models_;
    ExpertLoadTimeline timeline_;
};

}  // namespace clustersim
