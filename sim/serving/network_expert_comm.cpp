// EP dispatch and combine times for serving instances from the network model's cached curves.
#include "sim/serving/network_expert_comm.hpp"

#include <utility>

namespace clustersim {

NetworkExpertComm::NetworkExpertComm(std::shared_ptr<const Topology> topology, ExpertCommCurveSpec shape)
    : topology_(std::move(topology)), fingerprint_(topology_fingerprint(*topology_)), shape_(shape) {}

std::shared_ptr<const ExpertCommCurve> NetworkExpertComm::curve(bool low_latency, bool dispatch) const {
    const std::size_t slot = 2 * static_cast<std::size_t>(low_latency) + static_cast<std::size_t>(dispatch);
    std::lock_guard lock(mutex_);
    if (!curves_[slot]) {
        ExpertCommCurveSpec spec = shape_;
        spec.mode = low_latency ? ExpertCommMode::low_latency : ExpertCommMode::normal;
        spec.phase = dispatch ? ExpertCommPhase::dispatch : ExpertCommPhase::combine;
        curves_[slot] = cached_expert_comm_curve(*topology_, fingerprint_, spec);
    }
    return curves_[slot];
}

ExpertCallTime NetworkExpertComm::call(bool low_latency, bool dispatch, double tokens_per_rank) const {
    const auto c = curve(low_latency, dispatch);
    return {c->at(tokens_per_rank), c->extrapolates(tokens_per_rank)};
}

nlohmann::ordered_json NetworkExpertComm::describe() const {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    std::lock_guard lock(mutex_);
    for (const auto& c : curves_) {
        if (!c) continue;
        const ExpertCommCurveSpec& s = c->spec();
        nlohmann::ordered_json anchors = nlohmann::ordered_json::array();
        for (const auto& [tokens, time] : c->anchors()) anchors.push_back({tokens, time.us()});
        out.push_back({{"mode", s.mode == ExpertCommMode::normal ? "normal" : "low_latency"},
                       {"direction", s.phase == ExpertCommPhase::dispatch ? "dispatch" : "combine"},
                       {"ep", s.ep},
                       {"experts", s.experts},
                       {"top_k", s.top_k},
                       {"node_limit", s.node_limit},
                       {"hidden", s.hidden},
                       {"dispatch_dtype", s.fp8_dispatch ? "fp8" : "bf16"},
                       {"sms", s.mode == ExpertCommMode::normal ? s.sms : 0},
                       {"rate_update_interval_us", expert_comm_rate_update_interval(s.mode).us()},
                       {"anchors_tokens_per_rank_us", anchors},
                       {"beyond_last_anchor", "extrapolated with the last segment's slope"}});
    }
    return out;
}

}  // namespace clustersim
