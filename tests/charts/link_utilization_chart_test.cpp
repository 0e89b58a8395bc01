// Tests of the network scenario's link_utilization.svg: the busiest links by bytes, as step lines
// of utilization over the run, named as link_utilization.csv names them.
#include "sim/scenario/run_output.hpp"
#include "sim/scenario/scenario.hpp"
#include "tests/charts/chart_test_support.hpp"
#include "topologies/topology.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;

namespace {

std::string source_file(const std::string& relative) {
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/" + relative;
}

struct CsvLinks {
    std::vector<std::string> names;       // in the CSV's order
    std::map<std::string, double> bytes;  // utilization x bin length x the link's bandwidth, summed over bins
    double end_us = 0;                    // the last bin's end
};

CsvLinks links_of(const std::string& csv, const Topology& topology) {
    std::map<std::string, double> bandwidth;
    for (LinkIndex l = 0; l < topology.link_count(); ++l)
        bandwidth[topology.link(l).name] = topology.link(l).effective_bandwidth().bytes_per_second();
    CsvLinks links;
    const auto lines = text_lines(csv);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        std::vector<std::string> cells;
        std::stringstream in(lines[i]);
        for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
        REQUIRE(cells.size() == 5);
        const std::string& name = cells[0];
        if (!links.bytes.count(name)) links.names.push_back(name);
        REQUIRE(bandwidth.count(name));
        const double start = std::stod(cells[2]), end = std::stod(cells[3]);
        links.bytes[name] += std::stod(cells[4]) * (end - start) * 1e-6 * bandwidth[name];
        links.end_us = std::max(links.end_us, end);
    }
    return links;
}

}  // namespace

TEST_CASE("a network run charts the utilization of its busiest links over time", "[charts][network]") {
    ChartScratch dir("network");
    const fs::path run_dir = dir.path / "run";
    LoadedScenario scenario = load_scenario(source_file("tests/cli/fixtures/small_dispatch.yaml"), std::nullopt);
    {
        RunOutput out(run_dir);
        RunOptions options;
        options.seed = scenario.seed;
        (void)scenario.runner->run(options, out);
        out.commit();
    }
    Diagnostics diagnostics;
    const auto topology = load_topology(source_file("topologies/h800-2node.yaml"), diagnostics);
    REQUIRE(topology);
    const CsvLinks links = links_of(read_text(run_dir / "link_utilization.csv"), *topology);
    REQUIRE(links.names.size() > 8);

    // The series of the chart, in order: the links as the CSV names them, busiest first.
    const std::string data = read_text(run_dir / "link_utilization.dat");
    std::vector<std::string> charted;
    for (const auto& line : text_lines(data))
        if (line.rfind("# index ", 0) == 0) charted.push_back(line.substr(line.find(": ") + 2));
    REQUIRE(charted.size() == 8);
    double busiest = 0, least_charted = 1e300, most_left_out = 0;
    for (const auto& [name, bytes] : links.bytes) {
        busiest = std::max(busiest, bytes);
        const bool on_chart = std::find(charted.begin(), charted.end(), name) != charted.end();
        if (on_chart) least_charted = std::min(least_charted, bytes);
        if (!on_chart) most_left_out = std::max(most_left_out, bytes);
    }
    for (const auto& name : charted) REQUIRE(links.bytes.count(name));
    // (The CSV rounds utilization to 4 decimals, hence the tolerance.)
    CHECK(links.bytes.at(charted[0]) >= busiest * (1 - 1e-3));
    CHECK(least_charted >= most_left_out * (1 - 1e-3));
    for (std::size_t i = 1; i < charted.size(); ++i)
        CHECK(links.bytes.at(charted[i - 1]) >= links.bytes.at(charted[i]) * (1 - 1e-3));

    // Each series is a step line from 0 to the end of the run, in microseconds.
    const auto first_block = text_lines(data.substr(0, data.find("\n\n\n")));
    REQUIRE(first_block.size() == 2 + 100 + 1);  // two comments, 100 bins, the last bin's end
    CHECK(first_block[2].rfind("0\t", 0) == 0);
    CHECK(std::stod(first_block.back().substr(0, first_block.back().find('\t'))) == Approx(links.end_us).epsilon(1e-6));

    const std::string gp = read_text(run_dir / "link_utilization.gp");
    CHECK_THAT(gp, Contains("set xlabel 'time (us)'"));
    CHECK_THAT(gp, Contains("set yrange [0:*]"));
    CHECK_THAT(gp,
               Contains("plot 'link_utilization.dat' index 0 using 1:2 with steps lw 2 title '" + charted[0] + "'"));
    if (gnuplot_on_path()) {
        const std::string svg = read_text(run_dir / "link_utilization.svg");
        CHECK_THAT(svg, Contains("<svg") && Contains(charted[0]) && Contains(charted[7]) && Contains("time (us)"));
    } else {
        WARN("gnuplot is not on PATH: link_utilization.svg is not drawn");
        CHECK_FALSE(fs::exists(run_dir / "link_utilization.svg"));
    }
}
