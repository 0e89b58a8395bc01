// Tests of the Pareto front of a sweep: which plans are on it for each goal, and the files the
// chart is made of.
#include "sim/planning/pareto_chart.hpp"
#include "sim/planning/sweep_runner.hpp"
#include "sweep_test_support.hpp"

#include <catch2/catch.hpp>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

PlanRow row(std::size_t plan, double memory, double throughput, PlanStatus status = PlanStatus::ok) {
    PlanRow r;
    r.plan = plan;
    r.status = status;
    r.metrics = {{"memory", fmt::format("{}", memory)}, {"throughput", fmt::format("{}", throughput)}};
    return r;
}

std::vector<std::size_t> front_of(const std::vector<PlanRow>& rows, const ParetoSpec& spec) {
    std::vector<std::size_t> front;
    for (const auto& p : pareto_points(rows, spec))
        if (p.on_front) front.push_back(p.plan);
    return front;
}

}  // namespace

TEST_CASE("the Pareto front keeps the plans no other plan beats on both metrics", "[planning][pareto]") {
    const std::vector<PlanRow> rows = {
        row(0, 10, 100),                           // front: least memory
        row(1, 20, 300),                           // front
        row(2, 20, 250),                           // beaten by 1 (same memory, less throughput)
        row(3, 30, 300),                           // beaten by 1 (more memory, same throughput)
        row(4, 40, 500),                           // front: most throughput
        row(5, 5, 900, PlanStatus::does_not_fit),  // not ok: not on the chart
        row(6, 20, 300),                           // the same point as plan 1: neither beats the other
    };
    ParetoSpec less_memory{{"memory", false}, {"throughput", true}};
    CHECK(front_of(rows, less_memory) == std::vector<std::size_t>{0, 1, 4, 6});
    CHECK(pareto_points(rows, less_memory).size() == 6);

    // With more memory counted as better, only the plan with the most of both is left.
    ParetoSpec more_memory{{"memory", true}, {"throughput", true}};
    CHECK(front_of(rows, more_memory) == std::vector<std::size_t>{4});

    // A metric no row has: no points.
    ParetoSpec unknown{{"latency", false}, {"throughput", true}};
    CHECK(pareto_points(rows, unknown).empty());
}

TEST_CASE("a sweep with a pareto section writes the front's rows and the gnuplot chart", "[planning][pareto]") {
    SweepScratch dir("pareto");
    const fs::path file = dir.sweep("pareto", R"(grid:
  parallel.pp: [1, 2, 4]
  batch.micro_batch_size: [1, 2]
pareto:
  x: {metric: peak_memory_gib_per_gpu, goal: min}
)");
    const SweepSpec spec = read_sweep_spec(file);
    REQUIRE(spec.pareto);
    CHECK(spec.pareto->x.metric == "peak_memory_gib_per_gpu");
    CHECK_FALSE(spec.pareto->x.maximize);
    CHECK(spec.pareto->y.metric == "tokens_per_s_per_gpu");
    CHECK(spec.pareto->y.maximize);

    const SweepReport report = run_quietly(file, dir.path / "out", 2);
    CHECK_THAT(report.chart_note, StartsWith("Pareto front: "));
    const auto front = lines_of(read_text(dir.path / "out" / "pareto.csv"));
    REQUIRE(front.size() >= 2);
    CHECK(front[0] == lines_of(read_text(dir.path / "out" / "sweep.csv"))[0]);  // the same columns
    CHECK_THAT(read_text(dir.path / "out" / "pareto.gp"), Contains("set output 'pareto.svg'"));
    CHECK_THAT(read_text(dir.path / "out" / "pareto.dat"),
               StartsWith("# plan\tpeak_memory_gib_per_gpu\ttokens_per_s_per_gpu\tlabel\n"));
    // pareto.svg is drawn when gnuplot is installed (CI installs gnuplot-nox); the note says which.
    if (report.chart_note.find("chart in") != std::string::npos) {
        CHECK_THAT(read_text(dir.path / "out" / "pareto.svg"), Contains("<svg"));
    } else {
        CHECK_THAT(report.chart_note, Contains("gnuplot"));
    }
}

TEST_CASE("a Pareto metric no plan has is named with a suggestion, after the sweep", "[planning][pareto][errors]") {
    SweepScratch dir("pareto-typo");
    const fs::path file =
        dir.sweep("typo", "grid:\n  parallel.pp: [1, 2]\npareto:\n  x: {metric: peak_memory_gib, goal: min}\n");
    const SweepReport report = run_quietly(file, dir.path / "out", 2);
    CHECK(report.ok == 2);
    CHECK(report.chart_note ==
          "no Pareto chart: no plan with status ok has both metrics. No row has the metric "
          "\"peak_memory_gib\" (did you mean \"peak_memory_gib_per_gpu\"?).");
}

TEST_CASE("a pareto section must name its x metric and a goal of max or min", "[planning][pareto][errors]") {
    SweepScratch dir("pareto-errors");
    const fs::path file = dir.sweep("bad", "grid: {seed: [1]}\npareto:\n  y: {metric: mfu, goal: most}\n");
    const std::string errors = sweep_errors(file);
    CHECK_THAT(errors, Contains(file.string() + ":4:3: pareto: missing required key \"x\""));
    CHECK_THAT(errors, Contains(file.string() + ":4:26: pareto.y.goal: expected one of: max, min; found \"most\""));
}
