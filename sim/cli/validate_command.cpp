// `clustersim validate`: run the scenario of every published row, compare, and write the accuracy report.
#include "command.hpp"
#include "sim/scenario/run_output.hpp"
#include "kernels/kernel_cost_model.hpp"
#include "sim/validation/validation_report.hpp"
#include "sim/validation/validation_suite.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace clustersim {
namespace {

// Distinct from 2 (a user error) so that CI can tell "the model is off" from "the command was wrong".
constexpr int kExitSomeRowFails = 3;

struct ValidateArgs {
    std::string out;
    std::string published;
    std::vector<std::string> only;
};

std::filesystem::path source_dir() {
    return std::filesystem::path(CLUSTERSIM_SOURCE_DIR);
}

std::filesystem::path published_path(const ValidateArgs& args) {
    if (!args.published.empty()) return args.published;
    if (const char* env = std::getenv("CLUSTERSIM_PUBLISHED"); env && *env) return env;
    return (source_dir() / "../shared/validation/published.csv").lexically_normal();
}

// The command line as given, so the report names the command that regenerates it.
std::string command_line(const ValidateArgs& args) {
    std::string command = "clustersim validate";
    if (!args.out.empty()) command += " --out " + args.out;
    if (!args.published.empty()) command += " --published " + args.published;
    if (!args.only.empty()) {
        command += " --only ";
        for (std::size_t i = 0; i < args.only.size(); ++i) command += (i ? "," : "") + args.only[i];
    }
    return command;
}

int validate(const ValidateArgs& args) {
    const std::filesystem::path out_dir = args.out.empty() ? "results/validation" : args.out;
    ValidationOptions options;
    options.published = published_path(args);
    options.scenario_dir = source_dir() / "scenarios/validation";
    options.display_root = source_dir();
    options.only = args.only;
    options.on_row = [](const RowResult& r) {
        if (!r.predicted) {
            fmt::print("  {:<5} {:<20} {}\n", r.row.id, to_string(r.status), r.note);
            return;
        }
        fmt::print("  {:<5} {:<20} predicted {:.4g} {} against {} ({:+.1f}%, tolerance {})\n", r.row.id,
                   to_string(r.status), *r.predicted, r.row.unit, r.row.value.text, *r.error * 100,
                   r.row.tolerance.text);
    };

    // The whole folder is staged and replaces the old report only once everything is written.
    RunOutput out = open_run_output(out_dir, "--out");
    const std::filesystem::path scratch = out.file("scenario-runs");
    const ValidationResult result = run_validation(options, scratch);
    std::filesystem::remove_all(scratch);

    ReportContext context;
    context.command = command_line(args);
    context.commit = source_commit(source_dir());
    // Lexically, not through symlinks, so the report names the path as the source tree sees it.
    context.published_display = std::filesystem::absolute(options.published)
                                    .lexically_normal()
                                    .lexically_proximate(source_dir())
                                    .generic_string();
    context.kernels_dir = default_kernels_dir();
    const std::string chart_note = write_validation_report(result, context, out.file(""));
    out.commit();

    fmt::print("{}\n", validation_headline(result));
    if (chart_note.starts_with("gnuplot")) fmt::print("note: {}\n", chart_note.substr(0, chart_note.find(". ") + 1));
    fmt::print("report: {}\n", (out_dir / "README.md").string());
    return result.count(RowStatus::fail) > 0 ? kExitSomeRowFails : 0;
}

}  // namespace

Command add_validate_command(CLI::App& app) {
    auto args = std::make_shared<ValidateArgs>();
    CLI::App* cmd = app.add_subcommand(
        "validate", "Compare predictions with the published measurements and write the accuracy report");
    cmd->add_option("--out", args->out, "Report folder, replaced whole (default: results/validation)");
    cmd->add_option("--published", args->published,
                    "The published set (default: $CLUSTERSIM_PUBLISHED, else ../shared/validation/published.csv "
                    "beside the source tree)");
    cmd->add_option("--only", args->only, "Row ids to run, comma-separated (default: every row)")->delimiter(',');
    cmd->footer(
        "Writes validation.csv, README.md and, when gnuplot is on PATH, predicted_vs_published.svg.\n"
        "Exit status: 0 when every predicted row passes, 3 when some predicted row fails its tolerance,\n"
        "2 on a user error, 1 on an internal error.");
    return {cmd, [args] { return validate(*args); }};
}

}  // namespace clustersim
