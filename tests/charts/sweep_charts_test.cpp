// Tests of a sweep's throughput-latency charts: tokens/s/GPU of the ok plans against TPOT p90, TTFT
// p90 and output tokens/s per request, each with its Pareto front; nothing for sweeps without them.
#include "sim/planning/sweep_charts.hpp"
#include "tests/charts/chart_test_support.hpp"

#include <catch2/catch.hpp>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

struct ServingNumbers {
    double tokens_per_s_per_gpu, tpot_ms_p90, ttft_ms_p90, speed;
};

// Four serving plans (tp x rate) and a fifth that does not fit.
SweepSpec serving_spec() {
    SweepSpec spec;
    spec.name = "serving-layouts";
    spec.columns = {"deployment.tp", "workload.rate"};
    const std::vector<std::vector<std::string>> cells = {{"4", "4"}, {"4", "8"}, {"8", "4"}, {"8", "8"}, {"8", "16"}};
    for (std::size_t i = 0; i < cells.size(); ++i) spec.plans.push_back({i, {}, cells[i]});
    return spec;
}

std::vector<PlanRow> serving_rows() {
    const std::vector<ServingNumbers> numbers = {
        {100, 10, 50, 90},   // the lowest TPOT, the fastest per request
        {180, 20, 60, 45},   //
        {150, 25, 40, 35},   // beaten by plan 1 on TPOT; the lowest TTFT
        {300, 40, 200, 20},  // the most throughput
        {900, 1, 1, 900},    // does not fit: left out
    };
    std::vector<PlanRow> rows;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        PlanRow r;
        r.plan = i;
        r.key = fmt::format("{:016x}", i);
        r.status = i == 4 ? PlanStatus::does_not_fit : PlanStatus::ok;
        const auto& n = numbers[i];
        r.metrics = {{"tokens_per_s_per_gpu", fmt::format("{}", n.tokens_per_s_per_gpu)},
                     {"tpot_ms_p90", fmt::format("{}", n.tpot_ms_p90)},
                     {"ttft_ms_p90", fmt::format("{}", n.ttft_ms_p90)},
                     {"output_tokens_per_s_per_request_mean", fmt::format("{}", n.speed)}};
        rows.push_back(r);
    }
    return rows;
}

}  // namespace

TEST_CASE("a serving sweep charts tokens/s/GPU against latency with each chart's Pareto front", "[charts][planning]") {
    ChartScratch dir("throughput-latency");
    const ThroughputLatencyCharts charts = write_throughput_latency_charts(serving_spec(), serving_rows(), dir.path);
    CHECK(charts.points == 4);

    CHECK(read_text(dir.path / "throughput_latency.dat") ==
          "# throughput_latency.dat: the data of throughput_latency.svg, drawn by throughput_latency.gp. One block "
          "per series (gnuplot's index), columns x, y.\n"
          "# index 0: plans\n10\t100\n20\t180\n25\t150\n40\t300\n"
          "\n\n"
          "# index 1: Pareto front\n10\t100\n20\t180\n40\t300\n");
    const std::string gp = read_text(dir.path / "throughput_latency.gp");
    CHECK_THAT(gp, Contains("set title 'serving-layouts: tokens/s/GPU against TPOT p90, 4 plans, 3 on the Pareto "
                            "front'.\"\\n\".'labels: plan: deployment.tp, workload.rate'\n"));
    CHECK_THAT(gp, Contains("set xlabel 'tpot_ms_p90 (lower is better)'\n"));
    CHECK_THAT(gp, Contains("set ylabel 'tokens_per_s_per_gpu (higher is better)'\n"));
    CHECK_THAT(gp, Contains("set label 1 '0: 4, 4' at 10, 100 ") && Contains("set label 2 '1: 4, 8' at 20, 180 ") &&
                       Contains("set label 3 '3: 8, 8' at 40, 300 "));
    CHECK_THAT(gp, !Contains("set label 4"));

    // Against TTFT the front is another: plan 2 has the lowest TTFT, plan 0 is beaten by it.
    CHECK_THAT(read_text(dir.path / "throughput_ttft.dat"),
               Contains("# index 1: Pareto front\n40\t150\n60\t180\n200\t300\n"));
    // Against the speed each request sees, more is better.
    CHECK_THAT(read_text(dir.path / "throughput_interactivity.gp"),
               Contains("set xlabel 'output_tokens_per_s_per_request_mean (higher is better)'"));
    CHECK_THAT(read_text(dir.path / "throughput_interactivity.dat"),
               Contains("# index 1: Pareto front\n20\t300\n45\t180\n90\t100\n"));

    if (gnuplot_on_path()) {
        CHECK(charts.written == std::vector<std::string>{"throughput_latency.svg", "throughput_ttft.svg",
                                                         "throughput_interactivity.svg"});
        CHECK(charts.note == fmt::format("Throughput against latency: 4 plans; charts in {}: throughput_latency.svg, "
                                         "throughput_ttft.svg, throughput_interactivity.svg",
                                         dir.path.string()));
        CHECK_THAT(read_text(dir.path / "throughput_latency.svg"), Contains("<svg") && Contains("3: 8, 8"));
    } else {
        CHECK(charts.written.empty());
        CHECK_THAT(charts.note, StartsWith("Throughput against latency: 4 plans; gnuplot is not on PATH") &&
                                    Contains("(likewise for 2 more charts)"));
    }
}

TEST_CASE("without gnuplot the throughput-latency note says so once for all its charts", "[charts][planning]") {
    ChartScratch dir("throughput-latency-no-gnuplot");
    PathWithoutGnuplot no_gnuplot;
    const ThroughputLatencyCharts charts = write_throughput_latency_charts(serving_spec(), serving_rows(), dir.path);
    CHECK(charts.written.empty());
    CHECK(charts.note ==
          fmt::format("Throughput against latency: 4 plans; gnuplot is not on PATH, so {} was not drawn (install "
                      "gnuplot, Debian package gnuplot-nox, and run `gnuplot throughput_latency.gp` in {}) (likewise "
                      "for 2 more charts)",
                      (dir.path / "throughput_latency.svg").string(), dir.path.string()));
    for (const char* file : {"throughput_latency.gp", "throughput_ttft.dat", "throughput_interactivity.gp"})
        CHECK(fs::exists(dir.path / file));
}

TEST_CASE("a sweep without serving metrics gets no throughput-latency chart", "[charts][planning]") {
    ChartScratch dir("training-sweep");
    SweepSpec spec = serving_spec();
    std::vector<PlanRow> rows = serving_rows();
    for (auto& r : rows) r.metrics = {{"tokens_per_s_per_gpu", "100"}, {"peak_memory_gib_per_gpu", "40"}};
    const ThroughputLatencyCharts charts = write_throughput_latency_charts(spec, rows, dir.path);
    CHECK(charts.points == 0);
    CHECK(charts.note.empty());
    CHECK(fs::is_empty(dir.path));
    CHECK(write_sweep_charts(spec, rows, dir.path).empty());

    // Only TTFT known: that chart alone.
    rows = serving_rows();
    for (auto& r : rows) r.metrics.erase(r.metrics.begin() + 1);  // tpot_ms_p90
    PathWithoutGnuplot no_gnuplot;
    (void)write_throughput_latency_charts(spec, rows, dir.path);
    CHECK_FALSE(fs::exists(dir.path / "throughput_latency.gp"));
    CHECK(fs::exists(dir.path / "throughput_ttft.gp"));
}

TEST_CASE("a sweep's chart notes come one line each, the Pareto chart's first", "[charts][planning]") {
    ChartScratch dir("sweep-notes");
    SweepSpec spec = serving_spec();
    spec.pareto = ParetoSpec{{"ttft_ms_p90", false}, {"tokens_per_s_per_gpu", true}};
    PathWithoutGnuplot no_gnuplot;
    const std::string notes = write_sweep_charts(spec, serving_rows(), dir.path);
    const auto lines = text_lines(notes);
    REQUIRE(lines.size() == 2);
    CHECK_THAT(lines[0], StartsWith("Pareto front: 3 of 4 plans in "));
    CHECK_THAT(lines[1], StartsWith("  Throughput against latency: 4 plans"));
    CHECK(fs::exists(dir.path / "pareto.csv"));
}

TEST_CASE("a plan's label is its index and varied values on one line", "[charts][planning]") {
    SweepSpec spec = serving_spec();
    CHECK(plan_label(spec, 3) == "3: 8, 8");
    spec.plans[1].cells = {"", "a\tb\nc"};
    CHECK(plan_label(spec, 1) == "1: a b c");
    spec.plans[2].cells = {"", ""};
    CHECK(plan_label(spec, 2) == "2");
}
