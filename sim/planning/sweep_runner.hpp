// Running a sweep: every plan checked before anything runs, finished rows of an earlier run reused,
// the rest simulated on worker threads (and across mpirun's processes), rows journaled as they
// finish, and one CSV ordered by plan index at the end.
//
// Each plan is loaded and run on its own: its own scenario runner, Simulator, kernel profile and
// output folder; nothing is shared between plans but the read-only sweep description.
#pragma once

#include "sim/planning/process_group.hpp"
#include "sim/planning/progress_meter.hpp"
#include "sim/planning/sweep_spec.hpp"
#include "sim/planning/sweep_table.hpp"

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace clustersim {

struct SweepOptions {
    std::filesystem::path out_dir;  // receives sweep.csv and journal.jsonl
    int jobs = 0;                   // worker threads in this process; 0: default_jobs(processes)
    bool fresh = false;             // forget the rows of an earlier run of the sweep
    bool keep_runs = false;         // keep each plan's run folder (summary.json, ...) as out_dir/runs/plan-NNNN
    ProgressStyle progress = ProgressStyle::automatic;
    ProcessGroup* processes = nullptr;  // the mpirun launch this process belongs to; null: one process
    std::FILE* log = stderr;            // progress and notes
};

struct SweepReport {
    std::size_t plans = 0;
    std::size_t reused = 0;                // rows of an earlier run, not recomputed
    std::size_t ran = 0;                   // plans simulated now, by every process
    std::size_t ran_here = 0;              // plans simulated now by this process
    std::vector<std::size_t> ran_by_rank;  // rank 0: plans simulated now by each process
    std::size_t ok = 0;
    std::size_t does_not_fit = 0;
    std::size_t failed = 0;
    std::size_t invalid = 0;
    int jobs = 0;               // the worker threads this process used
    std::filesystem::path csv;  // empty on ranks other than 0
    std::string chart_note;     // what became of the sweep's Pareto chart, when it asks for one
    double wall_seconds = 0;
    std::vector<PlanRow> rows;  // rank 0: every plan's row, by plan index (as in the CSV)
};

// The hardware threads, shared among the processes mpirun started on this host when they share the
// sweep (`processes` has more than one rank).
int default_jobs(const ProcessGroup* processes);

// Runs the sweep; throws InputError (every problem, with the sweep file's line and key) when the
// sweep file or, with on_invalid: error, some plan is rejected; nothing runs then.
SweepReport run_sweep(const SweepSpec& spec, const SweepOptions& options);

}  // namespace clustersim
