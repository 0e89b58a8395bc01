// `clustersim validate` end to end on fast rows: the CSV and report it writes, its exit status, byte-identical
// reruns, and the chart drawn or skipped with a note depending on gnuplot.
#include "sim/validation/external_process.hpp"
#include "tests/support/cli_runner.hpp"

#include <catch2/catch.hpp>

using namespace clustersim::testing;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}
}  // namespace

TEST_CASE("validating one passing row writes its CSV line and a report that opens with the command", "[validation]") {
    ScratchDir scratch("validate");
    const fs::path out = scratch.path / "report";
    const CommandResult r = run_clustersim(fmt::format("validate --only N1e --out '{}'", out.string()));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("1 of 1 predicted rows pass; 1 rows in all, 0 not predictable yet."));

    const auto csv = lines_of(read_file(out / "validation.csv"));
    REQUIRE(csv.size() == 2);
    CHECK(csv[0] == "id,kind,figure,published,unit,predicted,error_pct,tolerance,status,note,provenance");
    CHECK_THAT(csv[1], Catch::StartsWith("N1e,network,DeepEP normal dispatch bandwidth internode EP64,51,"
                                         "GB/s (logical RDMA),") &&
                           Catch::Contains(",10%,pass,logical_bandwidth_gb_per_s of the scenario,"));

    const std::string report = read_file(out / "README.md");
    const auto report_lines = lines_of(report);
    REQUIRE(report_lines.size() > 3);
    CHECK(report_lines[0] == "# clustersim validation report");
    CHECK_THAT(report_lines[2], Catch::StartsWith(fmt::format("Regenerate with `clustersim validate --out {} --only "
                                                              "N1e` from the repository root. Made at commit ",
                                                              out.string())));
    CHECK_THAT(report,
               Catch::Contains("**1 of 1 predicted rows pass;") &&
                   Catch::Contains("| N1e | network | DeepEP normal dispatch bandwidth internode EP64 | 51 |") &&
                   Catch::Contains("No predicted row falls outside its tolerance."));
    CHECK_FALSE(fs::exists(out / "scenario-runs"));
    CHECK_FALSE(fs::exists(out.string() + ".partial"));

    // Byte-identical on a rerun, apart from the output folder named in the command line.
    const fs::path again = scratch.path / "again";
    REQUIRE(run_clustersim(fmt::format("validate --only N1e --out '{}'", again.string())).exit_code == 0);
    CHECK(read_file(again / "validation.csv") == read_file(out / "validation.csv"));
    auto without_command = [](std::string text) { return text.substr(text.find("Made at commit")); };
    CHECK(without_command(read_file(again / "README.md")) == without_command(report));
}

TEST_CASE("a failing row exits with status 3 and is explained from the numbers", "[validation]") {
    // A published set whose N1a value is far below anything the model predicts, so the row fails
    // whatever small changes the network model sees.
    ScratchDir scratch("validate-fail");
    const fs::path out = scratch.path / "report";
    const CommandResult r = run_clustersim(fmt::format(
        "validate --published '{}' --out '{}'", source_path("tests/validation/fixtures/far_off.csv"), out.string()));
    INFO(r.output);
    CHECK(r.exit_code == 3);
    const std::string report = read_file(out / "README.md");
    CHECK_THAT(report, Catch::Contains("**0 of 1 predicted rows pass; 2 rows in all, 1 not predictable yet."));
    CHECK_THAT(report, Catch::Contains("1 of the 1 predicted rows fall outside their tolerance; it comes out faster "
                                       "than published."));
    CHECK_THAT(report, Catch::Contains("- **N1a** DeepEP normal dispatch bandwidth intranode "
                                       "(deepep_normal_intranode on 8 GPUs): predicted "));
    CHECK_THAT(report, Catch::Contains("against 50 published (+") &&
                           Catch::Contains("outside the 10% tolerance (45.00 to 55.00). The model is faster than the "
                                           "measurement."));
    CHECK_THAT(report, Catch::Contains("160 GB/s per direction") &&
                           Catch::Contains("which is the direction of the error of N1a."));
    CHECK_THAT(report, Catch::Contains("| T9a | training | throughput | 1543 | tokens/s/GPU |  |  | 10% | "
                                       "not-yet-predictable | no scenario in scenarios/validation/ yet |"));
}

TEST_CASE("bad validate command lines exit with status 2 and write nothing", "[validation]") {
    ScratchDir scratch("validate-bad");
    const fs::path out = scratch.path / "report";
    const CommandResult unknown = run_clustersim(fmt::format("validate --only N7 --out '{}'", out.string()));
    CHECK(unknown.exit_code == 2);
    CHECK_THAT(unknown.output, Catch::Contains("no row \"N7\""));
    const CommandResult missing =
        run_clustersim(fmt::format("validate --published /no/such.csv --out '{}'", out.string()));
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Catch::Contains("/no/such.csv"));
    const CommandResult unwritable = run_clustersim("validate --only X1a --out /proc/clustersim-no-such-folder");
    CHECK(unwritable.exit_code == 2);
    CHECK_THAT(unwritable.output, Catch::Contains("/proc/clustersim-no-such-folder: --out: cannot create"));
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(out.string() + ".partial"));
}

TEST_CASE("the chart is drawn when gnuplot is on PATH and skipped with a note when it is not", "[validation]") {
    ScratchDir scratch("validate-chart");
    const fs::path with_path = scratch.path / "with-path";
    const int exit_status = run_clustersim(fmt::format("validate --only N2d --out '{}'", with_path.string())).exit_code;
    CHECK((exit_status == 0 || exit_status == 3));  // either, as the model's accuracy on N2d goes
    CHECK(fs::exists(with_path / "predicted_vs_published.gp"));
    if (clustersim::find_on_path("gnuplot")) {
        CHECK_THAT(read_file(with_path / "predicted_vs_published.svg"), Catch::Contains("<svg"));
        CHECK_THAT(read_file(with_path / "README.md"), Catch::Contains("![predicted against published]"));
    }

    // With an empty PATH neither gnuplot nor git can be found: the report says so and still exits by its rows.
    const fs::path bare = scratch.path / "bare";
    const std::string command =
        fmt::format("PATH=/nonexistent '{}' validate --only N2d --out '{}' 2>&1", CLUSTERSIM_BINARY, bare.string());
    const CommandResult no_path = [&] {
        CommandResult result;
        FILE* pipe = ::popen(command.c_str(), "r");
        REQUIRE(pipe);
        std::array<char, 4096> buffer{};
        while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe)) result.output += buffer.data();
        const int status = ::pclose(pipe);
        result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return result;
    }();
    INFO(no_path.output);
    CHECK(no_path.exit_code == exit_status);
    CHECK_FALSE(fs::exists(bare / "predicted_vs_published.svg"));
    CHECK(fs::exists(bare / "predicted_vs_published.gp"));
    const std::string report = read_file(bare / "README.md");
    CHECK_THAT(report, Catch::Contains("Made at commit unknown.") && Catch::Contains("gnuplot is not on PATH"));
}
