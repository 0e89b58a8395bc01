// Expert load over time: popularity that drifts, EPLB rerun periodically, and the pause while expert weights move.
//
// A deployment's expert placement is computed from the loads it saw; real routing popularity drifts,
// so a placement grows stale and EPLB is rerun (the DeepSeek-V3 technical report, arXiv:2412.19437,
// section 3.4.1, detects high-load experts from statistics of the online service and adjusts the
// redundant experts periodically, e.g. every 10 minutes). ExpertLoadTimeline follows one pool:
//   - drift: every drift interval, a share of each layer's experts trade popularities (random pairs
//     swapped), so hot experts move and the placement computed earlier no longer fits;
//   - rebalance: every rebalance interval, EPLB (eplb_placement.hpp) is rerun from the loads averaged
//     over the time since the previous rebalance, and the pool pauses while each GPU fetches the
//     weights of the experts it newly holds; the busiest GPU (the most bytes) sets the pause.
// The imbalance is the busiest GPU's expected routed selections over the mean, averaged over the MoE
// layers, as the static path computes it (gpu_expert_load.hpp). Everything is lazy and deterministic:
// advance_to(t) applies every step due at or before t in time order (at equal times a drift before a
// rebalance), drawing from the timeline's own RngStream, so the result does not depend on when it is
// asked.
#pragma once

#include "sim/core/rng_stream.hpp"
#include "sim/core/units.hpp"
#include "sim/moe/eplb_placement.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace clustersim {

struct ExpertDriftSpec {
    Time interval;     // between drift steps; positive
    double share = 0;  // of each layer's experts that trade popularities at each step, 0..1
};

struct ExpertRebalanceSpec {
    Time interval;  // between EPLB reruns; positive
};

// What rebalance_experts() needs besides the loads: the pool's EPLB shape.
struct EplbShape {
    int num_replicas = 0;  // physical experts per layer: routed + redundant
    int num_groups = 1;    // the model's expert groups (hierarchical policy when they divide over the nodes)
    int num_nodes = 1;     // nodes the EP group spans
    int num_gpus = 0;      // EP ranks
};

// One drift step on one layer: floor(share x experts / 2) pairs of distinct experts, drawn uniformly
// (a partial Fisher-Yates shuffle from `rng`), swap their popularities. share 0 draws nothing.
void drift_popularity(std::vector<double>& popularity, double share, RngStream& rng);

// Per GPU, the logical experts it holds in `after` and in none of its slots in `before`, summed over
// the layers: the experts whose weights it must fetch. A replica of an expert the GPU already holds
// is copied locally and not counted. Both placements need the same layers, slots and GPUs.
std::vector<std::int64_t> experts_gained_per_gpu(const ExpertPlacement& before, const ExpertPlacement& after);

// Mean over the layers of the busiest GPU's expected routed selections over the mean, with top-k
// routing (expected_gpu_tokens of gpu_expert_load.hpp); popularity[layer] sums to 1.
double placement_imbalance(const ExpertLoadMatrix& popularity, const ExpertPlacement& placement, int top_k);

struct ExpertLoadTimelineSpec {
    ExpertLoadMatrix popularity;  // at time zero: [MoE layer][logical expert], each layer summing to 1
    ExpertPlacement placement;    // at time zero
    int top_k = 1;
    std::optional<ExpertDriftSpec> drift;
    std::optional<ExpertRebalanceSpec> rebalance;
    EplbShape eplb;             // for rebalances
    Bytes expert_bytes;         // weights of one expert of one layer on one GPU (EP rank)
    Bandwidth fetch_bandwidth;  // at which one GPU fetches expert weights; positive with a rebalance
};

enum class ExpertLoadEventKind { start, drift, rebalance };
const char* to_string(ExpertLoadEventKind kind);

// One step of the timeline and the imbalance right after it.
struct ExpertLoadEvent {
    Time at;
    ExpertLoadEventKind kind = ExpertLoadEventKind::start;
    double imbalance = 1.0;
    // Rebalances only: the busiest GPU's fetched bytes, all GPUs' together, and the pause they cause.
    Bytes busiest_gpu_bytes;
    Bytes bytes_moved;
    Time pause;
};

struct ExpertLoadTimelineSummary {
    double imbalance_initial = 1.0;
    double imbalance_mean = 1.0;  // time-weighted over [0, end]
    double imbalance_max = 1.0;   // over every state reached in [0, end]
    double imbalance_final = 1.0;
    std::int64_t drift_steps = 0;
    std::int64_t rebalances = 0;
    Time pause_total;               // time the pool was held within [0, end], overlapping pauses counted once
    Bytes bytes_moved;              // all GPUs of one instance, over every rebalance
    Bytes busiest_gpu_bytes_total;  // summed over rebalances
};

class ExpertLoadTimeline {
public:
    // Throws std::invalid_argument naming the problem (shapes that disagree, a share outside 0..1, a
    // non-positive interval or, with a rebalance, a non-positive fetch bandwidth).
    ExpertLoadTimeline(ExpertLoadTimelineSpec spec, RngStream rng);

    // Applies every drift step and rebalance due at or before t; t never goes back.
    void advance_to(Time t);
    Time now() const { return now_; }
    double imbalance() const { return imbalance_; }
    // The end of the latest pause (zero before any): no iteration of the pool starts before it.
    Time paused_until() const { return paused_until_; }
    const ExpertLoadMatrix& popularity() const { return popularity_; }
    const ExpertPlacement& placement() const { return placement_; }
    // Every step so far, the start first.
    const std::vector<ExpertLoadEvent>& events() const { return events_; }
    // The statistics over [0, end]; advances to end first if it lies ahead (an earlier end is fine).
    ExpertLoadTimelineSummary summary(Time end);

private:
    void close_segment(Time at);  // adds the popularity held since the last step to the load integral
    void drift_step(Time at);
    void rebalance_step(Time at);

    ExpertLoadTimelineSpec spec_;
    RngStream rng_;
    ExpertLoadMatrix popularity_;
    ExpertPlacement placement_;
    double imbalance_ = 1.0;
    Time now_;            // the latest time asked about
    Time segment_start_;  // when the popularity last changed (or the last rebalance)
    Time next_drift_, next_rebalance_;
    ExpertLoadMatrix load_integral_;  // popularity x seconds since the last rebalance
    Time last_rebalance_;
    Time paused_until_;
    std::vector<ExpertLoadEvent> events_;
};

}  // namespace clustersim
