// The busiest GPU's expert work in one batch, routing noise included: with few tokens per batch,
// which experts the tokens happen to pick spreads the per-GPU counts beyond the expected loads.
//
// gpu_expert_load.hpp gives the expected per-GPU selections, the limit of a large batch. A decode
// batch of a wide-EP deployment is small per GPU (DeepSeek's EP144 decode runs about a hundred
// tokens per GPU), and the busiest of 144 GPUs then draws well above its mean by chance alone.
//
// The model: a token's selections on GPU g are Y_g = sum over experts e of w(e,g) I_e, where I_e
// says whether the token picked e (inclusion probability pi_e from selection_probabilities()) and
// w(e,g) is the share of e's selections GPU g computes (its replicas there over e's replicas, as
// gpu_tokens() splits them). The variance of Y_g uses Hajek's approximation for fixed-size
// sampling without replacement (J. Hajek, "Asymptotic theory of rejective sampling with varying
// probabilities from a finite population", Ann. Math. Stat. 35(4), 1964, eq. 7.5):
//   Var(sum a_e I_e) ~ sum a_e^2 d_e - (sum a_e d_e)^2 / D,  d_e = pi_e (1 - pi_e), D = sum d_e.
// Tokens are independent, so a batch of T tokens gives GPU g a count with mean T m_g and variance
// T v_g, taken as normal (central limit over the tokens) and independent between GPUs (their sum is
// fixed at T top_k, a negative dependence that this ignores; it slightly overstates the maximum for
// a handful of GPUs and vanishes as their number grows). The expected maximum is integrated
// numerically. tests/moe compares it with sampled routings (sampled_gpu_tokens()).
#pragma once

#include "sim/moe/eplb_placement.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <vector>

namespace clustersim {

// Per-token mean and variance of each GPU's selections for one layer.
struct GpuSelectionMoments {
    std::vector<double> mean;      // m_g: expected selections per token (sums to top_k)
    std::vector<double> variance;  // v_g: their variance per token (Hajek's approximation)
};

GpuSelectionMoments gpu_selection_moments(std::span<const double> popularity, const ExpertPlacement& placement,
                                          int layer, int top_k);

// E[max_g X_g] / mean_g E[X_g] for a batch of `tokens` tokens (X_g normal, mean tokens m_g, variance
// tokens v_g). Tends to max m_g / mean m_g (the expected imbalance) as tokens grows. tokens >= 1.
double expected_batch_imbalance(const GpuSelectionMoments& moments, std::int64_t tokens);

// The busiest GPU's load over the mean as a function of a batch's tokens, averaged over the MoE
// layers (each layer waits for its own busiest GPU, so layer times add up as their imbalances do).
// Evaluations are memoized by token count; at() is safe to call from several threads.
class BatchImbalanceCurve {
public:
    // popularity[layer][expert]: each layer's shares (ExpertRoutingModel::popularity), one per placement layer.
    BatchImbalanceCurve(const ExpertLoadMatrix& popularity, const ExpertPlacement& placement, int top_k);

    // Averaged over layers, for a batch of `tokens` tokens (the tokens of one MoE call across the
    // EP group); tokens < 1 counts as 1.
    double at(std::int64_t tokens) const;
    // The large-batch limit: the expected loads' max over mean, averaged over layers.
    double expected() const { return expected_; }
    int layers() const { return static_cast<int>(layers_.size()); }

private:
    std::vector<GpuSelectionMoments> layers_;
    double expected_ = 1.0;
    mutable std::mutex mutex_;
    mutable std::map<std::int64_t, double> memo_;
};

}  // namespace clustersim
