// Serving capacity search (`clustersim plan` with `kind: serving_plan`): the deployment with the
// fewest GPUs that serves a request rate within latency objectives, and the Pareto front of
// tokens/s per GPU against tokens/s per user.
//
// The search works pool by pool, as DistServe sizes prefill and decode instances (Zhong et al.,
// OSDI 2024): identical instances behind a balancing router each see about 1/n of the load, so one
// instance of a pool candidate (a layout and limits) is simulated at rate/n for the counts n that
// matter. A prefill pool is simulated alone (requests leave at their first token: TTFT); a decode
// pool alone (requests arrive with their first token and their KV moves in: TPOT, tokens/s per
// user); a colocated pool whole. The smallest n meeting the objectives is found by doubling and
// bisection; counts just above it are simulated too (faster plans for the Pareto front). A plan is a
// prefill candidate and count with a decode candidate and count (or a colocated candidate and count),
// judged by its pools' runs. The best plans are then simulated as whole deployments at the full rate
// (every instance, the real router): the best plan whose whole run meets the objectives is written
// as best.yaml, a scenario `clustersim run` reproduces exactly.
//
// File format and outputs: sim/planning/README.md ("Plan searches: serving").
#pragma once

#include "sim/core/units.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/planning/plan_options.hpp"
#include "topologies/topology.hpp"

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

enum class PoolKind { prefill, decode, colocated };
const char* to_string(PoolKind kind);

// A pool's settings to try: the values of its `grid`, combined as a cartesian product.
struct PoolSearchSpec {
    PoolKind kind = PoolKind::colocated;
    YAML::Node set;                                        // mapping: pool keys every candidate gets
    std::vector<std::pair<std::string, YAML::Node>> grid;  // pool key -> list of values
};

struct ServingPlanSpec {
    std::filesystem::path file;
    std::string name;
    std::string description;
    std::filesystem::path base;  // a serving scenario
    std::optional<std::uint64_t> seed;
    double rate_per_s = 0;  // the load to serve, given or derived from `load`
    // A load given as tokens a day: `basis` is input_tokens_per_day or output_tokens_per_day (empty
    // when the rate was given), at the base workload's mean prompt or output length.
    struct DailyLoad {
        std::string basis;
        double tokens_per_day = 0;
        double mean_tokens = 0;
    } load;
    // The base's topology (null without one): whole deployments that need more hosts run on the same
    // fabric grown to hold them.
    std::shared_ptr<const Topology> topology;
    std::optional<Time> ttft_slo, tpot_slo;
    int percentile = 90;  // of the objectives: 50, 90 or 99
    Time duration, warmup, max_duration;
    // A run is stable when the requests in its system grow by at most growth_tolerance x its rate plus
    // growth_sigmas standard deviations of the growth a stable run of that length shows by chance
    // (README, "Stability").
    double growth_tolerance = 0.02;
    double growth_sigmas = 3;
    int max_instances = 1024;
    int extra_instances = 2;
    int verify = 3;
    bool disaggregated = false, colocated = false;
    PoolSearchSpec prefill, decode, colocated_pool;
};

// Reads a plan file; throws InputError listing every problem (file, line, key).
ServingPlanSpec read_serving_plan(const std::filesystem::path& file);

// One candidate of a pool: one combination of its grid.
struct PoolCandidate {
    PoolKind kind = PoolKind::colocated;
    int index = 0;              // within its pool kind
    YAML::Node settings;        // the pool mapping of the scenario (instances left out)
    std::string description;    // "layout={tp: 32, ep: 32}, token_budget=65536"
    int gpus = 0;               // per instance (0 until a run has loaded it)
    std::string invalid;        // why the scenario rejects it, if it does
    std::optional<int> fewest;  // the fewest instances meeting the objectives
    std::string infeasible;     // why no count up to max_instances meets them
};

// One simulated instance of a pool candidate at its share of the load.
struct PoolRun {
    PoolKind kind = PoolKind::colocated;
    int candidate = 0;
    int instances = 0;  // the pool's count: the instance sees rate / instances
    double rate_per_instance = 0;
    double duration_s = 0;
    double arrival_cv = 1;  // of the instance's arrivals (gamma renewal process; Poisson: 1)
    bool meets = false;
    std::string verdict;             // "meets", or what it misses
    nlohmann::ordered_json summary;  // the run's summary.json
};

// A deployment: a prefill and a decode pool, or a colocated pool, with instance counts.
struct ServingPlanRow {
    std::size_t plan = 0;
    std::string mode;                                 // disaggregated or colocated
    int first_candidate = 0, first_instances = 0;     // prefill, or colocated
    int second_candidate = -1, second_instances = 0;  // decode (disaggregated)
    std::size_t first_run = 0;                        // index into ServingPlanResult::runs
    std::size_t second_run = 0;                       // (disaggregated only)
    int gpus = 0;
    double ttft_ms = 0, tpot_ms = 0;  // at the objectives' percentile
    double tokens_per_s_per_gpu = 0;
    double tokens_per_s_per_user = 0;  // output tokens/s of a decoding request
    bool meets = false;
    bool on_front = false;
};

struct VerifiedPlan {
    std::size_t plan = 0;
    std::filesystem::path scenario;  // its scenario file
    std::filesystem::path run_dir;   // its outputs
    nlohmann::ordered_json summary;
    bool meets = false;
    std::string verdict;
};

struct ServingPlanResult {
    ServingPlanSpec spec;
    std::vector<PoolCandidate> prefill, decode, colocated;
    std::vector<PoolRun> runs;  // every pool simulation, in the order of the candidates
    std::vector<ServingPlanRow> rows;
    std::optional<std::size_t> best;  // the plan best.yaml holds
    std::vector<VerifiedPlan> verified;
    double search_seconds = 0;  // pools and plans
    double verify_seconds = 0;  // whole-deployment runs
};

// Runs the search and writes its outputs into options.out_dir (or results/plans/<name>).
ServingPlanResult search_serving_plan(const ServingPlanSpec& spec, const PlanOptions& options);

PlanOutcome run_serving_plan(const std::filesystem::path& plan_file, const PlanOptions& options);

}  // namespace clustersim
