// The balanced, power-law and load-table routing models; see expert_routing_model.hpp.
#include "sim/moe/expert_routing_model.hpp"

#include <fmt/format.h>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace clustersim {

BalancedRouting::BalancedRouting(int num_experts) : num_experts_(num_experts) {
    if (num_experts < 1)
        throw std::invalid_argument(fmt::format("balanced routing: need at least one expert, got {}", num_experts));
}

std::vector<double> BalancedRouting::popularity(int layer) const {
    if (layer < 0) throw std::out_of_range(fmt::format("balanced routing: layer {} is negative", layer));
    return std::vector<double>(static_cast<std::size_t>(num_experts_), 1.0 / num_experts_);
}

PowerLawRouting::PowerLawRouting(int num_layers, int num_experts, double exponent, RngStream rng)
    : num_experts_(num_experts), exponent_(exponent) {
    if (num_layers < 1 || num_experts < 1)
        throw std::invalid_argument(fmt::format(
            "power-law routing: need at least one layer and one expert, got {} and {}", num_layers, num_experts));
    if (!std::isfinite(exponent) || exponent < 0)
        throw std::invalid_argument(
            fmt::format("power-law routing: exponent {} must be a finite non-negative number", exponent));
    for (int l = 0; l < num_layers; ++l) {
        std::vector<int> order(static_cast<std::size_t>(num_experts));
        std::iota(order.begin(), order.end(), 0);
        // Fisher-Yates with the stream's own integer draws, so the permutation is the same on
        // every platform (std::shuffle's is not).
        for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.uniform_int(i + 1)]);
        ranking_.push_back(std::move(order));
    }
}

const std::vector<int>& PowerLawRouting::ranking(int layer) const {
    if (layer < 0 || layer >= static_cast<int>(ranking_.size()))
        throw std::out_of_range(
            fmt::format("power-law routing: layer {} outside the {} layers it was built for", layer, ranking_.size()));
    return ranking_[static_cast<std::size_t>(layer)];
}

std::vector<double> PowerLawRouting::popularity(int layer) const {
    const std::vector<int>& order = ranking(layer);
    std::vector<double> share(order.size());
    double total = 0;
    for (std::size_t r = 0; r < order.size(); ++r) total += std::pow(static_cast<double>(r + 1), -exponent_);
    for (std::size_t r = 0; r < order.size(); ++r)
        share[static_cast<std::size_t>(order[r])] = std::pow(static_cast<double>(r + 1), -exponent_) / total;
    return share;
}

LoadTableRouting::LoadTableRouting(std::vector<std::vector<double>> loads) : shares_(std::move(loads)) {
    if (shares_.empty() || shares_.front().empty())
        throw std::invalid_argument("load-table routing: the table has no layers or no experts");
    for (std::size_t l = 0; l < shares_.size(); ++l) {
        auto& row = shares_[l];
        if (row.size() != shares_.front().size())
            throw std::invalid_argument(fmt::format("load-table routing: layer {} has {} experts, layer 0 has {}", l,
                                                    row.size(), shares_.front().size()));
        double total = 0;
        for (const double v : row) {
            if (!std::isfinite(v) || v < 0)
                throw std::invalid_argument(
                    fmt::format("load-table routing: layer {} has load {}, not a finite non-negative number", l, v));
            total += v;
        }
        if (!(total > 0))
            throw std::invalid_argument(fmt::format("load-table routing: layer {} has no load at all", l));
        for (double& v : row) v /= total;
    }
}

std::vector<double> LoadTableRouting::popularity(int layer) const {
    if (layer < 0 || layer >= num_layers())
        throw std::out_of_range(
            fmt::format("load-table routing: layer {} outside the table's {} layers", layer, num_layers()));
    return shares_[static_cast<std::size_t>(layer)];
}

}  // namespace clustersim
