// Routing models: how the tokens of an MoE layer spread over its logical experts.
//
// A routing model gives each expert its popularity: the share of the layer's (token, expert)
// selections it receives. gpu_expert_load.hpp turns popularity and a placement into per-GPU
// token counts. To add a model, derive from ExpertRoutingModel (see README.md in this folder).
#pragma once

#include "sim/core/rng_stream.hpp"

#include <string>
#include <vector>

namespace clustersim {

class ExpertRoutingModel {
public:
    virtual ~ExpertRoutingModel() = default;
    // Short name for logs and outputs, e.g. "balanced".
    virtual std::string name() const = 0;
    virtual int num_experts() const = 0;
    // Share of the layer's selections that go to each logical expert: non-negative, sums to 1.
    // layer must be non-negative; models without per-layer data give every layer the same shape.
    virtual std::vector<double> popularity(int layer) const = 0;
};

// Every expert equally popular: what an auxiliary-loss-free balanced router aims at, and what
// DeepEP's benchmarks assume.
class BalancedRouting final : public ExpertRoutingModel {
public:
    explicit BalancedRouting(int num_experts);
    std::string name() const override { return "balanced"; }
    int num_experts() const override { return num_experts_; }
    std::vector<double> popularity(int layer) const override;

private:
    int num_experts_;
};

// Zipf-like skew: the expert of popularity rank r (1-based) gets a share proportional to
// r^-exponent. Which expert holds which rank is a random permutation per layer, drawn from the
// component's RngStream when the model is built (layer 0's permutation first), so the hot
// experts differ between layers, as measured routing statistics show. Exponent 0 is balanced.
class PowerLawRouting final : public ExpertRoutingModel {
public:
    // num_layers permutations are drawn from rng; popularity(layer) needs layer < num_layers.
    PowerLawRouting(int num_layers, int num_experts, double exponent, RngStream rng);
    std::string name() const override { return "power_law"; }
    int num_experts() const override { return num_experts_; }
    std::vector<double> popularity(int layer) const override;
    double exponent() const { return exponent_; }
    // The expert holding each popularity rank in the layer: hottest first.
    const std::vector<int>& ranking(int layer) const;

private:
    int num_experts_;
    double exponent_;
    std::vector<std::vector<int>> ranking_;  // [layer][rank] -> expert
};

// Shares from a measured per-layer load table (see expert_load_table.hpp): each layer's loads
// divided by their sum.
class LoadTableRouting final : public ExpertRoutingModel {
public:
    // loads[layer][expert]; every layer needs the same number of experts and a positive total.
    explicit LoadTableRouting(std::vector<std::vector<double>> loads);
    std::string name() const override { return "load_table"; }
    int num_experts() const override { return static_cast<int>(shares_.front().size()); }
    int num_layers() const { return static_cast<int>(shares_.size()); }
    std::vector<double> popularity(int layer) const override;

private:
    std::vector<std::vector<double>> shares_;
};

}  // namespace clustersim
