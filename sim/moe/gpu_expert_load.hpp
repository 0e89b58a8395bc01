// Per-GPU expert load: how many (token, expert) selections each GPU computes for one MoE layer,
// given a routing model and an expert placement, and how unbalanced that is.
//
// A selection is one row of an expert GEMM, so the busiest GPU's count sets the layer's MoE time.
// Tokens for a replicated expert are split evenly among its replicas (EPLB's assumption when it
// divides an expert's load by its replica count).
#pragma once

#include "sim/core/rng_stream.hpp"
#include "sim/moe/eplb_placement.hpp"
#include "sim/moe/expert_routing_model.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace clustersim {

// Probability that one token selects each expert under top-k routing. A token picks top_k
// distinct experts, so no expert can take more than one selection per token: popularity is scaled
// by top_k, and any share above 1 is capped and handed to the other experts in proportion to
// their popularity (what a gate's next choices would receive). The result sums to top_k. Needs at
// least top_k experts with positive popularity.
std::vector<double> selection_probabilities(std::span<const double> popularity, int top_k);

// Per-GPU load for one layer from per-logical-expert loads, each replica taking an equal share.
std::vector<double> gpu_loads(std::span<const double> expert_load, const ExpertPlacement& placement, int layer);

// Expected (token, expert) selections per GPU for a batch of `tokens` tokens with top-k routing.
std::vector<double> expected_gpu_tokens(const ExpertRoutingModel& model, const ExpertPlacement& placement, int layer,
                                        std::int64_t tokens, int top_k);

// One sampled routing: the logical experts each token selected, token-major
// (result[token * top_k + j]). Each token draws top_k distinct experts whose inclusion
// probabilities are exactly selection_probabilities(): systematic sampling over a fresh random
// order of the experts per token (Hartley & Rao, Ann. Math. Stat. 33(2), 1962).
std::vector<int> sample_token_experts(const ExpertRoutingModel& model, int layer, std::int64_t tokens, int top_k,
                                      RngStream& rng);

// Per-GPU selections for a routing: each logical expert's selections go round-robin over its
// replicas (slots in increasing order), so replicas differ by at most one.
std::vector<std::int64_t> gpu_tokens(std::span<const int> token_experts, const ExpertPlacement& placement, int layer);

// sample_token_experts() then gpu_tokens().
std::vector<std::int64_t> sampled_gpu_tokens(const ExpertRoutingModel& model, const ExpertPlacement& placement,
                                             int layer, std::int64_t tokens, int top_k, RngStream& rng);

// Largest over mean: 1 is perfectly balanced. An all-zero load counts as balanced (1).
double max_over_mean(std::span<const double> load);
double max_over_mean(std::span<const std::int64_t> load);

}  // namespace clustersim
