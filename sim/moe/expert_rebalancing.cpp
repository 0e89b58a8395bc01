// Expert popularity drift, periodic EPLB reruns and the weight-fetch pause they cost (see the header).
#include "sim/moe/expert_rebalancing.hpp"

#include "sim/moe/gpu_expert_load.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace clustersim {
namespace {

// Popularity as given, for expected_gpu_tokens (which takes a routing model).
class MatrixRouting final : public ExpertRoutingModel {
public:
    explicit MatrixRouting(const ExpertLoadMatrix& m) : m_(m) {}
    std::string name() const override { return "matrix"; }
    int num_experts() const override { return m_.empty() ? 0 : static_cast<int>(m_.front().size()); }
    std::vector<double> popularity(int layer) const override { return m_[static_cast<std::size_t>(layer)]; }

private:
    const ExpertLoadMatrix& m_;
};

// Large enough a batch for the expected counts to carry no rounding (as the serving scenario's).
constexpr std::int64_t kExpectedTokens = 1'000'000;

}  // namespace

const char* to_string(ExpertLoadEventKind kind) {
    switch (kind) {
        case ExpertLoadEventKind::start:
            return "start";
        case ExpertLoadEventKind::drift:
            return "drift";
        case ExpertLoadEventKind::rebalance:
            return "rebalance";
    }
    return "?";
}

void drift_popularity(std::vector<double>& popularity, double share, RngStream& rng) {
    if (!(share >= 0.0 && share <= 1.0))
        throw std::invalid_argument(fmt::format("drift share {} is outside 0..1", share));
    const auto n = popularity.size();
    const auto pairs = static_cast<std::size_t>(std::floor(share * static_cast<double>(n))) / 2;
    if (pairs == 0) return;
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    // The first 2 x pairs entries of a partial Fisher-Yates shuffle: distinct experts, uniformly drawn.
    for (std::size_t i = 0; i < 2 * pairs; ++i) {
        const auto j = i + static_cast<std::size_t>(rng.uniform_int(n - i));
        std::swap(order[i], order[j]);
    }
    for (std::size_t p = 0; p < pairs; ++p) std::swap(popularity[order[2 * p]], popularity[order[2 * p + 1]]);
}

std::vector<std::int64_t> experts_gained_per_gpu(const ExpertPlacement& before, const ExpertPlacement& after) {
    if (before.num_layers() != after.num_layers() || before.num_physical() != after.num_physical() ||
        before.num_gpus != after.num_gpus || after.num_gpus <= 0)
        throw std::invalid_argument(
            fmt::format("placements differ in shape: {} layers x {} slots on {} GPUs before, {} x {} on {} after",
                        before.num_layers(), before.num_physical(), before.num_gpus, after.num_layers(),
                        after.num_physical(), after.num_gpus));
    const int gpus = after.num_gpus;
    const int per_gpu = after.physical_per_gpu();
    std::vector<std::int64_t> gained(static_cast<std::size_t>(gpus), 0);
    std::vector<int> held;
    for (int l = 0; l < after.num_layers(); ++l) {
        const auto& old_row = before.phy2log[static_cast<std::size_t>(l)];
        const auto& new_row = after.phy2log[static_cast<std::size_t>(l)];
        for (int g = 0; g < gpus; ++g) {
            const auto first = static_cast<std::ptrdiff_t>(g) * per_gpu;
            held.assign(old_row.begin() + first, old_row.begin() + first + per_gpu);
            std::sort(held.begin(), held.end());
            std::vector<int> fetched;
            for (auto it = new_row.begin() + first; it != new_row.begin() + first + per_gpu; ++it) {
                if (std::binary_search(held.begin(), held.end(), *it)) continue;
                // Two new replicas of one expert on one GPU: fetched once, copied locally.
                if (std::find(fetched.begin(), fetched.end(), *it) != fetched.end()) continue;
                fetched.push_back(*it);
            }
            gained[static_cast<std::size_t>(g)] += static_cast<std::int64_t>(fetched.size());
        }
    }
    return gained;
}

double placement_imbalance(const ExpertLoadMatrix& popularity, const ExpertPlacement& placement, int top_k) {
    if (popularity.empty()) return 1.0;
    const MatrixRouting routing(popularity);
    double sum = 0;
    const int layers = static_cast<int>(popularity.size());
    for (int l = 0; l < layers; ++l)
        sum += max_over_mean(expected_gpu_tokens(routing, placement, l, kExpectedTokens, top_k));
    return sum / layers;
}

ExpertLoadTimeline::ExpertLoadTimeline(ExpertLoadTimelineSpec spec, RngStream rng)
    : spec_(std::move(spec)), rng_(rng), popularity_(spec_.popularity), placement_(spec_.placement) {
    if (popularity_.empty() || placement_.num_layers() != static_cast<int>(popularity_.size()))
        throw std::invalid_argument(fmt::format("the popularity has {} layers and the placement {}", popularity_.size(),
                                                placement_.num_layers()));
    if (spec_.drift) {
        if (!(spec_.drift->interval > Time::zero())) throw std::invalid_argument("the drift interval must be positive");
        if (!(spec_.drift->share >= 0.0 && spec_.drift->share <= 1.0))
            throw std::invalid_argument(fmt::format("drift share {} is outside 0..1", spec_.drift->share));
    }
    if (spec_.rebalance) {
        if (!(spec_.rebalance->interval > Time::zero()))
            throw std::invalid_argument("the rebalance interval must be positive");
        if (!(spec_.fetch_bandwidth > Bandwidth{}))
            throw std::invalid_argument("rebalancing needs a positive bandwidth to fetch expert weights at");
    }
    next_drift_ = spec_.drift ? spec_.drift->interval : Time::max();
    next_rebalance_ = spec_.rebalance ? spec_.rebalance->interval : Time::max();
    load_integral_.assign(popularity_.size(), std::vector<double>(popularity_.front().size(), 0.0));
    imbalance_ = placement_imbalance(popularity_, placement_, spec_.top_k);
    events_.push_back({Time::zero(), ExpertLoadEventKind::start, imbalance_, Bytes{}, Bytes{}, Time::zero()});
}

void ExpertLoadTimeline::close_segment(Time at) {
    // The popularity is constant between steps: its integral grows only when a step ends a segment,
    // so asking the timeline often (every iteration) costs nothing until a step is due.
    const double dt = (at - segment_start_).seconds();
    if (spec_.rebalance && dt > 0)
        for (std::size_t l = 0; l < popularity_.size(); ++l)
            for (std::size_t e = 0; e < popularity_[l].size(); ++e) load_integral_[l][e] += popularity_[l][e] * dt;
    segment_start_ = at;
}

void ExpertLoadTimeline::drift_step(Time at) {
    for (auto& layer : popularity_) drift_popularity(layer, spec_.drift->share, rng_);
    imbalance_ = placement_imbalance(popularity_, placement_, spec_.top_k);
    events_.push_back({at, ExpertLoadEventKind::drift, imbalance_, Bytes{}, Bytes{}, Time::zero()});
}

void ExpertLoadTimeline::rebalance_step(Time at) {
    // EPLB from the loads averaged over the time since the previous rebalance.
    const double window = (at - last_rebalance_).seconds();
    ExpertLoadMatrix mean = load_integral_;
    for (auto& layer : mean)
        for (double& v : layer) v /= window;
    ExpertPlacement next = rebalance_experts(mean, spec_.eplb.num_replicas, spec_.eplb.num_groups, spec_.eplb.num_nodes,
                                             spec_.eplb.num_gpus);
    const std::vector<std::int64_t> gained = experts_gained_per_gpu(placement_, next);
    std::int64_t busiest = 0, total = 0;
    for (std::int64_t g : gained) {
        busiest = std::max(busiest, g);
        total += g;
    }
    const Bytes busiest_bytes = spec_.expert_bytes * static_cast<double>(busiest);
    const Bytes moved = spec_.expert_bytes * static_cast<double>(total);
    // Every GPU fetches at once over its own link; the pool resumes when the busiest one is done.
    const Time pause = busiest > 0 ? busiest_bytes / spec_.fetch_bandwidth : Time::zero();
    paused_until_ = std::max(paused_until_, at + pause);
    placement_ = std::move(next);
    imbalance_ = placement_imbalance(popularity_, placement_, spec_.top_k);
    for (auto& layer : load_integral_) std::fill(layer.begin(), layer.end(), 0.0);
    last_rebalance_ = at;
    events_.push_back({at, ExpertLoadEventKind::rebalance, imbalance_, busiest_bytes, moved, pause});
}

void ExpertLoadTimeline::advance_to(Time t) {
    if (t < now_)
        throw std::logic_error(
            fmt::format("the expert load timeline cannot go back from {} to {}", to_string(now_), to_string(t)));
    while (std::min(next_drift_, next_rebalance_) <= t) {
        // At equal times the drift comes first; it has had no time to weigh in the rebalance's mean loads, but
        // the new placement's imbalance is under the drifted popularity.
        if (next_drift_ <= next_rebalance_) {
            const Time at = next_drift_;
            close_segment(at);
            drift_step(at);
            next_drift_ = at + spec_.drift->interval;
        } else {
            const Time at = next_rebalance_;
            close_segment(at);
            rebalance_step(at);
            next_rebalance_ = at + spec_.rebalance->interval;
        }
    }
    now_ = t;
}

ExpertLoadTimelineSummary ExpertLoadTimeline::summary(Time end) {
    if (end > now_) advance_to(end);
    // From the events, so that a timeline asked about a later time (an instance waking after the run's
    // last request left) still reports [0, end] exactly.
    ExpertLoadTimelineSummary s;
    s.imbalance_initial = events_.front().imbalance;
    double integral_s = 0;
    Time held_until;  // the end of the latest pause so far, clipped to end
    for (std::size_t i = 0; i < events_.size() && events_[i].at <= end; ++i) {
        const ExpertLoadEvent& e = events_[i];
        const Time next = i + 1 < events_.size() ? std::min(events_[i + 1].at, end) : end;
        integral_s += e.imbalance * (std::max(next, e.at) - e.at).seconds();
        s.imbalance_max = i == 0 ? e.imbalance : std::max(s.imbalance_max, e.imbalance);
        s.imbalance_final = e.imbalance;
        if (e.kind == ExpertLoadEventKind::drift) ++s.drift_steps;
        if (e.kind != ExpertLoadEventKind::rebalance) continue;
        ++s.rebalances;
        s.bytes_moved += e.bytes_moved;
        s.busiest_gpu_bytes_total += e.busiest_gpu_bytes;
        const Time until = std::min(e.at + e.pause, end);
        if (until > held_until) {
            s.pause_total += until - std::max(held_until, e.at);
            held_until = until;
        }
    }
    s.imbalance_mean = end > Time::zero() ? integral_s / end.seconds() : s.imbalance_initial;
    return s;
}

}  // namespace clustersim
