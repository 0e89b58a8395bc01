// Tests of the routing models: balanced, power-law and load-table popularity.
#include "sim/moe/expert_routing_model.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

using namespace clustersim;

namespace {
double sum(const std::vector<double>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0);
}
}  // namespace

TEST_CASE("balanced routing gives every expert the same share", "[moe][routing]") {
    const BalancedRouting r(16);
    const auto p = r.popularity(3);
    REQUIRE(p.size() == 16);
    CHECK(sum(p) == Approx(1.0));
    for (const double v : p) CHECK(v == Approx(1.0 / 16));
    CHECK_THROWS_WITH(BalancedRouting(0), Catch::Contains("at least one expert"));
}

TEST_CASE("power-law popularity is normalized and skewed", "[moe][routing]") {
    const PowerLawRouting r(3, 64, 1.2, RngStream(42, "moe.routing"));
    for (int l = 0; l < 3; ++l) {
        const auto p = r.popularity(l);
        REQUIRE(p.size() == 64);
        CHECK(sum(p) == Approx(1.0));
        const auto& order = r.ranking(l);
        // Shares fall with rank as r^-1.2: the hottest is 64^1.2 times the coldest.
        CHECK(p[static_cast<std::size_t>(order.front())] / p[static_cast<std::size_t>(order.back())] ==
              Approx(std::pow(64.0, 1.2)));
        for (std::size_t k = 1; k < order.size(); ++k)
            CHECK(p[static_cast<std::size_t>(order[k - 1])] > p[static_cast<std::size_t>(order[k])]);
        CHECK(*std::max_element(p.begin(), p.end()) > 10.0 / 64);  // far above the balanced 1/64
    }
}

TEST_CASE("power-law hot experts are a permutation drawn from the component's stream", "[moe][routing]") {
    const PowerLawRouting a(2, 32, 1.0, RngStream(7, "moe.routing"));
    const PowerLawRouting b(2, 32, 1.0, RngStream(7, "moe.routing"));
    const PowerLawRouting c(2, 32, 1.0, RngStream(7, "other"));
    CHECK(a.ranking(0) == b.ranking(0));
    CHECK(a.ranking(1) == b.ranking(1));
    CHECK(a.ranking(0) != a.ranking(1));  // each layer has its own hot experts
    CHECK(a.ranking(0) != c.ranking(0));
    std::vector<int> sorted = a.ranking(0);
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> identity(32);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(sorted == identity);
}

TEST_CASE("a power-law exponent of zero is balanced, and a bad one is refused", "[moe][routing]") {
    const PowerLawRouting r(1, 8, 0.0, RngStream(1, "moe.routing"));
    for (const double v : r.popularity(0)) CHECK(v == Approx(1.0 / 8));
    CHECK_THROWS_WITH(PowerLawRouting(1, 8, -0.5, RngStream(1, "x")), Catch::Contains("exponent -0.5"));
    CHECK_THROWS_AS(r.popularity(1), std::out_of_range);
}

TEST_CASE("load-table routing divides each layer by its total", "[moe][routing]") {
    const LoadTableRouting r({{1, 3}, {2, 2}});
    CHECK(r.popularity(0) == std::vector<double>{0.25, 0.75});
    CHECK(r.popularity(1) == std::vector<double>{0.5, 0.5});
    CHECK_THROWS_WITH(LoadTableRouting({{0, 0}}), Catch::Contains("layer 0 has no load at all"));
    CHECK_THROWS_WITH(LoadTableRouting({{1, 2}, {1}}), Catch::Contains("layer 1 has 1 experts"));
}
