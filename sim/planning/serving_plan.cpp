// Serving capacity search (see serving_plan.hpp).
#include "sim/planning/serving_plan.hpp"

#include "sim/input/yaml_reader.hpp"
#include "sim/planning/plan_file.hpp"
#include "sim/planning/progress_meter.hpp"
#include "sim/planning/serving_plan_report.hpp"
#include "sim/planning/sweep_plan.hpp"
#include "sim/scenario/run_output.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/serving/workload.hpp"
#include "topologies/topology.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace clustersim {
namespace fs = std::filesystem;

const char* to_string(PoolKind kind) {
    switch (kind) {
        case PoolKind::prefill:
            return "prefill";
        case PoolKind::decode:
            return "decode";
        case PoolKind::colocated:
            break;
    }
    return "colocated";
}

namespace {

// A time as the scenario loader reads it.
std::string time_text(Time t) {
    return fmt::format("{:.9g}s", t.seconds());
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

PoolSearchSpec read_pool_search(MapReader& root, PoolKind kind, Diagnostics& diagnostics, const std::string& file) {
    PoolSearchSpec spec;
    spec.kind = kind;
    MapReader pool = root.child(to_string(kind),
                                "the pool's settings to try: `set` (keys every candidate gets) and `grid` (lists of "
                                "values of the pool's keys, combined as a cartesian product)",
                                false);
    spec.set = pool.child("set", "pool keys every candidate gets (as in the scenario's deployment)", false).node();
    const YAML::Node grid =
        pool.child("grid", "lists of values of pool keys (layout, token_budget, max_batch, ...)", false).node();
    pool.finish();
    const std::string prefix = std::string(to_string(kind)) + ".";
    if (spec.set.IsDefined() && !spec.set.IsNull() && !spec.set.IsMap())
        diagnostics.error(location_of(file, spec.set), prefix + "set", "expected a mapping of pool keys");
    if (grid.IsDefined() && !grid.IsNull()) {
        if (!grid.IsMap()) {
            diagnostics.error(location_of(file, grid), prefix + "grid", "expected a mapping of pool keys to lists");
        } else {
            for (const auto& item : grid) {
                const std::string key = item.first.as<std::string>();
                if (key == "instances") {
                    diagnostics.error(location_of(file, item.first), prefix + "grid.instances",
                                      "instance counts are what the search finds; see `instances` at the top level");
                    continue;
                }
                if (!item.second.IsSequence() || item.second.size() == 0) {
                    diagnostics.error(location_of(file, item.second), prefix + "grid." + key,
                                      "expected a non-empty list of values to try");
                    continue;
                }
                spec.grid.emplace_back(key, item.second);
            }
        }
    }
    return spec;
}

// Keys of the pools' `set` and `grid` that the scenario does not know (typos), as errors at the plan
// file's lines; throws InputError listing them. Defined below, with the search.
void check_pool_keys(const ServingPlanSpec& spec);

}  // namespace

ServingPlanSpec read_serving_plan(const fs::path& file) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(file.string(), diagnostics);
    diagnostics.throw_if_any();
    Diagnostics& d = doc->diagnostics();
    MapReader root = MapReader::root(doc);
    ServingPlanSpec spec;
    spec.file = file;
    root.choice("kind", {"serving_plan"}, std::nullopt, "serving_plan");
    PlanFileHeader header =
        read_plan_file_header(root, file, "search", "the base serving scenario, relative to the plan file");
    spec.name = std::move(header.name);
    spec.description = std::move(header.description);
    spec.base = std::move(header.base);
    spec.seed = root.maybe<std::uint64_t>("seed", "random seed of every run (default: the base scenario's)");

    MapReader load = root.child("load", "the load to serve");
    const auto rate =
        load.maybe<double>("rate_per_s", "requests per second, Poisson, with the base's lengths", positive<double>());
    const auto input_per_day = load.maybe<double>(
        "input_tokens_per_day", "prompt tokens a day (cache hits included), at the base's mean prompt length",
        positive<double>());
    const auto output_per_day = load.maybe<double>(
        "output_tokens_per_day", "output tokens a day, at the base's mean output length", positive<double>());
    const int given = (rate ? 1 : 0) + (input_per_day ? 1 : 0) + (output_per_day ? 1 : 0);
    if (given != 1)
        load.error_here(
            fmt::format("give exactly one of rate_per_s, input_tokens_per_day and output_tokens_per_day; "
                        "found {}",
                        given));
    if (rate) spec.rate_per_s = *rate;
    if (input_per_day) spec.load = {"input_tokens_per_day", *input_per_day, 0};
    if (output_per_day) spec.load = {"output_tokens_per_day", *output_per_day, 0};
    load.finish();

    MapReader slo = root.child("slo", "the latency objectives every plan must meet");
    spec.ttft_slo = slo.maybe<Time>("ttft", "time to first token", positive<Time>());
    spec.tpot_slo = slo.maybe<Time>("tpot", "time per output token", positive<Time>());
    spec.percentile = slo.optional<int>("percentile", 90, "the percentile the objectives bind (50, 90 or 99)");
    if (spec.percentile != 50 && spec.percentile != 90 && spec.percentile != 99)
        slo.error("percentile", fmt::format("expected 50, 90 or 99; found {}", spec.percentile));
    if (!spec.ttft_slo && !spec.tpot_slo) slo.error_here("give ttft, tpot or both");
    slo.finish();

    MapReader sim = root.child("simulate", "how long each run lasts", false);
    spec.duration =
        sim.optional<Time>("duration", Time::from_seconds(90), "arrivals of one pool run", positive<Time>());
    spec.warmup = sim.optional<Time>("warmup", Time::from_seconds(30),
                                     "requests arriving earlier are left out of the statistics");
    spec.max_duration =
        sim.optional<Time>("max_duration", spec.duration * 4,
                           "a run whose queue still grows is repeated twice as long (warm-up too) up to this duration");
    spec.growth_tolerance = sim.optional<double>(
        "growth_tolerance", 0.02, "stable: requests in the system grow by less than this share of the arrival rate",
        in_range(0.0, 1.0));
    spec.growth_sigmas = sim.optional<double>(
        "growth_sigmas", 3.0,
        "stable: ... plus this many standard deviations of the growth a stable run shows by chance (0: none)",
        in_range(0.0, 10.0));
    if (!(spec.warmup < spec.duration)) sim.error("warmup", "the warm-up must be shorter than the duration");
    if (spec.max_duration < spec.duration) sim.error("max_duration", "max_duration must be at least the duration");
    sim.finish();

    MapReader instances = root.child("instances", "instance counts the search may use", false);
    spec.max_instances = instances.optional<int>("max", 1024, "the most instances of one pool", in_range(1, 1'000'000));
    spec.extra_instances = instances.optional<int>(
        "extra", 2, "counts above the fewest that meet the objectives also become plans (faster per user)",
        in_range(0, 64));
    instances.finish();
    spec.verify = root.optional<int>("verify", 3,
                                     "best plans simulated as whole deployments, until one meets the "
                                     "objectives",
                                     in_range(1, 100));

    const bool prefill = root.has("prefill"), decode = root.has("decode");
    spec.prefill = read_pool_search(root, PoolKind::prefill, d, file.string());
    spec.decode = read_pool_search(root, PoolKind::decode, d, file.string());
    spec.colocated_pool = read_pool_search(root, PoolKind::colocated, d, file.string());
    spec.disaggregated = prefill || decode;
    spec.colocated = root.has("colocated");
    if (prefill != decode)
        root.error(prefill ? "prefill" : "decode", "a disaggregated search needs both `prefill` and `decode`");
    if (!spec.disaggregated && !spec.colocated)
        root.error_here("give `prefill` and `decode` (disaggregated plans), `colocated`, or all three");
    root.finish();
    d.throw_if_any();

    // The base must be a serving scenario with a synthetic workload whose rate the search can set.
    const YAML::Node base_tree = YAML::LoadFile(spec.base.string());
    const auto base_error = [&](const std::string& message) {
        Diagnostics problems;
        problems.error(header.base_where, "base", message);
        problems.throw_if_any();
    };
    if (!base_tree["kind"] || base_tree["kind"].as<std::string>() != "serving")
        base_error(fmt::format("{} is not a serving scenario (kind: serving)", spec.base.string()));
    if (!base_tree["workload"] || !base_tree["workload"]["kind"] ||
        base_tree["workload"]["kind"].as<std::string>() != "synthetic")
        base_error(fmt::format("{}: the search sets the arrival rate, so the base's workload must be synthetic",
                               spec.base.string()));
    if (base_tree["load"])
        base_error(
            fmt::format("{}: a base with a load search (`load:`) cannot be planned; remove it", spec.base.string()));
    if (base_tree["workload"]["sessions"])
        base_error(fmt::format("{}: multi-turn sessions need the whole deployment; pools cannot be sized alone",
                               spec.base.string()));
    if (base_tree["workload"]["arrival"] && base_tree["workload"]["arrival"]["rate_profile"])
        base_error(
            fmt::format("{}: the search sizes pools for one steady rate, and a run of {} would see only the "
                        "start of the arrival's rate_profile; remove it and plan for the rate to serve "
                        "(the profile's peak, say)",
                        spec.base.string(), time_text(spec.duration)));
    Diagnostics base_problems;
    auto base_doc = YamlDocument::load_file(spec.base.string(), base_problems);
    base_problems.throw_if_any();
    if (base_tree["topology"]) {
        // The fabric's shape, so that whole deployments run on as many hosts as they need.
        MapReader base_root = MapReader::root(base_doc);
        const TopologySpec topology_spec = read_topology_spec(base_root, "topology");
        const auto topology = load_topology(topology_spec, base_doc->diagnostics());
        base_doc->diagnostics().throw_if_any();
        spec.topology = topology;
    }
    if (!spec.load.basis.empty()) {
        // Tokens a day become requests per second at the mean length of the base's distribution.
        MapReader workload = MapReader::root(base_doc).child("workload", "the requests to serve");
        const bool input = spec.load.basis == "input_tokens_per_day";
        const LengthDistribution lengths =
            read_length_distribution(workload, input ? "input_tokens" : "output_tokens", spec.base.parent_path(),
                                     input ? "prompt lengths" : "output lengths");
        base_doc->diagnostics().throw_if_any();
        spec.load.mean_tokens = lengths.mean();
        spec.rate_per_s = spec.load.tokens_per_day / 86400.0 / spec.load.mean_tokens;
    }
    check_pool_keys(spec);
    return spec;
}

namespace {

std::string yaml_text(const YAML::Node& tree) {
    YAML::Emitter e;
    e << tree;
    return std::string(e.c_str()) + "\n";
}

double metric(const nlohmann::ordered_json& summary, const std::string& key) {
    const auto it = summary.find(key);
    return it != summary.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string percentile_key(const char* what, int percentile) {
    return fmt::format("{}_p{}", what, percentile);
}

// What the search shares: the base scenario and the plan.
class Planner {
public:
    explicit Planner(const ServingPlanSpec& spec) : spec_(spec), base_(YAML::LoadFile(spec.base.string())) {
        // Relative file paths of the base become absolute, so that the scenarios the search writes
        // elsewhere (best.yaml) load the same files.
        anchor_scenario_paths(base_, spec.base.parent_path());
    }

    std::vector<PoolCandidate> candidates(const PoolSearchSpec& search) const;
    // The scenario's complaints about keys of the search's `set` and `grid` it does not know, at the
    // plan file's values (the sweep's explanation of a rejection).
    std::vector<Diagnostic> unknown_keys(const PoolSearchSpec& search) const;
    // The capacity search of one candidate: its runs, in the order they were made.
    std::vector<PoolRun> size_pool(PoolCandidate& candidate) const;
    // A plan as a whole deployment: the scenario's YAML text.
    std::string deployment_text(const ServingPlanResult& result, const ServingPlanRow& row, int lengthen = 1) const;
    // Whether a run's summary meets the objectives for what the pool does; the verdict says why not.
    // `cv`: the coefficient of variation of the run's arrivals.
    std::pair<bool, std::string> judge(const nlohmann::ordered_json& summary, PoolKind kind, double rate,
                                       double cv) const;
    // The most the requests in the system may grow per second in a stable run (README, "Stability").
    double growth_allowance(const nlohmann::ordered_json& summary, double rate, double cv) const;
    // A plan's whole deployment, repeated longer as a pool run is (keep_going): the last run's
    // scenario text and summary, its outputs committed to run_dir (its scenario file: run_dir + ".yaml").
    std::pair<std::string, nlohmann::ordered_json> run_deployment(const ServingPlanResult& result,
                                                                  const ServingPlanRow& row,
                                                                  const fs::path& run_dir) const;
    // The coefficient of variation of the base's arrivals (Poisson: 1).
    double base_cv() const;

private:
    YAML::Node pool_settings(const PoolSearchSpec& search) const;
    YAML::Node scenario(const std::string& mode, const std::vector<std::pair<const PoolCandidate*, int>>& pools,
                        double rate, Time duration, Time warmup, bool outputs, int split = 1) const;
    std::optional<PoolRun> run_pool(PoolCandidate& candidate, int instances) const;
    std::optional<double> mean_output_tokens() const;
    std::int64_t overload_guard(PoolKind kind, double rate) const;
    // Whether a longer run would judge the growth better: it is above the bare tolerance and either
    // within chance (a longer run narrows the chance term) or small (it may still be settling); a run
    // that rejects requests or stopped overloaded misses the objectives however long it runs.
    bool keep_going(const nlohmann::ordered_json& summary, double rate, double cv) const {
        const double growth = metric(summary, "in_system_growth_per_s");
        return !summary.value("overloaded", false) && metric(summary, "rejected_requests") <= 0 &&
               growth > spec_.growth_tolerance * rate &&
               (growth <= growth_allowance(summary, rate, cv) || growth <= 0.25 * rate);
    }

    const ServingPlanSpec& spec_;
    YAML::Node base_;
};

// The base's pool of the same role, or else its first pool: what a candidate's settings start from.
YAML::Node Planner::pool_settings(const PoolSearchSpec& search) const {
    const YAML::Node deployment = base_["deployment"];
    YAML::Node from;
    if (deployment[to_string(search.kind)]) {
        from = deployment[to_string(search.kind)];
    } else {
        for (const char* name : {"colocated", "prefill", "decode"})
            if (deployment[name]) {
                from = deployment[name];
                break;
            }
    }
    YAML::Node settings = from ? YAML::Clone(from) : YAML::Node(YAML::NodeType::Map);
    settings.remove("instances");
    if (search.set.IsMap())
        for (const auto& item : search.set) settings[item.first.as<std::string>()] = YAML::Clone(item.second);
    return settings;
}

std::vector<PoolCandidate> Planner::candidates(const PoolSearchSpec& search) const {
    std::vector<PoolCandidate> out;
    std::size_t total = 1;
    for (const auto& [key, values] : search.grid) total *= values.size();
    const YAML::Node start = pool_settings(search);
    for (std::size_t i = 0; i < total; ++i) {
        PoolCandidate c;
        c.kind = search.kind;
        c.index = static_cast<int>(i);
        c.settings = YAML::Clone(start);
        // The first key varies slowest.
        std::size_t rest = i, stride = total;
        for (const auto& [key, values] : search.grid) {
            stride /= values.size();
            const YAML::Node value = values[rest / stride];
            rest %= stride;
            c.settings[key] = YAML::Clone(value);
            YAML::Emitter e;
            e.SetMapFormat(YAML::Flow);
            e.SetSeqFormat(YAML::Flow);
            e << value;
            c.description += fmt::format("{}{}={}", c.description.empty() ? "" : ", ", key, e.c_str());
        }
        if (c.description.empty()) c.description = "the base's settings";
        out.push_back(std::move(c));
    }
    return out;
}

// How a pool runs alone: prefill_only, decode_only or colocated.
const char* run_mode(PoolKind kind) {
    return kind == PoolKind::prefill ? "prefill_only" : kind == PoolKind::decode ? "decode_only" : "colocated";
}

// Every value of the grid is loaded once (with the first value of the other keys, and the `set`):
// an unknown key fails every candidate alike, whatever the values, so it is an error in the plan
// file (as a sweep's typo is), not a candidate the scenario rejects. Other complaints (a layout the
// model cannot split) stay the candidate's own.
std::vector<Diagnostic> Planner::unknown_keys(const PoolSearchSpec& search) const {
    const std::string file = spec_.file.string();
    const std::string role = to_string(search.kind);
    const auto override_of = [&](const std::string& key, const YAML::Node& value, const std::string& plan_key) {
        std::string problem;
        const std::string path = "deployment." + role + "." + key;
        return Override{path, parse_dotted_path(path, problem).value_or(std::vector<PathSegment>{}), value,
                        location_of(file, value), plan_key};
    };
    // Probes: the first values of every key, then each further value of each key in turn.
    std::vector<std::pair<std::size_t, std::size_t>> probes{{0, 0}};  // (grid key, value index)
    for (std::size_t k = 0; k < search.grid.size(); ++k)
        for (std::size_t i = 1; i < search.grid[k].second.size(); ++i) probes.emplace_back(k, i);
    const BaseScenario base(spec_.base);
    std::vector<Diagnostic> out;
    for (const auto& [probe_key, probe_value] : probes) {
        SweepPlan plan;
        PoolCandidate c;
        c.kind = search.kind;
        c.settings = pool_settings(search);
        if (search.set.IsMap())
            for (const auto& item : search.set) {
                const std::string key = item.first.as<std::string>();
                plan.overrides.push_back(override_of(key, item.second, role + ".set." + key));
            }
        for (std::size_t k = 0; k < search.grid.size(); ++k) {
            const auto& [key, values] = search.grid[k];
            const std::size_t i = k == probe_key ? probe_value : 0;
            c.settings[key] = YAML::Clone(values[i]);
            plan.overrides.push_back(override_of(key, values[i], fmt::format("{}.grid.{}[{}]", role, key, i)));
        }
        const std::string text = yaml_text(
            scenario(run_mode(search.kind), {{&c, 1}}, spec_.rate_per_s, spec_.duration, spec_.warmup, false));
        const LoadedPlan loaded = load_plan_text(text, spec_.base);
        std::vector<Diagnostic> unknown;
        for (const auto& d : loaded.problems)
            if (d.message.starts_with("unknown key")) unknown.push_back(d);
        for (auto& d : explain_rejection(base, plan, unknown)) {
            if (d.where.file != file) continue;  // a key of the base's own, not of the search
            if (std::none_of(out.begin(), out.end(), [&](const Diagnostic& o) { return format(o) == format(d); }))
                out.push_back(std::move(d));
        }
    }
    return out;
}

YAML::Node Planner::scenario(const std::string& mode, const std::vector<std::pair<const PoolCandidate*, int>>& pools,
                             double rate, Time duration, Time warmup, bool outputs, int split) const {
    YAML::Node tree = YAML::Clone(base_);
    const YAML::Node old = base_["deployment"];
    YAML::Node deployment(YAML::NodeType::Map);
    deployment["mode"] = mode;
    for (const auto& [candidate, instances] : pools) {
        YAML::Node pool = YAML::Clone(candidate->settings);
        pool["instances"] = instances;
        deployment[to_string(candidate->kind)] = pool;
    }
    if (old["kv_transfer"] && (mode == "disaggregated" || mode == "decode_only")) {
        deployment["kv_transfer"] = YAML::Clone(old["kv_transfer"]);
        // A decode pool alone has no simulated senders, so its KV arrives over FIFO links (the
        // serving scenario's rule); a base asking for network flows gets them in whole deployments.
        if (mode == "decode_only") deployment["kv_transfer"].remove("model");
    }
    if (old["speculative"]) deployment["speculative"] = YAML::Clone(old["speculative"]);
    tree["deployment"] = deployment;
    YAML::Node workload = tree["workload"];
    workload["arrival"]["rate_per_s"] = rate;
    if (split > 1) {
        // Every `split`-th arrival of a renewal stream (a round-robin router's share) is a renewal
        // stream whose inter-arrival times are sums of `split` of the original: the coefficient of
        // variation falls by sqrt(split) (Poisson becomes Erlang). A least-loaded router balances at
        // least as well, so the instance is sized on the safe side.
        const YAML::Node cv = base_["workload"]["arrival"]["cv"];
        const double base_cv = cv ? cv.as<double>() : 1.0;
        workload["arrival"]["process"] = "gamma";
        workload["arrival"]["cv"] = base_cv / std::sqrt(static_cast<double>(split));
    }
    workload.remove("requests");
    workload["duration"] = time_text(duration);
    tree["warmup"] = time_text(warmup);
    YAML::Node slo(YAML::NodeType::Map);
    if (spec_.ttft_slo) slo["ttft"] = time_text(*spec_.ttft_slo);
    if (spec_.tpot_slo) slo["tpot"] = time_text(*spec_.tpot_slo);
    tree["slo"] = slo;
    tree.remove("iterations_csv");
    tree.remove("requests_csv");
    if (!outputs) {
        tree["iterations_csv"] = false;
        tree["requests_csv"] = false;
    }
    if (spec_.seed) tree["seed"] = *spec_.seed;
    return tree;
}

// The mean of the base's output lengths, where its distribution says it simply (clipping ignored,
// which only raises the mean, and so the guard below).
std::optional<double> Planner::mean_output_tokens() const {
    const YAML::Node d = base_["workload"]["output_tokens"];
    if (!d || !d.IsMap() || !d["distribution"]) return std::nullopt;
    const std::string kind = d["distribution"].as<std::string>();
    if (kind == "fixed" && d["value"]) return d["value"].as<double>();
    if (kind == "uniform" && d["min"] && d["max"]) return (d["min"].as<double>() + d["max"].as<double>()) / 2;
    if (kind == "lognormal" && d["median"]) {
        const double sigma = d["sigma"] ? d["sigma"].as<double>() : 1.0;
        return d["median"].as<double>() * std::exp(sigma * sigma / 2);
    }
    return std::nullopt;
}

// Little's law: a pool meeting the objectives holds about rate x (time a request may take) requests.
// A run holding four times that (plus 100) cannot meet them and stops early, reported overloaded;
// without the objectives or the mean output length that bound needs, runs are never stopped.
std::int64_t Planner::overload_guard(PoolKind kind, double rate) const {
    const std::optional<double> out = mean_output_tokens();
    double allowed = 0;
    if (kind == PoolKind::prefill) {
        if (!spec_.ttft_slo) return 0;
        allowed = spec_.ttft_slo->seconds();
    } else {
        if (!out || !spec_.tpot_slo || (kind == PoolKind::colocated && !spec_.ttft_slo)) return 0;
        allowed = *out * spec_.tpot_slo->seconds() + (kind == PoolKind::colocated ? spec_.ttft_slo->seconds() : 0.0);
    }
    return static_cast<std::int64_t>(std::ceil(4 * rate * allowed)) + 100;
}

// The coefficient of variation of a scenario's arrivals: gamma's `cv`, Poisson's 1.
double arrival_cv(const YAML::Node& tree) {
    const YAML::Node arrival = tree["workload"]["arrival"];
    if (arrival && arrival["process"] && arrival["process"].as<std::string>() == "gamma" && arrival["cv"])
        return arrival["cv"].as<double>();
    return 1.0;
}

double Planner::base_cv() const {
    return arrival_cv(base_);
}

// A stable deployment's count of requests in the system still moves by chance: with Poisson arrivals
// and requests that do not queue (an M/G/infinity system) the count at any moment is Poisson with
// mean L = rate x mean time in system (Little's law), so the change between two moments further apart
// than a request's stay has variance 2L; a renewal stream with coefficient of variation cv multiplies
// the variance of arrival counts by cv^2 over long windows (its index of dispersion), taken here as
// the bound max(1, cv^2). The growth the summary measures is that change over the rate window, per
// second; beyond the tolerance, it must exceed growth_sigmas such standard deviations to count.
double Planner::growth_allowance(const nlohmann::ordered_json& summary, double rate, double cv) const {
    double window = 0;
    if (const auto it = summary.find("rate_window_s"); it != summary.end() && it->is_array() && it->size() == 2)
        window = (*it)[1].get<double>() - (*it)[0].get<double>();
    const double in_system = rate * metric(summary, "mean_time_in_system_s");
    const double chance = window > 0 ? std::sqrt(2 * in_system * std::max(1.0, cv * cv)) / window : 0.0;
    return spec_.growth_tolerance * rate + spec_.growth_sigmas * chance;
}

std::pair<bool, std::string> Planner::judge(const nlohmann::ordered_json& summary, PoolKind kind, double rate,
                                            double cv) const {
    std::vector<std::string> misses;
    const int p = spec_.percentile;
    if (metric(summary, "rejected_requests") > 0)
        misses.push_back(
            fmt::format("rejects {:.0f} requests (KV cache too small)", metric(summary, "rejected_requests")));
    if (summary.value("overloaded", false))
        misses.push_back(
            fmt::format("overloaded: stopped at {:.0f} requests in the system, four times what meeting "
                        "the objectives allows (Little's law)",
                        metric(summary, "mean_requests_in_system")));
    else if (metric(summary, "completed_requests") <= 0)
        misses.push_back("completes no request");
    const double growth = metric(summary, "in_system_growth_per_s");
    if (const double allowed = growth_allowance(summary, rate, cv); growth > allowed)
        misses.push_back(
            fmt::format("unstable: its queue grows by {:.3g} requests/s (stable: at most {:.3g})", growth, allowed));
    if (spec_.ttft_slo && kind != PoolKind::decode) {
        const double ttft = metric(summary, percentile_key("ttft_ms", p).c_str());
        if (ttft > spec_.ttft_slo->ms()) misses.push_back(fmt::format("TTFT p{} {:.4g} ms", p, ttft));
    }
    if (spec_.tpot_slo && kind != PoolKind::prefill) {
        const double tpot = metric(summary, percentile_key("tpot_ms", p).c_str());
        if (tpot > spec_.tpot_slo->ms()) misses.push_back(fmt::format("TPOT p{} {:.4g} ms", p, tpot));
    }
    if (misses.empty()) return {true, "meets"};
    std::string verdict = "misses: ";
    for (std::size_t i = 0; i < misses.size(); ++i) verdict += (i ? "; " : "") + misses[i];
    return {false, verdict};
}

// One instance of the candidate at rate / instances; a run whose growth a longer run would judge
// better is repeated twice as long up to max_duration (README, "Stability"). Nothing when the scenario rejects the
// candidate (recorded in it).
std::optional<PoolRun> Planner::run_pool(PoolCandidate& candidate, int instances) const {
    const char* mode = run_mode(candidate.kind);
    PoolRun run;
    run.kind = candidate.kind;
    run.candidate = candidate.index;
    run.instances = instances;
    run.rate_per_instance = spec_.rate_per_s / instances;
    Time duration = spec_.duration, warmup = spec_.warmup;
    static std::atomic<int> counter{0};
    while (true) {
        YAML::Node tree = scenario(mode, {{&candidate, 1}}, run.rate_per_instance, duration, warmup, false, instances);
        run.arrival_cv = arrival_cv(tree);
        if (const std::int64_t guard = overload_guard(candidate.kind, run.rate_per_instance); guard > 0)
            tree["stop_when_in_system_exceeds"] = guard;
        const std::string text = yaml_text(tree);
        LoadedScenario loaded;
        try {
            loaded = load_scenario_text(text, spec_.base, std::nullopt);
        } catch (const InputError& e) {
            candidate.invalid = e.diagnostics().empty() ? "rejected by the scenario" : e.diagnostics().front().message;
            if (!e.diagnostics().empty() && !e.diagnostics().front().key_path.empty())
                candidate.invalid = e.diagnostics().front().key_path + ": " + candidate.invalid;
            return std::nullopt;
        }
        RunOutput out(fs::temp_directory_path() / fmt::format("clustersim-plan-{}-{}", ::getpid(), counter++));
        RunOptions run_options;
        run_options.seed = loaded.seed;
        run.summary = loaded.runner->run(run_options, out);
        run.duration_s = duration.seconds();
        candidate.gpus = static_cast<int>(metric(run.summary, "gpus"));
        // Longer while its growth is neither clearly stable nor clearly hopeless (keep_going).
        if (!keep_going(run.summary, run.rate_per_instance, run.arrival_cv) || duration * 2 > spec_.max_duration) break;
        duration = duration * 2;
        warmup = warmup * 2;
    }
    std::tie(run.meets, run.verdict) = judge(run.summary, candidate.kind, run.rate_per_instance, run.arrival_cv);
    return run;
}

std::vector<PoolRun> Planner::size_pool(PoolCandidate& candidate) const {
    std::vector<PoolRun> runs;
    std::map<int, bool> meets;
    auto measure = [&](int n) {
        if (const auto it = meets.find(n); it != meets.end()) return std::optional<bool>(it->second);
        std::optional<PoolRun> run = run_pool(candidate, n);
        if (!run) return std::optional<bool>();
        meets[n] = run->meets;
        runs.push_back(std::move(*run));
        return std::optional<bool>(runs.back().meets);
    };
    // Doubling until a count meets the objectives, then bisection below it.
    int failing = 0, passing = 0;
    for (int n = 1;; n = std::min(2 * n, spec_.max_instances)) {
        const auto ok = measure(n);
        if (!ok) return runs;  // the scenario rejects the candidate
        if (*ok) {
            passing = n;
            break;
        }
        failing = n;
        // Requests whose KV cannot fit in one instance are rejected whatever the count.
        if (n == spec_.max_instances || metric(runs.back().summary, "rejected_requests") > 0) break;
    }
    if (passing == 0) {
        const PoolRun& last = runs.back();
        candidate.infeasible =
            metric(last.summary, "rejected_requests") > 0
                ? fmt::format("rejects requests whose KV cache does not fit in one instance ({:.0f} of {:.0f})",
                              metric(last.summary, "rejected_requests"), metric(last.summary, "arrived_requests"))
                : fmt::format("even {} instances (1/{} of the load each) {}", last.instances, last.instances,
                              last.verdict.substr(std::string("misses: ").size()));
        return runs;
    }
    while (passing - failing > 1) {
        const int mid = failing + (passing - failing) / 2;
        if (*measure(mid))
            passing = mid;
        else
            failing = mid;
    }
    candidate.fewest = passing;
    for (int n = passing + 1; n <= std::min(passing + spec_.extra_instances, spec_.max_instances); ++n) measure(n);
    std::sort(runs.begin(), runs.end(), [](const PoolRun& a, const PoolRun& b) { return a.instances < b.instances; });
    return runs;
}

std::string Planner::deployment_text(const ServingPlanResult& result, const ServingPlanRow& row, int lengthen) const {
    std::vector<std::pair<const PoolCandidate*, int>> pools;
    Time duration = spec_.duration, warmup = spec_.warmup;
    const auto add = [&](const std::vector<PoolCandidate>& candidates, int candidate, int instances, std::size_t run) {
        pools.emplace_back(&candidates[static_cast<std::size_t>(candidate)], instances);
        // As long as the longest run of its pools needed to settle.
        const double k = result.runs[run].duration_s / spec_.duration.seconds();
        if (k > duration / spec_.duration) {
            duration = spec_.duration * k;
            warmup = spec_.warmup * k;
        }
    };
    if (row.mode == "colocated") {
        add(result.colocated, row.first_candidate, row.first_instances, row.first_run);
    } else {
        add(result.prefill, row.first_candidate, row.first_instances, row.first_run);
        add(result.decode, row.second_candidate, row.second_instances, row.second_run);
    }
    duration = duration * lengthen;
    warmup = warmup * lengthen;
    YAML::Node tree = scenario(row.mode, pools, spec_.rate_per_s, duration, warmup, true);
    // The whole deployment on a fabric that holds it (the base's topology with more hosts if need
    // be), so that its KV transfers run as flows on the network model, contending where they meet.
    if (spec_.topology) {
        int gpus = 0;
        for (const auto& [candidate, instances] : pools) gpus += candidate->gpus * instances;
        const int per_host = spec_.topology->gpus_per_host();
        const int hosts = spec_.topology->hosts_that_hold((gpus + per_host - 1) / per_host);
        if (hosts > spec_.topology->host_count()) {
            YAML::Node topology = tree["topology"];
            if (topology.IsScalar()) {
                const std::string file = topology.Scalar();
                tree["topology"] = YAML::Node(YAML::NodeType::Map);
                tree["topology"]["file"] = file;
            }
            tree["topology"]["hosts"] = hosts;
        }
    }
    tree["name"] = fmt::format("{}-plan-{}", spec_.name, row.plan);
    tree["description"] = fmt::format("plan {} of the serving capacity search {} ({})", row.plan, spec_.name,
                                      spec_.file.filename().string());
    return yaml_text(tree);
}

void check_pool_keys(const ServingPlanSpec& spec) {
    const Planner planner(spec);
    std::vector<Diagnostic> problems;
    for (const PoolSearchSpec* search : {&spec.prefill, &spec.decode, &spec.colocated_pool}) {
        if (search->kind == PoolKind::colocated ? !spec.colocated : !spec.disaggregated) continue;
        for (auto& d : planner.unknown_keys(*search)) problems.push_back(std::move(d));
    }
    if (!problems.empty()) throw InputError(std::move(problems));
}

// The whole deployment at the duration of its pools' longest run; while keep_going says a longer run
// would judge its growth better (as for a pool run), run again twice as long, warm-up too, up to
// max_duration. Each run's outputs replace the last's in run_dir.
std::pair<std::string, nlohmann::ordered_json> Planner::run_deployment(const ServingPlanResult& result,
                                                                       const ServingPlanRow& row,
                                                                       const fs::path& run_dir) const {
    // The duration deployment_text starts from: the longest of its pools' runs.
    double longest = std::max(spec_.duration.seconds(), result.runs[row.first_run].duration_s);
    if (row.mode == "disaggregated") longest = std::max(longest, result.runs[row.second_run].duration_s);
    for (int lengthen = 1;; lengthen *= 2) {
        std::string text = deployment_text(result, row, lengthen);
        LoadedScenario loaded = load_scenario_text(text, run_dir.string() + ".yaml", std::nullopt);
        RunOutput out(run_dir);
        out.write_text("resolved.yaml", loaded.resolved_yaml);
        RunOptions run_options;
        run_options.seed = loaded.seed;
        nlohmann::ordered_json summary = loaded.runner->run(run_options, out);
        out.commit();
        if (!keep_going(summary, spec_.rate_per_s, base_cv()) ||
            longest * lengthen * 2 > spec_.max_duration.seconds() * (1 + 1e-9))
            return {std::move(text), std::move(summary)};
    }
}

// Plans from the pools' runs: every count of every feasible candidate (disaggregated: prefill x decode).
std::vector<ServingPlanRow> make_rows(const ServingPlanSpec& spec, const ServingPlanResult& result) {
    std::vector<ServingPlanRow> rows;
    // The runs of counts from a candidate's fewest meeting the objectives up, by pool kind (the
    // counts below it, and candidates no count serves, would only give plans that miss them).
    std::vector<std::size_t> prefill, decode, colocated;
    for (std::size_t i = 0; i < result.runs.size(); ++i) {
        const PoolRun& r = result.runs[i];
        const auto& candidates = r.kind == PoolKind::prefill  ? result.prefill
                                 : r.kind == PoolKind::decode ? result.decode
                                                              : result.colocated;
        const auto& fewest = candidates[static_cast<std::size_t>(r.candidate)].fewest;
        if (!fewest || r.instances < *fewest) continue;
        (r.kind == PoolKind::prefill ? prefill : r.kind == PoolKind::decode ? decode : colocated).push_back(i);
    }
    const int p = spec.percentile;
    const auto input_rate = [](const PoolRun& r) {  // prompt tokens/s of the one instance
        return metric(r.summary, "input_tokens_per_s_per_node_prefill") * metric(r.summary, "prefill_nodes");
    };
    const auto all_tokens = [](const PoolRun& r) {
        return metric(r.summary, "tokens_per_s_per_gpu") * metric(r.summary, "gpus");
    };
    if (spec.disaggregated) {
        for (std::size_t pi : prefill)
            for (std::size_t di : decode) {
                const PoolRun& a = result.runs[pi];
                const PoolRun& b = result.runs[di];
                ServingPlanRow row;
                row.mode = "disaggregated";
                row.first_candidate = a.candidate;
                row.first_instances = a.instances;
                row.first_run = pi;
                row.second_candidate = b.candidate;
                row.second_instances = b.instances;
                row.second_run = di;
                const int gp = result.prefill[static_cast<std::size_t>(a.candidate)].gpus;
                const int gd = result.decode[static_cast<std::size_t>(b.candidate)].gpus;
                row.gpus = a.instances * gp + b.instances * gd;
                row.ttft_ms = metric(a.summary, percentile_key("ttft_ms", p));
                row.tpot_ms = metric(b.summary, percentile_key("tpot_ms", p));
                row.tokens_per_s_per_user = metric(b.summary, "output_tokens_per_s_per_decoding_request");
                row.tokens_per_s_per_gpu = (a.instances * input_rate(a) + b.instances * all_tokens(b)) / row.gpus;
                row.meets = a.meets && b.meets;
                rows.push_back(row);
            }
    }
    if (spec.colocated) {
        for (std::size_t ci : colocated) {
            const PoolRun& a = result.runs[ci];
            ServingPlanRow row;
            row.mode = "colocated";
            row.first_candidate = a.candidate;
            row.first_instances = a.instances;
            row.first_run = ci;
            row.gpus = a.instances * result.colocated[static_cast<std::size_t>(a.candidate)].gpus;
            row.ttft_ms = metric(a.summary, percentile_key("ttft_ms", p));
            row.tpot_ms = metric(a.summary, percentile_key("tpot_ms", p));
            row.tokens_per_s_per_user = metric(a.summary, "output_tokens_per_s_per_decoding_request");
            row.tokens_per_s_per_gpu = metric(a.summary, "tokens_per_s_per_gpu");
            row.meets = a.meets;
            rows.push_back(row);
        }
    }
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i].plan = i;
    // The front of tokens/s per GPU against tokens/s per user over the plans meeting the objectives.
    for (auto& r : rows) {
        if (!r.meets) continue;
        r.on_front = std::none_of(rows.begin(), rows.end(), [&](const ServingPlanRow& o) {
            return o.meets && o.tokens_per_s_per_gpu >= r.tokens_per_s_per_gpu &&
                   o.tokens_per_s_per_user >= r.tokens_per_s_per_user &&
                   (o.tokens_per_s_per_gpu > r.tokens_per_s_per_gpu ||
                    o.tokens_per_s_per_user > r.tokens_per_s_per_user);
        });
    }
    return rows;
}

}  // namespace

ServingPlanResult search_serving_plan(const ServingPlanSpec& spec, const PlanOptions& options) {
    const auto started = std::chrono::steady_clock::now();
    const fs::path out_dir = options.out_dir.empty() ? fs::path("results/plans") / spec.name : options.out_dir;
    Planner planner(spec);
    ServingPlanResult result;
    result.spec = spec;
    if (spec.disaggregated) {
        result.prefill = planner.candidates(spec.prefill);
        result.decode = planner.candidates(spec.decode);
    }
    if (spec.colocated) result.colocated = planner.candidates(spec.colocated_pool);

    // Every candidate's capacity search on worker threads; the runs are gathered in candidate order.
    std::vector<PoolCandidate*> all;
    for (auto* list : {&result.prefill, &result.decode, &result.colocated})
        for (auto& c : *list) all.push_back(&c);
    std::vector<std::vector<PoolRun>> runs(all.size());
    std::vector<std::string> failures(all.size());
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t jobs =
        std::min<std::size_t>(all.size(), options.jobs > 0 ? static_cast<std::size_t>(options.jobs) : cores);
    ProgressMeter progress(stderr, options.progress, all.size(), "pool candidates");
    std::mutex progress_mutex;
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> workers;
    for (std::size_t w = 0; w < std::max<std::size_t>(jobs, 1); ++w)
        workers.emplace_back([&] {
            for (std::size_t i; (i = next++) < all.size();) {
                try {
                    runs[i] = planner.size_pool(*all[i]);
                } catch (const std::exception& e) {
                    failures[i] = e.what();
                }
                std::lock_guard lock(progress_mutex);
                progress.advance();
            }
        });
    for (auto& w : workers) w.join();
    progress.finish();
    for (std::size_t i = 0; i < all.size(); ++i)
        if (!failures[i].empty())
            throw std::runtime_error(fmt::format("{} candidate {} ({}): the run failed: {}", to_string(all[i]->kind),
                                                 all[i]->index, all[i]->description, failures[i]));
    for (auto& r : runs)
        for (auto& run : r) result.runs.push_back(std::move(run));
    result.rows = make_rows(spec, result);
    result.search_seconds = seconds_since(started);

    // Whole deployments of the best plans, fewest GPUs first, until one meets the objectives.
    const auto verify_started = std::chrono::steady_clock::now();
    std::vector<std::size_t> order;
    for (const auto& r : result.rows)
        if (r.meets) order.push_back(r.plan);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        const auto& x = result.rows[a];
        const auto& y = result.rows[b];
        if (x.gpus != y.gpus) return x.gpus < y.gpus;
        if (x.tokens_per_s_per_user != y.tokens_per_s_per_user)
            return x.tokens_per_s_per_user > y.tokens_per_s_per_user;
        return a < b;
    });
    fs::create_directories(out_dir / "verify");
    // After a plan fails as a whole deployment, the same plan with one more instance of the pool that
    // missed (TTFT or a growing prefill queue: prefill; TPOT: decode) goes next, if the search made
    // it; plans whose pools ran exactly like a failed plan's are skipped.
    const auto find_row = [&](const ServingPlanRow& like, int first, int second) -> std::optional<std::size_t> {
        for (const auto& r : result.rows)
            if (r.meets && r.mode == like.mode && r.first_candidate == like.first_candidate &&
                r.second_candidate == like.second_candidate && r.first_instances == first &&
                r.second_instances == second)
                return r.plan;
        return std::nullopt;
    };
    const auto same_as = [&](const ServingPlanRow& a, const ServingPlanRow& b) {
        return a.mode == b.mode && a.gpus == b.gpus && a.first_instances == b.first_instances &&
               a.second_instances == b.second_instances && a.ttft_ms == b.ttft_ms && a.tpot_ms == b.tpot_ms &&
               a.tokens_per_s_per_user == b.tokens_per_s_per_user;
    };
    std::vector<bool> tried(result.rows.size(), false);
    std::optional<std::size_t> next_plan;
    std::size_t cursor = 0;
    while (result.verified.size() < static_cast<std::size_t>(spec.verify)) {
        if (!next_plan) {
            while (cursor < order.size() &&
                   (tried[order[cursor]] ||
                    std::any_of(result.verified.begin(), result.verified.end(), [&](const VerifiedPlan& v) {
                        return same_as(result.rows[v.plan], result.rows[order[cursor]]);
                    })))
                ++cursor;
            if (cursor == order.size()) break;
            next_plan = order[cursor];
        }
        const ServingPlanRow& row = result.rows[*next_plan];
        next_plan.reset();
        tried[row.plan] = true;
        VerifiedPlan v;
        v.plan = row.plan;
        v.scenario = out_dir / "verify" / fmt::format("plan-{}.yaml", row.plan);
        v.run_dir = out_dir / "verify" / fmt::format("plan-{}", row.plan);
        std::string text;
        std::tie(text, v.summary) = planner.run_deployment(result, row, v.run_dir);
        {
            std::ofstream f(v.scenario);
            f << text;
        }
        std::tie(v.meets, v.verdict) =
            planner.judge(v.summary, PoolKind::colocated, spec.rate_per_s, planner.base_cv());
        result.verified.push_back(v);
        if (v.meets) {
            result.best = row.plan;
            std::ofstream best(out_dir / "best.yaml");
            best << fmt::format(
                "# The best plan of the serving capacity search {} ({}): plan {} of {}, the fewest GPUs\n"
                "# meeting the objectives, checked as a whole deployment (verify/plan-{}/summary.json).\n"
                "# `clustersim run` on this file gives the same metrics.\n",
                spec.name, spec.file.string(), row.plan, result.rows.size(), row.plan);
            best << text;
            break;
        }
        const double ttft = metric(v.summary, percentile_key("ttft_ms", spec.percentile));
        const double tpot = metric(v.summary, percentile_key("tpot_ms", spec.percentile));
        const bool unstable = metric(v.summary, "in_system_growth_per_s") >
                              planner.growth_allowance(v.summary, spec.rate_per_s, planner.base_cv());
        const bool ttft_missed = spec.ttft_slo && ttft > spec.ttft_slo->ms();
        const bool tpot_missed = spec.tpot_slo && tpot > spec.tpot_slo->ms();
        bool first = ttft_missed || (unstable && ttft > 1.5 * row.ttft_ms);
        bool second = row.mode == "disaggregated" && (tpot_missed || (unstable && !first));
        if (row.mode == "colocated") first = first || tpot_missed || unstable;
        if (first || second)
            next_plan = find_row(row, row.first_instances + (first ? 1 : 0), row.second_instances + (second ? 1 : 0));
        if (next_plan && tried[*next_plan]) next_plan.reset();
    }
    result.verify_seconds = seconds_since(verify_started);
    write_serving_plan_outputs(result, out_dir);
    return result;
}

PlanOutcome run_serving_plan(const fs::path& plan_file, const PlanOptions& options) {
    const ServingPlanSpec spec = read_serving_plan(plan_file);
    PlanOptions o = options;
    if (o.out_dir.empty()) o.out_dir = fs::path("results/plans") / spec.name;
    const ServingPlanResult result = search_serving_plan(spec, o);
    PlanOutcome outcome;
    outcome.name = spec.name;
    outcome.out_dir = o.out_dir;
    std::size_t meeting = 0;
    for (const auto& r : result.rows) meeting += r.meets ? 1 : 0;
    outcome.headline = fmt::format(
        "{}: {} plans from {} pool runs ({} meet the objectives) in {:.1f} s; {} whole "
        "deployment{} verified in {:.1f} s",
        spec.name, result.rows.size(), result.runs.size(), meeting, result.search_seconds, result.verified.size(),
        result.verified.size() == 1 ? "" : "s", result.verify_seconds);
    if (result.best) {
        const auto& row = result.rows[*result.best];
        outcome.headline += fmt::format("\n  best: plan {} ({}), {} GPUs; report in {}", row.plan,
                                        describe_plan_row(result, row), row.gpus, (o.out_dir / "report.md").string());
    } else {
        outcome.headline += fmt::format("\n  no plan meets the objectives as a whole deployment; see {}",
                                        (o.out_dir / "report.md").string());
    }
    return outcome;
}

}  // namespace clustersim
