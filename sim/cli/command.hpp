// The shape every clustersim subcommand has: it adds itself to the CLI11 app and runs when chosen.
#pragma once

#include <CLI/CLI.hpp>

#include "sim/input/diagnostics.hpp"
#include "sim/scenario/run_output.hpp"

#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace clustersim {

// A subcommand registers its options on `app` and returns the action to run when it was parsed.
// The action returns the exit status; it throws InputError for user errors (exit 2) and anything
// else for internal errors (exit 1), which main() turns into messages.
using CommandAction = std::function<int()>;
struct Command {
    CLI::App* app;
    CommandAction action;
};

// A user error about a command-line option naming a path: "PATH: --out: MESSAGE", exit status 2.
inline InputError option_error(const std::string& path, const std::string& option, const std::string& message) {
    Diagnostic d;
    d.where.file = path;
    d.key_path = option;
    d.message = message;
    return InputError(std::vector<Diagnostic>(1, d));
}

// A result folder for `option` (run's and validate's --out): RunOutput's own refusals (a file, the working
// folder, a folder of other files) pass through; a folder that cannot be created is a user error naming
// the option and path.
inline RunOutput open_run_output(const std::filesystem::path& dir, const char* option) {
    try {
        return RunOutput(dir);
    } catch (const InputError&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw option_error(dir.string(), option,
                           std::string(e.what()) + "; give a folder that can be created and written");
    }
}

// A folder that sweep and plan write into, made before any work so that a bad --out fails at once (not
// after minutes of simulation); one that cannot be created is a user error naming the option and path.
inline void create_output_folder(const std::filesystem::path& dir, const char* option) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || !std::filesystem::is_directory(dir))
        throw option_error(dir.string(), option,
                           std::string("cannot create the output folder") + (ec ? ": " + ec.message() : "") +
                               "; give a folder that can be created and written");
}

Command add_run_command(CLI::App& app);
Command add_model_command(CLI::App& app);
Command add_kernels_command(CLI::App& app);
Command add_layer_command(CLI::App& app);
Command add_calibrate_command(CLI::App& app);
Command add_validate_command(CLI::App& app);
Command add_sweep_command(CLI::App& app);
Command add_plan_command(CLI::App& app);

}  // namespace clustersim
