// What `clustersim plan PLAN.yaml` passes to a plan search, whatever its kind (serving_plan or
// training_plan). The command reads the plan file's `kind` and hands the file to the search of that
// kind (serving_plan.hpp, training_plan.hpp); each writes its results into `out_dir`.
#pragma once

#include "sim/planning/progress_meter.hpp"

#include <filesystem>
#include <string>

namespace clustersim {

struct PlanOptions {
    std::filesystem::path out_dir;  // empty: results/plans/<plan name>
    int jobs = 0;                   // worker threads; 0: all cores
    bool fresh = false;             // forget earlier results in out_dir
    ProgressStyle progress = ProgressStyle::automatic;
};

// What a plan search tells the command to print when it is done (the files hold the details).
struct PlanOutcome {
    std::string name;
    std::filesystem::path out_dir;
    std::string headline;  // one or more lines for the terminal: the best plan and where the report is
};

}  // namespace clustersim
