// `clustersim run SCENARIO.yaml`: load, validate, run one scenario and write its results.
#include "command.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/scenario/scenario.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

namespace clustersim {
namespace {

struct RunArgs {
    std::string scenario;
    std::string out;
    std::optional<std::uint64_t> seed;
    bool trace = false;
};

int run_scenario(const RunArgs& args) {
    const auto started = std::chrono::steady_clock::now();
    LoadedScenario scenario = load_scenario(args.scenario, args.seed);
    const std::filesystem::path out_dir =
        args.out.empty() ? std::filesystem::path("results/runs") / scenario.name : std::filesystem::path(args.out);
    RunOutput out = open_run_output(out_dir, "--out");
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
    if (summary.contains("warnings"))
        for (const auto& w : summary["warnings"]) fmt::print(stderr, "warning: {}\n", w.get<std::string>());
    return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
    auto args = std::make_shared<RunArgs>();
    CLI::App* run = app.add_subcommand("run", "Run one scenario and write its results");
    run->add_option("scenario", args->scenario, "Scenario file (YAML)")->required();
    run->add_option("--out", args->out, "Output folder (default: results/runs/<scenario name>)");
    run->add_option("--seed", args->seed, "Random seed (overrides the scenario's seed)")
        ->check(CLI::Validator(
            [](std::string& text) {
                // CLI11 would wrap "-1" and clamp a number past 2^64 - 1 into a valid seed without a word.
                std::uint64_t value = 0;
                const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
                if (ec != std::errc() || end != text.data() + text.size())
                    return std::string("expected a whole number from 0 to 18446744073709551615, found ") + text;
                return std::string();
            },
            "SEED"));
    run->add_flag("--trace", args->trace, "Also write trace.json (open it in ui.perfetto.dev)");
    return {run, [args] { return run_scenario(*args); }};
}

}  // namespace clustersim
