// NetworkExpertComm: an instance's EP dispatch and combine times for the serving cost model, read from
// the flow-level network model's DeepEP curves (sim/network/expert_comm_curve.hpp).
#pragma once

#include "sim/network/expert_comm_curve.hpp"
#include "sim/serving/batch_cost_model.hpp"

#include <array>
#include <memory>
#include <mutex>
#include <string>

namespace clustersim {

class NetworkExpertComm : public ExpertCommTimes {
public:
    // `shape`: the EP group and model shape; its mode and phase are chosen per call.
    NetworkExpertComm(std::shared_ptr<const Topology> topology, ExpertCommCurveSpec shape);

    ExpertCallTime call(bool low_latency, bool dispatch, double tokens_per_rank) const override;
    // Low-latency calls up to the kernels' limit; those beyond the curve's last anchor are extrapolated.
    double low_latency_max_tokens_per_rank() const override { return kLowLatencyKernelMaxTokensPerRank; }
    // Per curve used so far: its key and its anchors (tokens per rank, microseconds).
    nlohmann::ordered_json describe() const override;

    // The curve for (low_latency, dispatch), from the process-wide cache.
    std::shared_ptr<const ExpertCommCurve> curve(bool low_latency, bool dispatch) const;

private:
    std::shared_ptr<const Topology> topology_;
    std::string fingerprint_;
    ExpertCommCurveSpec shape_;
    mutable std::mutex mutex_;
    mutable std::array<std::shared_ptr<const ExpertCommCurve>, 4> curves_;  // by 2 x low_latency + dispatch
};

}  // namespace clustersim
