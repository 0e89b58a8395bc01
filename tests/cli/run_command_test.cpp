// `clustersim run` end to end: every validation rule fails loudly with file:line and key path, nothing
// is written for a bad scenario, and identical runs give identical bytes.
#include "tests/support/cli_runner.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>


using namespace clustersim::testing;

namespace {
std::string fixture(const std::string& name) { return source_path("tests/cli/fixtures/" + name); }

// Runs a scenario that must be rejected; checks exit status 2 and that no output folder appeared.
std::string rejected(const std::string& name) {
    ScratchDir scratch("rejected");
    const fs::path out = scratch.path / "out";
    const CommandResult r = run_clustersim(fmt::format("run '{}' --out '{}'", fixture(name), out.string()));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(out.string() + ".partial"));
    return r.output;
}

}  // namespace

TEST_CASE("a scenario with several problems lists every one with file, line and key", "[cli]") {
    const std::string out = rejected("many_problems.yaml");
    CHECK_THAT(out, Catch::Contains("4 problems"));
    CHECK_THAT(out, Catch::Contains("many_problems.yaml:5:1: algoritm: unknown key \"algoritm\" (did you mean \"algorithm\"?)"));
    CHECK_THAT(out, Catch::Contains("many_problems.yaml:7:7: size:") && Catch::Contains("with no unit"));
    CHECK_THAT(out, Catch::Contains("many_problems.yaml:8:9: chunks: expected an integer; found \"many\""));
    CHECK_THAT(out, Catch::Contains("many_problems.yaml:9:19: utilization_bins: expected a value from 1 to 100000; found 0"));
}

TEST_CASE("cross-field problems are reported against the key that causes them", "[cli]") {
    const std::string out = rejected("cross_field.yaml");
    CHECK_THAT(out, Catch::Contains("cross_field.yaml:5:12: algorithm: point_to_point cannot use algorithm ring"));
    CHECK_THAT(out, Catch::Contains("cross_field.yaml:6:7: gpus: point_to_point needs exactly two GPUs"));
}

TEST_CASE("expert-parallel problems are all reported, nested key paths included", "[cli]") {
    const std::string out = rejected("uneven_experts.yaml");
    CHECK_THAT(out, Catch::Contains("gpus: GPU 99 is not in the topology, which has GPUs 0 to 15"));
    CHECK_THAT(out, Catch::Contains("expert_parallel.experts: 100 experts cannot be spread evenly over 16 GPUs"));
    CHECK_THAT(out, Catch::Contains("uneven_experts.yaml:9:9: expert_parallel.mode: expected one of: normal, low_latency; found \"fast\""));
}

TEST_CASE("a misspelled kind gets a suggestion, and a kind's missing keys are listed together", "[cli]") {
    CHECK_THAT(rejected("misspelled_kind.yaml"), Catch::Contains("kind: expected one of: network, training, serving; found "
                                                                 "\"netwrok\" (did you mean \"network\"?)"));
    const std::string out = rejected("training_missing_keys.yaml");
    CHECK_THAT(out, Catch::Contains("missing required key \"model\"") && Catch::Contains("missing required key \"gpu\"") &&
                        Catch::Contains("missing required key \"gpus\"") && Catch::Contains("missing required key \"batch\""));
}

TEST_CASE("invalid YAML, a missing topology and a missing scenario are clear errors", "[cli]") {
    CHECK_THAT(rejected("not_yaml.yaml"), Catch::Contains("not_yaml.yaml:") && Catch::Contains("not valid YAML"));
    CHECK_THAT(rejected("missing_topology.yaml"), Catch::Contains("no-such-topology.yaml"));
    // A misspelled shipped topology is named at its key, with the shipped name it is closest to.
    CHECK_THAT(rejected("misspelled_topology.yaml"),
               Catch::Contains("misspelled_topology.yaml:2:18: topology.file: no topology file \"h800-ib-rial\"") &&
                   Catch::Contains("did you mean \"h800-ib-rail\""));
    CHECK_THAT(rejected("no_such_scenario.yaml"), Catch::Contains("cannot open the file"));
}

TEST_CASE("bad command lines exit with status 2 and --version with 0", "[cli]") {
    CHECK(run_clustersim("").exit_code == 2);
    CHECK(run_clustersim("run").exit_code == 2);
    CHECK(run_clustersim("frobnicate").exit_code == 2);
    CHECK(run_clustersim("run x.yaml --seed minus-one").exit_code == 2);
    // Seeds CLI11 would wrap or clamp into range are refused, naming the range.
    for (const char* seed : {"-1", "99999999999999999999999"}) {
        const CommandResult r = run_clustersim(fmt::format("run x.yaml --seed {}", seed));
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.output, Catch::Contains("--seed: expected a whole number from 0 to 18446744073709551615"));
    }
    const CommandResult version = run_clustersim("--version");
    CHECK(version.exit_code == 0);
    CHECK_THAT(version.output, Catch::StartsWith("clustersim "));
    const CommandResult help = run_clustersim("--help");
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.output, Catch::Contains("Examples:") && Catch::Contains("Scenario kinds:"));
}

TEST_CASE("a run writes its summary, resolved scenario, CSVs and trace", "[cli]") {
    ScratchDir scratch("run");
    const fs::path out = scratch.path / "ar";
    const CommandResult r = run_clustersim(fmt::format("run '{}' --out '{}' --trace", fixture("small_allreduce.yaml"), out.string()));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    for (const char* file : {"summary.json", "resolved.yaml", "transfers.csv", "link_utilization.csv", "trace.json"})
        CHECK(fs::exists(out / file));
    const auto summary = nlohmann::json::parse(read_file(out / "summary.json"));
    CHECK(summary.at("algorithm") == "hierarchical");
    CHECK(summary.at("busbw_gb_per_s").get<double>() > 0);
    const auto trace = nlohmann::json::parse(read_file(out / "trace.json"));  // valid JSON
    CHECK(trace.at("traceEvents").size() > 16);
    // Defaults are filled in, with their units.
    const std::string resolved = read_file(out / "resolved.yaml");
    CHECK_THAT(resolved, Catch::Contains("seed: 1") && Catch::Contains("chunks: 8") && Catch::Contains("size: 64MB"));
}

TEST_CASE("identical runs give identical bytes and the seed changes the routing", "[cli][determinism]") {
    ScratchDir scratch("determinism");
    auto run_to = [&](const std::string& name, const std::string& scenario, const std::string& extra) {
        const fs::path out = scratch.path / name;
        const CommandResult r = run_clustersim(fmt::format("run '{}' --out '{}' --trace {}", fixture(scenario), out.string(), extra));
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        return out;
    };
    for (const char* scenario : {"small_allreduce.yaml", "small_dispatch.yaml"}) {
        const fs::path a = run_to("a", scenario, "");
        const fs::path b = run_to("b", scenario, "");
        int files = 0;
        for (const auto& entry : fs::directory_iterator(a)) {
            // The chart is drawn only where gnuplot is installed; its script and data always are.
            if (entry.path().filename() != "link_utilization.svg") ++files;
            INFO(entry.path().filename().string());
            CHECK(read_file(entry.path()) == read_file(b / entry.path().filename()));
        }
        CHECK(files == 7);  // summary, resolved, transfers, link utilization (csv, dat, gp), trace
        fs::remove_all(a);
        fs::remove_all(b);
    }
    const fs::path seeded1 = run_to("s1", "small_dispatch.yaml", "--seed 1");
    const fs::path seeded2 = run_to("s2", "small_dispatch.yaml", "--seed 2");
    CHECK(read_file(seeded1 / "transfers.csv") != read_file(seeded2 / "transfers.csv"));
    CHECK_THAT(read_file(seeded2 / "resolved.yaml"), Catch::Contains("seed: 2"));
}

TEST_CASE("a link busy for the whole call reads as fully used whatever the number of time bins", "[cli]") {
    // The ring of two keeps each NVLink direction busy from start to end (but the per-step latency), so
    // the busiest link's mean utilization is near 1 with 1 bin and with 1,000 (it read 0.11 at the default
    // 100 bins when the binning walk stopped early on a rounding).
    ScratchDir scratch("bins");
    std::string scenario = read_file(fixture("two_gpu_allreduce.yaml"));
    const std::string relative = "../../../topologies/";
    scenario.replace(scenario.find(relative), relative.size(), source_path("topologies/") + "/");
    for (int bins : {1, 7, 100, 1000}) {
        const fs::path file = scratch.path / fmt::format("bins-{}.yaml", bins);
        std::ofstream(file) << scenario << fmt::format("utilization_bins: {}\n", bins);
        const fs::path out = scratch.path / fmt::format("out{}", bins);
        const CommandResult r = run_clustersim(fmt::format("run '{}' --out '{}'", file.string(), out.string()));
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        const auto summary = nlohmann::json::parse(read_file(out / "summary.json"));
        CHECK(summary.at("busiest_nvlink_link_mean_utilization").get<double>() == Approx(1.0).margin(0.01));
    }
}

TEST_CASE("an output folder that cannot be created exits 2 naming --out and the path", "[cli]") {
    const CommandResult r = run_clustersim(fmt::format("run '{}' --out /proc/clustersim-no-such-folder",
                                                       fixture("small_allreduce.yaml")));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("error:") && Catch::Contains("/proc/clustersim-no-such-folder: --out: cannot "
                                                                      "create the output folder"));
    CHECK_THAT(r.output, !Catch::Contains("internal error"));
}

TEST_CASE("a run's resolved.yaml names its files absolutely and runs again from its output folder", "[cli]") {
    // The fixture names its topology by a path relative to its own folder; resolved.yaml lives elsewhere.
    ScratchDir scratch("resolved-again");
    const fs::path first = scratch.path / "first";
    REQUIRE(run_clustersim(fmt::format("run '{}' --out '{}'", fixture("small_allreduce.yaml"), first.string()))
                .exit_code == 0);
    const std::string resolved = read_file(first / "resolved.yaml");
    CHECK_THAT(resolved, Catch::Contains(source_path("topologies/h800-2node.yaml")));
    const fs::path again = scratch.path / "again";
    const CommandResult r =
        run_clustersim(fmt::format("run '{}' --out '{}'", (first / "resolved.yaml").string(), again.string()));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(again / "summary.json") == read_file(first / "summary.json"));
}
