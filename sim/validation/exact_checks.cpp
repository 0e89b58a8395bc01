// Exact checks of published rows, read from the row's own configuration and value text.
#include "exact_checks.hpp"

#include "sim/input/diagnostics.hpp"
#include "sim/moe/eplb_placement.hpp"

#include <fmt/format.h>

#include <map>
#include <stdexcept>
#include <regex>
#include <sstream>

namespace clustersim {
namespace {

[[noreturn]] void unreadable(const PublishedRow& row, const std::string& what) {
    Diagnostics diagnostics;
    diagnostics.error({"published.csv", row.line, 0}, row.id, fmt::format("cannot read {} from the row", what));
    diagnostics.throw_if_any();
    throw std::logic_error("unreachable");
}

// "layer0 = 1 2 3; layer1 = 4 5" -> {0: [1 2 3], 1: [4 5]}
std::map<int, std::vector<double>> layer_lists(const std::string& text) {
    std::map<int, std::vector<double>> out;
    static const std::regex pattern(R"(layer(\d+)\s*=\s*([0-9 .]+))");
    for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
        std::istringstream numbers((*it)[2].str());
        std::vector<double> values;
        for (double v; numbers >> v;) values.push_back(v);
        out[std::stoi((*it)[1].str())] = values;
    }
    return out;
}

int count_of(const PublishedRow& row, const std::string& noun) {
    const std::regex pattern("(\\d+) " + noun);
    std::smatch m;
    if (!std::regex_search(row.configuration, m, pattern)) unreadable(row, "the number of " + noun);
    return std::stoi(m[1].str());
}

ExactCheck eplb_placement_check(const PublishedRow& row) {
    const auto weights = layer_lists(row.configuration);
    const auto expected = layer_lists(row.value.text);
    if (weights.empty()) unreadable(row, "the expert weights (\"layerN = ...\")");
    if (expected.size() != weights.size()) unreadable(row, "one published map per layer of weights");
    ExpertLoadMatrix load;
    for (const auto& [layer, w] : weights) load.push_back(w);
    const ExpertPlacement placement = rebalance_experts(load, count_of(row, "replicas"), count_of(row, "groups"),
                                                        count_of(row, "nodes"), count_of(row, "GPUs"));
    ExactCheck check{true, ""};
    std::size_t index = 0;
    for (const auto& [layer, map] : expected) {
        std::vector<int> want(map.begin(), map.end());
        const auto& got = placement.phy2log[index++];
        if (got != want) {
            check.matches = false;
            check.note += fmt::format("layer {}: computed {} but published {}; ", layer, fmt::join(got, " "),
                                      fmt::join(want, " "));
        }
    }
    check.note = check.matches ? fmt::format("phy2log computed by EPLB's hierarchical placement (sim/moe) equals the "
                                             "published map for all {} layers",
                                             expected.size())
                               : "phy2log differs: " + check.note;
    return check;
}

}  // namespace

std::optional<ExactCheck> run_exact_check(const PublishedRow& row) {
    if (row.id.starts_with("X2")) return eplb_placement_check(row);
    return std::nullopt;
}

}  // namespace clustersim
