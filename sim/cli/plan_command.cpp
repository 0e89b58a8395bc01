// `clustersim plan PLAN.yaml`: a capacity search. The plan file's `kind` picks the search:
// serving_plan (the fewest GPUs serving a load within latency objectives; sim/planning/serving_plan.hpp)
// or training_plan (the layout and schedule with the most tokens/s per GPU that fit;
// sim/planning/training_plan.hpp).
#include "command.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"
#include "sim/planning/plan_options.hpp"
#include "sim/planning/serving_plan.hpp"
#include "sim/planning/training_plan.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace clustersim {
namespace {

struct PlanArgs {
    std::string plan;
    std::string out;
    int jobs = 0;
    bool fresh = false;
    std::string progress = "auto";
};

// The plan file's kind, read before the search reads the rest.
std::string plan_kind(const std::string& file) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(file, diagnostics);
    diagnostics.throw_if_any();
    const YAML::Node kind = doc->root()["kind"];
    if (!kind || !kind.IsScalar() || (kind.Scalar() != "serving_plan" && kind.Scalar() != "training_plan")) {
        Diagnostics problems;
        const YAML::Mark m = kind ? kind.Mark() : YAML::Mark::null_mark();
        problems.error({file, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1}, "kind",
                       fmt::format("expected serving_plan or training_plan; found {}",
                                   kind && kind.IsScalar() ? "\"" + kind.Scalar() + "\"" : "none"));
        problems.throw_if_any();
    }
    return kind.Scalar();
}

int plan(const PlanArgs& args) {
    PlanOptions options;
    options.out_dir = args.out;
    if (!args.out.empty()) create_output_folder(args.out, "--out");
    options.jobs = args.jobs;
    options.fresh = args.fresh;
    options.progress = progress_style(args.progress);
    const PlanOutcome outcome = plan_kind(args.plan) == "serving_plan" ? run_serving_plan(args.plan, options)
                                                                       : run_training_plan(args.plan, options);
    fmt::print("{}\n", outcome.headline);
    return 0;
}

}  // namespace

Command add_plan_command(CLI::App& app) {
    auto args = std::make_shared<PlanArgs>();
    CLI::App* cmd = app.add_subcommand("plan",
                                       "Capacity search: the serving deployment with the fewest GPUs meeting latency "
                                       "objectives, or the training layout with the most tokens/s per GPU that fits");
    cmd->add_option("plan", args->plan,
                    "Plan file (YAML, kind serving_plan or training_plan; see "
                    "sim/planning/README.md)")
        ->required();
    cmd->add_option("--out", args->out, "Output folder (default: results/plans/<plan name>)");
    cmd->add_option("--jobs,-j", args->jobs, "Worker threads (default: all cores)")->check(CLI::Range(1, 4096));
    cmd->add_flag("--fresh", args->fresh, "Forget the results of an earlier run in the output folder (training plans)");
    cmd->add_option("--progress", args->progress, "Progress on stderr: auto, bar, lines or none")
        ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
    cmd->footer(
        "Writes report.md (the best plan and why), best.yaml (a scenario `clustersim run` reproduces),\n"
        "CSVs of every plan and an SVG Pareto chart into the output folder.");
    return {cmd, [args] { return plan(*args); }};
}

}  // namespace clustersim
