// Per-batch expert imbalance with routing noise; see batch_expert_imbalance.hpp.
#include "sim/moe/batch_expert_imbalance.hpp"

#include "sim/moe/gpu_expert_load.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace clustersim {
namespace {

// Standard normal CDF.
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Points of the trapezoid rule over the range where the maximum's distribution moves: its spacing
// is at most a few hundredths of the widest standard deviation, plenty for a curve this smooth.
constexpr int kIntegrationPoints = 512;
// Beyond this many standard deviations a normal's CDF is 0 or 1 in double precision (Phi(-8.5) ~ 1e-17).
constexpr double kTailSigmas = 8.5;
// Anchors of the memoized curve: 8 per doubling of the tokens, linear in log2(tokens) between them
// (the curve is smooth in log tokens: the noise falls as 1 / sqrt(tokens)).
constexpr double kAnchorsPerDoubling = 8.0;

}  // namespace

GpuSelectionMoments gpu_selection_moments(std::span<const double> popularity, const ExpertPlacement& placement,
                                          int layer, int top_k) {
    const std::vector<double> pi = selection_probabilities(popularity, top_k);
    if (layer < 0 || layer >= placement.num_layers())
        throw std::out_of_range(
            fmt::format("batch imbalance: layer {} outside the placement's {} layers", layer, placement.num_layers()));
    if (static_cast<int>(pi.size()) != placement.num_logical())
        throw std::invalid_argument(fmt::format("batch imbalance: {} expert popularities for a placement of {} experts",
                                                pi.size(), placement.num_logical()));
    const auto& phy2log = placement.phy2log[static_cast<std::size_t>(layer)];
    const auto& logcnt = placement.logcnt[static_cast<std::size_t>(layer)];
    const auto gpus = static_cast<std::size_t>(placement.num_gpus);
    // w[g][e]: the share of expert e's selections GPU g computes, kept sparse as (expert, share).
    std::vector<std::vector<std::pair<int, double>>> shares(gpus);
    for (int p = 0; p < placement.num_physical(); ++p) {
        const int e = phy2log[static_cast<std::size_t>(p)];
        auto& on_gpu = shares[static_cast<std::size_t>(placement.gpu_of(p))];
        const double w = 1.0 / logcnt[static_cast<std::size_t>(e)];
        auto it = std::find_if(on_gpu.begin(), on_gpu.end(), [e](const auto& s) { return s.first == e; });
        if (it == on_gpu.end())
            on_gpu.emplace_back(e, w);
        else
            it->second += w;
    }
    double total_d = 0;
    for (double p : pi) total_d += p * (1 - p);
    GpuSelectionMoments m;
    m.mean.assign(gpus, 0.0);
    m.variance.assign(gpus, 0.0);
    for (std::size_t g = 0; g < gpus; ++g) {
        double square = 0, linear = 0;
        for (const auto& [e, w] : shares[g]) {
            const double p = pi[static_cast<std::size_t>(e)];
            const double d = p * (1 - p);
            m.mean[g] += w * p;
            square += w * w * d;
            linear += w * d;
        }
        // Hajek's correction for sampling a fixed top_k without replacement (zero when every
        // expert is certain, D = 0).
        m.variance[g] = std::max(0.0, square - (total_d > 0 ? linear * linear / total_d : 0.0));
    }
    return m;
}

double expected_batch_imbalance(const GpuSelectionMoments& moments, std::int64_t tokens) {
    if (tokens < 1) throw std::invalid_argument(fmt::format("batch imbalance: {} tokens; need at least 1", tokens));
    const std::size_t gpus = moments.mean.size();
    if (gpus == 0 || moments.variance.size() != gpus)
        throw std::invalid_argument("batch imbalance: moments need one mean and one variance per GPU");
    const double t = static_cast<double>(tokens);
    double total = 0, top = 0, widest = 0;
    for (std::size_t g = 0; g < gpus; ++g) {
        total += moments.mean[g];
        top = std::max(top, moments.mean[g] * t);
        widest = std::max(widest, std::sqrt(moments.variance[g] * t));
    }
    const double mean = total * t / static_cast<double>(gpus);
    if (!(mean > 0)) return 1.0;
    if (widest == 0) return top / mean;
    // E[max] = L + integral from L to U of (1 - prod_g F_g(x)) dx, with L where the GPU of the largest
    // mean is almost surely above (so the part below L is negligible) and U where every GPU is below.
    const double low = top - kTailSigmas * widest;
    double high = top;
    struct Gpu {
        double mu, sigma;
    };
    std::vector<Gpu> relevant;  // GPUs that can be above `low`; the others never set the maximum
    for (std::size_t g = 0; g < gpus; ++g) {
        const double mu = moments.mean[g] * t, sigma = std::sqrt(moments.variance[g] * t);
        if (mu + kTailSigmas * sigma < low) continue;
        relevant.push_back({mu, sigma});
        high = std::max(high, mu + kTailSigmas * sigma);
    }
    const double step = (high - low) / (kIntegrationPoints - 1);
    double integral = 0;
    for (int i = 0; i < kIntegrationPoints; ++i) {
        const double x = low + step * i;
        double cdf = 1.0;
        for (const Gpu& g : relevant) {
            cdf *= g.sigma > 0 ? normal_cdf((x - g.mu) / g.sigma) : (x >= g.mu ? 1.0 : 0.0);
            if (cdf == 0) break;
        }
        const double weight = i == 0 || i == kIntegrationPoints - 1 ? 0.5 : 1.0;
        integral += weight * (1.0 - cdf) * step;
    }
    return (low + integral) / mean;
}

BatchImbalanceCurve::BatchImbalanceCurve(const ExpertLoadMatrix& popularity, const ExpertPlacement& placement,
                                         int top_k) {
    if (placement.num_layers() < 1) throw std::invalid_argument("batch imbalance: the placement has no layers");
    if (static_cast<int>(popularity.size()) != placement.num_layers())
        throw std::invalid_argument(fmt::format("batch imbalance: {} layers of popularity for a placement of {}",
                                                popularity.size(), placement.num_layers()));
    double sum = 0;
    for (int l = 0; l < placement.num_layers(); ++l) {
        GpuSelectionMoments m = gpu_selection_moments(popularity[static_cast<std::size_t>(l)], placement, l, top_k);
        sum += max_over_mean(m.mean);
        layers_.push_back(std::move(m));
    }
    expected_ = sum / placement.num_layers();
}

double BatchImbalanceCurve::at(std::int64_t tokens) const {
    tokens = std::max<std::int64_t>(tokens, 1);
    const double position = std::log2(static_cast<double>(tokens)) * kAnchorsPerDoubling;
    const auto below = static_cast<std::int64_t>(std::floor(position));
    const auto value_at_anchor = [this](std::int64_t anchor) {
        std::lock_guard lock(mutex_);
        if (auto it = memo_.find(anchor); it != memo_.end()) return it->second;
        const auto anchor_tokens =
            static_cast<std::int64_t>(std::llround(std::exp2(static_cast<double>(anchor) / kAnchorsPerDoubling)));
        // Layers with the same moments (every layer under balanced routing) are computed once.
        double sum = 0;
        const GpuSelectionMoments* previous = nullptr;
        double previous_value = 0;
        for (const auto& layer : layers_) {
            if (!previous || layer.mean != previous->mean || layer.variance != previous->variance) {
                previous_value = expected_batch_imbalance(layer, std::max<std::int64_t>(anchor_tokens, 1));
                previous = &layer;
            }
            sum += previous_value;
        }
        const double value = sum / static_cast<double>(layers_.size());
        memo_.emplace(anchor, value);
        return value;
    };
    const double a = value_at_anchor(below);
    const double fraction = position - static_cast<double>(below);
    if (fraction == 0) return a;
    return a + (value_at_anchor(below + 1) - a) * fraction;
}

}  // namespace clustersim
