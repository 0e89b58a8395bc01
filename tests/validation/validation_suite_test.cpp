// The suite's judgement of rows: rows without a scenario or of an unbuilt kind say why, a scenario
// whose summary lacks its row's metric is an input error, and the headline numbers are computed right.
#include "sim/validation/validation_suite.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/validation/exact_checks.hpp"
#include "sim/validation/validation_report.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

using namespace clustersim;
namespace fs = std::filesystem;

namespace {
const fs::path kSource = CLUSTERSIM_SOURCE_DIR;

ValidationOptions options_for(std::vector<std::string> only) {
    ValidationOptions o;
    o.published = kSource / "../shared/validation/published.csv";
    o.scenario_dir = kSource / "scenarios/validation";
    o.display_root = kSource;
    o.only = std::move(only);
    return o;
}

fs::path scratch_dir(const std::string& name) {
    return fs::temp_directory_path() / ("clustersim-validation-" + name + "-" + std::to_string(::getpid()));
}

std::string run_error(const ValidationOptions& o) {
    try {
        run_validation(o, scratch_dir("error"));
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}

RowResult predicted_row(double error) {
    RowResult r;
    r.status = RowStatus::pass;
    r.predicted = 1;
    r.error = error;
    return r;
}
}  // namespace

TEST_CASE("rows without a scenario are not predictable yet and say what they wait for", "[validation]") {
    ValidationOptions o = options_for({"T1a", "S1b", "X1b"});
    const fs::path empty = scratch_dir("no-scenarios");
    fs::create_directories(empty);
    o.scenario_dir = empty;
    const ValidationResult result = run_validation(o, scratch_dir("pending"));
    fs::remove_all(empty);
    REQUIRE(result.rows.size() == 3);
    // File order, not the order asked for.
    CHECK(result.rows[0].row.id == "T1a");
    CHECK_THAT(result.rows[0].note, Catch::StartsWith("no scenario in") && Catch::EndsWith("/ yet"));
    CHECK_THAT(result.rows[1].note,
               Catch::StartsWith("needs its load-protocol scenario") && Catch::Contains("no scenario in"));
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(result.rows[i].status == RowStatus::not_yet_predictable);
        CHECK_FALSE(result.rows[i].predicted);
        CHECK_FALSE(result.rows[i].error);
    }
    // Exact rows need no scenario: the schedules are run on the row's own chunk times.
    CHECK(result.rows[2].status == RowStatus::pass);
    CHECK(result.predicted() == 1);
    CHECK_FALSE(result.median_absolute_error());  // an exact row has no relative error
    CHECK(validation_headline(result) == "1 of 1 predicted rows pass; 3 rows in all, 2 not predictable yet.");
}

TEST_CASE("the DualPipe rows are checked exactly by running the schedules", "[validation]") {
    const ValidationResult result = run_validation(options_for({"X1a", "X1b", "X1c"}), scratch_dir("dualpipe"));
    REQUIRE(result.rows.size() == 3);
    for (const auto& r : result.rows) {
        INFO(r.row.id << ": " << r.note);
        CHECK(r.status == RowStatus::pass);
    }
    CHECK_THAT(result.rows[0].note, Catch::Contains("PP16 N=32: 14"));
    CHECK_THAT(result.rows[2].note, Catch::Contains("DualPipe PP16 17, DualPipeV R=8 17"));
}

TEST_CASE("the EPLB row is checked exactly by running the placement on the row's own inputs", "[validation]") {
    const ValidationResult result = run_validation(options_for({"X2a"}), scratch_dir("eplb"));
    REQUIRE(result.rows.size() == 1);
    CHECK(result.rows[0].status == RowStatus::pass);
    CHECK_THAT(result.rows[0].note, Catch::Contains("equals the published map for all 2 layers"));

    // The same row with one expert id changed must fail and show both maps.
    PublishedRow wrong = result.rows[0].row;
    wrong.value.text.replace(wrong.value.text.find("= 5 6"), 5, "= 6 5");
    const auto check = run_exact_check(wrong);
    REQUIRE(check);
    CHECK_FALSE(check->matches);
    CHECK_THAT(check->note, Catch::Contains("layer 0: computed 5 6 5 7") && Catch::Contains("published 6 5 5 7"));
}

TEST_CASE("a network row without a scenario file is not predictable yet", "[validation]") {
    ValidationOptions o = options_for({"N1a"});
    o.scenario_dir = kSource / "tests/validation";  // holds no N1a.yaml
    const ValidationResult result = run_validation(o, scratch_dir("no-scenario"));
    REQUIRE(result.rows.size() == 1);
    CHECK(result.rows[0].status == RowStatus::not_yet_predictable);
    CHECK(result.rows[0].note == "no scenario in tests/validation/ yet");
    CHECK(result.rows[0].scenario.empty());
}

TEST_CASE("an unknown row id is an input error with a suggestion", "[validation]") {
    CHECK_THAT(run_error(options_for({"N1a", "N1z"})),
               Catch::Contains("--only: no row \"N1z\"") && Catch::Contains("(did you mean \"N1a\"?)"));
}

TEST_CASE("a scenario whose summary lacks its row's metric, or a unit with no metric, is an input error",
          "[validation]") {
    ValidationOptions o;
    o.published = kSource / "tests/validation/fixtures/allreduce_row.csv";
    o.scenario_dir = kSource / "tests/validation/fixtures";
    o.only = {"Z1"};
    CHECK_THAT(run_error(o), Catch::Contains("Z1.yaml") && Catch::Contains("logical_bandwidth_gb_per_s"));
    o.only = {"Z2"};
    CHECK_THAT(run_error(o), Catch::Contains("allreduce_row.csv:3:0: unit:") &&
                                 Catch::Contains("no summary metric is known for its unit \"furlongs\""));
}

TEST_CASE("each published unit maps to one summary field", "[validation]") {
    CHECK(metric_for_unit("GB/s (logical)")->key == "logical_bandwidth_gb_per_s");
    CHECK(metric_for_unit("GB/s (logical RDMA)")->required_value == "rdma");
    CHECK(metric_for_unit("us")->key == "time_us");
    CHECK_FALSE(metric_for_unit("us")->higher_is_faster);
    CHECK(metric_for_unit("tokens/s/GPU")->key == "tokens_per_s_per_gpu");
    CHECK(metric_for_unit("tokens/s/GPU")->required_value == "training");
    // One unit, several metrics: the row's figure picks.
    CHECK(metric_for("%", "causal MFU vs BF16 peak")->key == "mfu_percent");
    CHECK(metric_for("%", "share of EP communication hidden under compute")->key == "pair_ep_comm_hidden_percent");
    CHECK(metric_for("ms", "DeepEP combine kernel time per call")->key == "combine_ms_per_call");
    CHECK(metric_for("%", "something else") == nullptr);
    CHECK(metric_for_unit("furlongs") == nullptr);
}

TEST_CASE("the median absolute error is over predicted rows, even counts averaging the middle two", "[validation]") {
    ValidationResult result;
    result.rows = {predicted_row(-0.39), predicted_row(0.05), predicted_row(0.18)};
    result.rows.push_back(RowResult{});  // not predicted: left out
    CHECK(*result.median_absolute_error() == Approx(0.18));
    result.rows.push_back(predicted_row(0.10));
    CHECK(*result.median_absolute_error() == Approx(0.14));
    CHECK(result.predicted() == 4);
    CHECK(result.count(RowStatus::not_yet_predictable) == 1);
}

TEST_CASE("a faster model means a higher bandwidth or a shorter time", "[validation]") {
    RowResult bandwidth = predicted_row(0.18);
    bandwidth.metric = metric_for_unit("GB/s (logical)");
    CHECK(bandwidth.faster_than_published());
    RowResult latency = predicted_row(0.18);
    latency.metric = metric_for_unit("us");
    CHECK_FALSE(latency.faster_than_published());
    latency.error = -0.39;
    CHECK(latency.faster_than_published());
}

TEST_CASE("the kernel-level section lists leave-one-out errors, or says there are no tables", "[validation]") {
    const fs::path dir = scratch_dir("kernel-loo");
    fs::create_directories(dir);
    // The test profile "synth" has measured GEMM and copy tables (tests/kernels/fixtures), copied into a
    // kernels folder of its own (the fixtures also hold a deliberately broken spec).
    const fs::path kernels = scratch_dir("kernel-loo-profile");
    fs::create_directories(kernels / "gpus");
    fs::copy_file(kSource / "tests/kernels/fixtures/gpus/synth.yaml", kernels / "gpus/synth.yaml");
    fs::copy(kSource / "tests/kernels/fixtures/calibration", kernels / "calibration", fs::copy_options::recursive);
    const std::string with_tables = write_kernel_calibration_section(kernels.string(), dir);
    fs::remove_all(kernels);
    CHECK_THAT(with_tables, Catch::Contains("| synth | gemm |") && Catch::Contains("kernel_leave_one_out.csv"));
    CHECK(fs::exists(dir / "kernel_leave_one_out.csv"));
    CHECK(fs::exists(dir / "kernel_leave_one_out.gp"));
    // A kernels folder whose one GPU has no tables.
    const fs::path bare = scratch_dir("kernel-loo-bare");
    fs::create_directories(bare / "gpus");
    fs::copy_file(kSource / "tests/kernels/fixtures/gpus/synth.yaml", bare / "gpus/synth.yaml");
    const fs::path empty = scratch_dir("kernel-loo-none");
    fs::create_directories(empty);
    const std::string without = write_kernel_calibration_section(bare.string(), empty);
    CHECK_THAT(without, Catch::Contains("has measured or published calibration tables yet"));
    CHECK_FALSE(fs::exists(empty / "kernel_leave_one_out.csv"));
    fs::remove_all(dir);
    fs::remove_all(bare);
    fs::remove_all(empty);
}
