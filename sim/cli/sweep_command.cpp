// `clustersim sweep SWEEP.yaml`: run every plan of a sweep file and write one CSV row per plan.
#include "command.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/planning/process_group.hpp"
#include "sim/planning/sweep_runner.hpp"
#include "sim/planning/sweep_spec.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace clustersim {
namespace {

struct SweepArgs {
    std::string sweep;
    std::string out;
    int jobs = 0;
    bool fresh = false;
    bool keep_runs = false;
    std::string progress = "auto";
};

int sweep(const SweepArgs& args) {
    const std::optional<int> world = mpirun_world_size();
    std::unique_ptr<ProcessGroup> group = start_process_group();
    const int rank = group ? group->rank() : mpirun_world_rank();
    if (world && *world > 1 && !group) {
        // Built without MPI: the processes cannot share the work, and must not all write the output.
        if (rank != 0) return 0;
        fmt::print(stderr,
                   "note: this clustersim was built without MPI support (CMake did not find OpenMPI), so the {} "
                   "processes mpirun started cannot share the sweep: rank 0 runs every plan and the others exit\n",
                   *world);
    }

    SweepOptions options;
    SweepReport report;
    SweepSpec spec;
    try {
        spec = read_sweep_spec(args.sweep);
        options.out_dir =
            args.out.empty() ? std::filesystem::path("results/sweeps") / spec.name : std::filesystem::path(args.out);
        if (rank == 0) create_output_folder(options.out_dir, "--out");
        options.jobs = args.jobs;
        options.fresh = args.fresh;
        options.keep_runs = args.keep_runs;
        options.processes = group.get();
        options.progress = progress_style(args.progress);
        report = run_sweep(spec, options);
    } catch (const InputError&) {
        if (rank != 0) return 2;  // every process finds the same problems; rank 0 lists them
        throw;
    }
    if (rank != 0) return 0;

    const int processes = group ? group->size() : 1;
    std::string by_rank;
    for (const std::size_t n : report.ran_by_rank) by_rank += (by_rank.empty() ? "" : ", ") + std::to_string(n);
    fmt::print(
        "{}: {} plans: {} simulated now, {} reused from an earlier run; {} ok, {} do not fit, {} failed, {} invalid\n",
        spec.name, report.plans, report.ran, report.reused, report.ok, report.does_not_fit, report.failed,
        report.invalid);
    const int jobs = report.jobs;
    fmt::print("  {:.2f} s of wall time on {} thread{}{}; results in {}\n", report.wall_seconds, jobs,
               jobs == 1 ? "" : "s",
               processes > 1 ? fmt::format(" x {} processes (plans simulated by rank: {})", processes, by_rank) : "",
               report.csv.string());
    if (!report.chart_note.empty()) fmt::print("  {}\n", report.chart_note);
    return 0;
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
    auto args = std::make_shared<SweepArgs>();
    CLI::App* cmd = app.add_subcommand("sweep",
                                       "Run every plan of a sweep file (grids and zips over a base scenario) "
                                       "and write one CSV row per plan");
    cmd->add_option("sweep", args->sweep, "Sweep file (YAML; see sim/planning/README.md)")->required();
    cmd->add_option("--out", args->out, "Output folder (default: results/sweeps/<sweep name>)");
    cmd->add_option("--jobs,-j", args->jobs,
                    "Worker threads per process (default: all cores, shared among the "
                    "processes mpirun starts on a host)")
        ->check(CLI::Range(1, 4096));
    cmd->add_flag("--fresh", args->fresh, "Forget the rows of an earlier run in the output folder and run every plan");
    cmd->add_flag("--keep-runs", args->keep_runs,
                  "Keep each plan's run folder (summary.json, resolved.yaml, ...) "
                  "as <out>/runs/plan-NNNN");
    cmd->add_option("--progress", args->progress,
                    "Progress on stderr: auto (a bar on a terminal, lines otherwise), "
                    "bar, lines or none")
        ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
    cmd->footer(
        "Writes <out>/sweep.csv (one row per plan, by plan index) and <out>/journal.jsonl (rows as they\n"
        "finish). Run it again to finish an interrupted sweep: plans with a row are not recomputed.\n"
        "Under `mpirun -n K`, the plans are spread over the K processes and rank 0 writes the CSV.");
    return {cmd, [args] { return sweep(*args); }};
}

}  // namespace clustersim
