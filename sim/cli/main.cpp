// The clustersim command line: parses arguments, runs the chosen command, turns errors into exit codes.
//
// Exit status: 0 success, 2 a user error (bad arguments or input files; every problem listed),
// 1 an internal error (a bug: please report it with the scenario).
#include "command.hpp"
#include "sim/core/units.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/scenario/scenario.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <vector>

namespace {

using namespace clustersim;

constexpr int kExitUserError = 2;
constexpr int kExitInternalError = 1;

std::string kinds_help() {
    std::string text = "Scenario kinds:\n";
    for (const auto& k : scenario_kinds()) {
        text += fmt::format("  {:<10} {}{}\n", k.name, k.summary, k.loader ? "" : " (not implemented yet)");
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "clustersim: predicts how fast, how costly and how memory-hungry a large-language-model "
        "deployment plan will be on a GPU cluster."};
    app.set_version_flag("--version", std::string("clustersim ") + CLUSTERSIM_VERSION);
    app.require_subcommand(1);
    app.footer(
        "Examples:\n"
        "  clustersim run scenarios/network/h800-ep64-dispatch.yaml\n"
        "  clustersim run scenarios/network/h100-allreduce-8gpu.yaml --trace --out /tmp/ar\n"
        "  clustersim model deepseek-v3\n"
        "  clustersim kernels --gpu h100-sxm --in shapes.csv --out predictions.csv\n"
        "  clustersim sweep scenarios/sweeps/megatron-gpt-1700m-small.yaml --jobs 2\n\n" +
        kinds_help() +
        "\nExit status: 0 on success, 2 on a user error (every problem is listed with file:line and key),\n"
        "1 on an internal error.");

    const std::vector<Command> commands = {
        add_run_command(app),       add_model_command(app),    add_kernels_command(app), add_layer_command(app),
        add_calibrate_command(app), add_validate_command(app), add_sweep_command(app),   add_plan_command(app)};
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUserError;
    }

    try {
        for (const auto& command : commands)
            if (command.app->parsed()) return command.action();
    } catch (const InputError& e) {
        std::fputs(fmt::format("error: {}\n", e.what()).c_str(), stderr);
        return kExitUserError;
    } catch (const UnreachableTarget& e) {
        std::fputs(fmt::format("error: {}\n", e.what()).c_str(), stderr);
        return kExitUserError;
    } catch (const TimeOverflow& e) {
        // The input asks for more simulated time than Time counts (scenario kinds that know which keys
        // set the times report those; this is the fallback).
        std::fputs(fmt::format("error: {}; make the simulated work smaller\n", e.what()).c_str(), stderr);
        return kExitUserError;
    } catch (const std::exception& e) {
        std::fputs(fmt::format("internal error: {}\n", e.what()).c_str(), stderr);
        return kExitInternalError;
    }
    return 0;
}
