// The clustersim command line: parses arguments, runs the command, turns errors into exit codes.
//
// Exit status: 0 success, 2 a user error (bad arguments or input files; every problem listed),
// 1 an internal error (a bug: please report it with the scenario).
#include "sim/input/diagnostics.hpp"
#include "sim/scenario/scenario.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>

namespace {

using namespace clustersim;

constexpr int kExitUserError = 2;
constexpr int kExitInternalError = 1;

struct RunArgs {
    std::string scenario;
    std::string out;
    std::optional<std::uint64_t> seed;
    bool trace = false;
};

int run_command(const RunArgs& args) {
    const auto started = std::chrono::steady_clock::now();
    LoadedScenario scenario = load_scenario(args.scenario, args.seed);
    const std::filesystem::path out_dir =
        args.out.empty() ? std::filesystem::path("results/runs") / scenario.name : std::filesystem::path(args.out);
    RunOutput out(out_dir);
    out.write_text("resolved.yaml", scenario.resolved_yaml);
    RunOptions options;
    options.seed = scenario.seed;
    options.trace = args.trace;
    const nlohmann::ordered_json summary = scenario.runner->run(options, out);
    out.commit();
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    fmt::print("{} ({}): done in {:.2f} s of wall time; results in {}\n", scenario.name, scenario.kind, wall_s,
               out_dir.string());
    for (const auto& [key, value] : summary.items()) {
        if (value.is_number() || value.is_string() || value.is_boolean()) fmt::print("  {:<40} {}\n", key, value.dump());
    }
    return 0;
}

std::string kinds_help() {
    std::string text = "Scenario kinds:\n";
    for (const auto& k : scenario_kinds()) {
        text += fmt::format("  {:<10} {}{}\n", k.name, k.summary, k.loader ? "" : " (not implemented yet)");
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"clustersim: predicts how fast, how costly and how memory-hungry a large-language-model "
                 "deployment plan will be on a GPU cluster."};
    app.set_version_flag("--version", std::string("clustersim ") + CLUSTERSIM_VERSION);
    app.require_subcommand(1);
    app.footer("Examples:\n"
               "  clustersim run scenarios/network/h800-ep64-dispatch.yaml\n"
               "  clustersim run scenarios/network/h100-allreduce-8gpu.yaml --trace --out /tmp/ar\n"
               "  clustersim run SCENARIO.yaml --seed 7\n\n" +
               kinds_help() +
               "\nExit status: 0 on success, 2 on a user error (every problem is listed with file:line and key),\n"
               "1 on an internal error.");

    RunArgs run_args;
    CLI::App* run = app.add_subcommand("run", "Run one scenario and write its results");
    run->add_option("scenario", run_args.scenario, "Scenario file (YAML)")->required();
    run->add_option("--out", run_args.out, "Output folder (default: results/runs/<scenario name>)");
    run->add_option("--seed", run_args.seed, "Random seed (overrides the scenario's seed)");
    run->add_flag("--trace", run_args.trace, "Also write trace.json (open it in ui.perfetto.dev)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUserError;
    }

    try {
        if (run->parsed()) return run_command(run_args);
    } catch (const InputError& e) {
        std::fputs(fmt::format("error: {}\n", e.what()).c_str(), stderr);
        return kExitUserError;
    } catch (const std::exception& e) {
        std::fputs(fmt::format("internal error: {}\n", e.what()).c_str(), stderr);
        return kExitInternalError;
    }
    return 0;
}
