// The training plan search: the plan file, the combinations and why some never run, the sweep that
// runs the others, and plans.csv, best.yaml and report.md (see training_plan.hpp and README.md).
#include "sim/planning/training_plan.hpp"

#include "sim/input/yaml_reader.hpp"
#include "sim/pipeline/pipeline_schedule.hpp"
#include "sim/planning/plan_file.hpp"
#include "sim/planning/sweep_plan.hpp"
#include "sim/planning/sweep_table.hpp"
#include "sim/scenario/scenario.hpp"
#include "sim/training/training_plan.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <type_traits>
#include <utility>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

// Names the scenario accepts for `schedule.kind` and `recompute`.
std::vector<std::string> schedule_names() {
    std::vector<std::string> names;
    for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved_1f1b,
                           ScheduleKind::zb1p, ScheduleKind::dualpipe, ScheduleKind::dualpipev})
        names.emplace_back(to_string(k));
    return names;
}
const std::vector<std::string> kRecomputeNames = {"none", "selective", "full"};

const char* recompute_name(Recompute r) {
    switch (r) {
        case Recompute::none:
            return "none";
        case Recompute::selective:
            return "selective";
        case Recompute::full:
            return "full";
    }
    return "none";
}

// Reads one list of the `search` mapping, keeping each value's node (for overrides and errors).
template <typename T>
std::vector<SearchValue<T>> read_axis(MapReader& search, const std::string& key, std::string_view meaning,
                                      const Check<T>& check, const std::vector<std::string>& allowed,
                                      Diagnostics& diagnostics) {
    const std::size_t before = diagnostics.size();
    const std::vector<T> values = search.list<T>(key, meaning, false);
    const YAML::Node& map = search.node();
    const YAML::Node list = map.IsMap() ? map[key] : YAML::Node();
    std::vector<SearchValue<T>> out;
    const std::string path = "search." + key;
    const std::string file = search.document()->file();
    if (diagnostics.size() != before || !list.IsDefined() || list.IsNull()) return out;
    if (list.size() == 0) {
        diagnostics.error(
            location_of(file, list), path,
            fmt::format("the list of {} values is empty; leave \"{}\" out to keep the base's value", key, key));
        return out;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
        const YAML::Node node = list[i];
        const std::string item = fmt::format("{}[{}]", path, i);
        if (check) {
            if (auto bad = check(values[i])) {
                diagnostics.error(location_of(file, node), item, fmt::format("{}; found {}", *bad, node.Scalar()));
                continue;
            }
        }
        if constexpr (std::is_same_v<T, std::string>) {
            if (std::find(allowed.begin(), allowed.end(), values[i]) == allowed.end()) {
                std::string message =
                    fmt::format("expected one of: {}; found \"{}\"", fmt::join(allowed, ", "), values[i]);
                if (auto near = closest_match(values[i], allowed); !near.empty())
                    message += fmt::format(" (did you mean \"{}\"?)", near);
                diagnostics.error(location_of(file, node), item, message);
                continue;
            }
        }
        const auto same =
            std::find_if(out.begin(), out.end(), [&](const SearchValue<T>& v) { return v.value == values[i]; });
        if (same != out.end()) {
            diagnostics.error(location_of(file, node), item,
                              fmt::format("{} is listed twice (first as {})", node.Scalar(), same->key));
            continue;
        }
        out.push_back({values[i], node, item});
    }
    return out;
}

Override make_override(const std::string& file, const std::string& path, const YAML::Node& value,
                       const YAML::Node& blame, const std::string& key) {
    std::string problem;  // the paths are the search's own, well formed
    return Override{path, parse_dotted_path(path, problem).value_or(std::vector<PathSegment>{}), value,
                    location_of(file, blame), key};
}

// What the structural checks need to know about the base scenario.
struct BaseFacts {
    int gpus = 0;
    int gpus_per_host = 0;
    int layers = 0;
    int routed_experts = 0;
    std::int64_t global_batch = 0;
    std::size_t base_split_parts = 0;  // entries of the base's layers_per_part (0: none)
};

// The first rule the combination breaks, with its numbers; fills in dp and the micro-batches.
std::optional<std::pair<DropReason, std::string>> structural_problem(PlanCombination& c, const BaseFacts& f) {
    using R = DropReason;
    if (f.gpus_per_host > 0 && c.tp > f.gpus_per_host)
        return std::pair{R::tp_exceeds_host, fmt::format("tp {} > {} GPUs per host", c.tp, f.gpus_per_host)};
    if (f.gpus % (c.tp * c.pp) != 0)
        return std::pair{R::gpus_not_divisible, fmt::format("{} GPUs / (tp {} x pp {})", f.gpus, c.tp, c.pp)};
    c.dp = f.gpus / (c.tp * c.pp);
    if ((c.dp * c.tp) % c.ep != 0)
        return std::pair{R::ep_not_dividing_stage,
                         fmt::format("ep {} vs dp {} x tp {} = {} ranks per stage", c.ep, c.dp, c.tp, c.dp * c.tp)};
    if (c.ep > 1 && (f.routed_experts == 0 || f.routed_experts % c.ep != 0))
        return std::pair{R::ep_not_dividing_experts, fmt::format("{} routed experts / ep {}", f.routed_experts, c.ep)};
    const std::int64_t per_step = static_cast<std::int64_t>(c.dp) * c.micro_batch_size;
    if (f.global_batch % per_step != 0)
        return std::pair{R::batch_not_divisible, fmt::format("global batch {} / (dp {} x micro-batch {})",
                                                             f.global_batch, c.dp, c.micro_batch_size)};
    c.micro_batches = static_cast<int>(f.global_batch / per_step);
    const ScheduleKind kind = parse_schedule_kind(c.schedule).value_or(ScheduleKind::one_f_one_b);
    const int parts = schedule_parts(kind, c.pp, c.virtual_stages);
    if (f.layers < parts)
        return std::pair{R::too_few_layers, fmt::format("{} layers < {} model parts", f.layers, parts)};
    const int m = c.micro_batches;
    if (kind == ScheduleKind::interleaved_1f1b && m % c.pp != 0)
        return std::pair{R::interleaved_micro_batches, fmt::format("{} micro-batches / pp {}", m, c.pp)};
    if (kind == ScheduleKind::dualpipe && c.pp % 2 != 0)
        return std::pair{R::dualpipe_odd_pp, fmt::format("pp {}", c.pp)};
    if (kind == ScheduleKind::dualpipe && m % 2 != 0)
        return std::pair{R::dualpipe_odd_micro_batches, fmt::format("{} micro-batches", m)};
    if ((kind == ScheduleKind::dualpipe || kind == ScheduleKind::dualpipev) && m < 2 * c.pp)
        return std::pair{R::too_few_micro_batches, fmt::format("{} micro-batches < 2 x pp {}", m, c.pp)};
    c.base_split = f.base_split_parts > 0 && static_cast<int>(f.base_split_parts) == parts;
    return std::nullopt;
}

// ---- reading rows ---------------------------------------------------------------------------------

std::optional<double> metric(const PlanRow& row, const std::string& name) {
    for (const auto& [column, cell] : row.metrics) {
        if (column != name) continue;
        double v = 0;
        const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
        if (ec != std::errc() || end != cell.data() + cell.size()) return std::nullopt;
        return v;
    }
    return std::nullopt;
}
double metric_or(const PlanRow& row, const std::string& name, double fallback = 0) {
    return metric(row, name).value_or(fallback);
}
bool fits(const PlanRow& row) {
    if (row.status != PlanStatus::ok || !metric(row, "tokens_per_s_per_gpu")) return false;
    for (const auto& [column, cell] : row.metrics)
        if (column == "fits_in_memory") return cell == "true";
    return true;
}

std::string layout_text(const PlanCombination& c) {
    std::string s =
        fmt::format("TP{} PP{} EP{}{}, {}", c.tp, c.pp, c.ep, c.dp > 0 ? fmt::format(" DP{}", c.dp) : "", c.schedule);
    if (c.virtual_stages > 1) s += fmt::format(" (v{})", c.virtual_stages);
    s += fmt::format(", micro-batch {}", c.micro_batch_size);
    return s;
}
std::string options_text(const PlanCombination& c) {
    return fmt::format("ZeRO-{}, recompute {}", c.zero_stage, c.recompute);
}

std::string pct(double fraction) {
    return fmt::format("{:.1f}%", fraction * 100);
}

// Where a fitting plan's step goes, from its own metrics. The bubble is the mean idle share of the
// pipeline ranks times the pipeline time; exposed communication is the fraction of the step the
// compute stream waited for communication (inside chunks and the DP tail); the rest is compute and
// everything else. The parts are approximations from means, not a partition of one rank's time.
struct TimeSplit {
    double step = 0, pipeline = 0, bubble = 0, exposed = 0, rest = 0, tail = 0;
};
TimeSplit time_split(const PlanRow& row) {
    TimeSplit t;
    t.step = metric_or(row, "step_time_s");
    t.pipeline = metric_or(row, "pipeline_time_s", t.step);
    t.bubble = metric_or(row, "bubble_fraction") * t.pipeline;
    t.exposed = metric_or(row, "exposed_comm_fraction") * t.step;
    t.rest = t.step - t.bubble - t.exposed;
    t.tail = t.step - t.pipeline;
    return t;
}

}  // namespace

const char* to_string(DropReason reason) {
    switch (reason) {
        case DropReason::tp_exceeds_host:
            return "tp_exceeds_host";
        case DropReason::gpus_not_divisible:
            return "gpus_not_divisible";
        case DropReason::ep_not_dividing_stage:
            return "ep_not_dividing_stage";
        case DropReason::ep_not_dividing_experts:
            return "ep_not_dividing_experts";
        case DropReason::batch_not_divisible:
            return "batch_not_divisible";
        case DropReason::too_few_layers:
            return "too_few_layers";
        case DropReason::interleaved_micro_batches:
            return "interleaved_micro_batches";
        case DropReason::dualpipe_odd_pp:
            return "dualpipe_odd_pp";
        case DropReason::dualpipe_odd_micro_batches:
            return "dualpipe_odd_micro_batches";
        case DropReason::too_few_micro_batches:
            return "too_few_micro_batches";
    }
    return "?";
}

const char* describe(DropReason reason) {
    switch (reason) {
        case DropReason::tp_exceeds_host:
            return "TP spans more than one host";
        case DropReason::gpus_not_divisible:
            return "tp x pp does not divide the GPUs";
        case DropReason::ep_not_dividing_stage:
            return "EP does not divide the dp x tp ranks of a stage";
        case DropReason::ep_not_dividing_experts:
            return "EP does not divide the routed experts";
        case DropReason::batch_not_divisible:
            return "the global batch is not a multiple of dp x micro-batch size";
        case DropReason::too_few_layers:
            return "fewer decoder layers than the schedule's model parts";
        case DropReason::interleaved_micro_batches:
            return "interleaved 1F1B needs micro-batches divisible by pp";
        case DropReason::dualpipe_odd_pp:
            return "DualPipe needs an even pp";
        case DropReason::dualpipe_odd_micro_batches:
            return "DualPipe needs an even number of micro-batches";
        case DropReason::too_few_micro_batches:
            return "DualPipe and DualPipeV need at least 2 x pp micro-batches";
    }
    return "?";
}

// ---- the plan file --------------------------------------------------------------------------------

TrainingPlanSpec read_training_plan_spec(const fs::path& file) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(file.string(), diagnostics);
    diagnostics.throw_if_any();
    const std::string file_name = file.string();

    TrainingPlanSpec spec;
    spec.file = file;
    MapReader root = MapReader::root(doc);
    (void)root.choice("kind", {"training_plan"}, std::nullopt,
                      "what the plan file searches: training_plan (this search) or serving_plan");
    PlanFileHeader header =
        read_plan_file_header(root, file, "search", "the base training scenario, relative to the plan file");
    spec.name = std::move(header.name);
    spec.description = std::move(header.description);
    spec.base = std::move(header.base);
    spec.base_where = header.base_where;
    const YAML::Node top = root.node();
    if (auto gpus = root.maybe<int>("gpus", "GPUs in the job instead of the base's (the topology must have as many)",
                                    at_least(1))) {
        spec.gpus = SearchValue<int>{*gpus, top["gpus"], "gpus"};
    }
    spec.top = static_cast<std::size_t>(
        root.optional<int>("top", 10, "how many of the best plans report.md lists", at_least(1)));

    // `set`: values every plan gets, by dotted path.
    const YAML::Node set =
        root.child("set", "values every plan gets, by dotted path into the base scenario", false).node();
    for (auto it = set.begin(); set.IsMap() && it != set.end(); ++it) {
        const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
        std::string problem;
        if (!parse_dotted_path(key, problem)) {
            diagnostics.error(location_of(file_name, it->first), "set." + key, problem);
            continue;
        }
        spec.set.push_back(make_override(file_name, key, it->second, it->second, "set." + key));
    }

    MapReader search = root.child("search",
                                  "the candidates of each key: tp, pp, ep, schedule, micro_batch_size, "
                                  "zero_stage, recompute (a key left out keeps the base's value)");
    const Check<int> positive_int = at_least(1);
    spec.tp = read_axis<int>(search, "tp", "tensor-parallel degrees", positive_int, {}, diagnostics);
    spec.pp = read_axis<int>(search, "pp", "pipeline-parallel degrees", positive_int, {}, diagnostics);
    spec.ep = read_axis<int>(search, "ep", "expert-parallel degrees", positive_int, {}, diagnostics);
    const std::vector<SearchValue<std::string>> schedules =
        read_axis<std::string>(search, "schedule", "pipeline schedules", {}, schedule_names(), diagnostics);
    const std::vector<SearchValue<int>> virtual_stages =
        read_axis<int>(search, "virtual_stages", "model chunks per rank tried with interleaved-1f1b (default [2])",
                       Check<int>(at_least(2)), {}, diagnostics);
    spec.micro_batch_size =
        read_axis<int>(search, "micro_batch_size", "sequences per micro-batch", positive_int, {}, diagnostics);
    spec.zero_stage = read_axis<int>(search, "zero_stage", "ZeRO stages", Check<int>(in_range(0, 3)), {}, diagnostics);
    spec.recompute = read_axis<std::string>(search, "recompute", "activation recomputation: none, selective, full", {},
                                            kRecomputeNames, diagnostics);
    search.finish();

    const bool interleaved =
        std::any_of(schedules.begin(), schedules.end(), [](const auto& s) { return s.value == "interleaved-1f1b"; });
    if (!virtual_stages.empty() && !interleaved)
        search.error("virtual_stages",
                     "virtual_stages is tried with interleaved-1f1b only, and search.schedule does not list it");
    for (const auto& s : schedules) {
        if (s.value != "interleaved-1f1b") {
            spec.schedules.push_back({s.value, 1, s.node, YAML::Node(), s.key});
        } else if (virtual_stages.empty()) {
            spec.schedules.push_back({s.value, 2, s.node, YAML::Node(2), s.key});
        } else {
            for (const auto& v : virtual_stages) spec.schedules.push_back({s.value, v.value, s.node, v.node, s.key});
        }
    }

    // A path given in `set` that the search also varies would be overridden by the search.
    const std::vector<std::pair<std::string, bool>> searched = {
        {"parallel.tp", !spec.tp.empty()},
        {"parallel.pp", !spec.pp.empty()},
        {"parallel.ep", !spec.ep.empty()},
        {"schedule.kind", !spec.schedules.empty()},
        {"schedule", !spec.schedules.empty()},
        {"schedule.virtual_stages", !spec.schedules.empty()},
        {"batch.micro_batch_size", !spec.micro_batch_size.empty()},
        {"parallel.zero_stage", !spec.zero_stage.empty()},
        {"recompute", !spec.recompute.empty()},
        {"gpus", true}};
    for (const auto& o : spec.set) {
        for (const auto& [path, varied] : searched) {
            if (o.path != path || !varied) continue;
            diagnostics.error(o.where, o.sweep_key,
                              path == "gpus" ? std::string("give the GPU count as the plan file's top-level \"gpus\"")
                                             : fmt::format("\"{}\" is varied by the search; set it there or leave it "
                                                           "out of the search",
                                                           path));
        }
    }
    root.finish();
    diagnostics.throw_if_any();
    return spec;
}

// ---- the combinations -----------------------------------------------------------------------------

TrainingPlanSearch expand_training_plan(const TrainingPlanSpec& spec) {
    TrainingPlanSearch search;
    search.spec = spec;  // into empty members: constructs (see detached() on assigning YAML nodes)
    const std::string file = spec.file.string();

    // The base with the plan's `set` and GPU count, read once for what the checks need.
    const BaseScenario base(spec.base);
    std::vector<Override> common = spec.set;
    if (spec.gpus) common.push_back(make_override(file, "gpus", spec.gpus->node, spec.gpus->node, "gpus"));
    SweepPlan reference;
    reference.overrides.assign(common.begin(), common.end());
    std::string reference_text;
    {
        Diagnostics problems;
        reference_text = build_plan_text(base, reference, problems);
        problems.throw_if_any();
    }
    const YAML::Node reference_tree = YAML::Load(reference_text);
    const YAML::Node kind = reference_tree["kind"];
    if (!kind.IsDefined() || !kind.IsScalar() || kind.Scalar() != "training") {
        Diagnostics d;
        d.error(spec.base_where, "base",
                fmt::format("the base scenario is {}; a training_plan searches over a training scenario",
                            kind.IsDefined() && kind.IsScalar() ? fmt::format("a \"{}\" scenario", kind.Scalar())
                                                                : std::string("a file without a scenario kind")));
        d.throw_if_any();
    }
    Diagnostics read_problems;
    auto doc = YamlDocument::load_string(reference_text, base.path().string(), read_problems);
    MapReader root = MapReader::root(doc);
    const TrainingPlan ref = read_training_plan(root, ScenarioContext{base.path().parent_path()});
    if (ref.model.layers <= 0 || !ref.topology || ref.gpus < 1 || ref.global_batch < 1) {
        // Without the model, the topology or the batch nothing can be checked; the loader says why.
        std::vector<Diagnostic> all{{spec.base_where, "base", "the base scenario cannot be read as a training plan:"}};
        for (auto& d : explain_rejection(base, reference, read_problems.errors())) all.push_back(std::move(d));
        throw InputError(std::move(all));
    }
    if (ref.gpus > ref.topology->gpu_count()) {
        Diagnostics d;
        d.error(spec.gpus ? location_of(file, spec.gpus->node) : spec.base_where, spec.gpus ? "gpus" : "base",
                fmt::format("{} GPUs exceed the base topology's {}; give the topology more hosts with "
                            "\"set: {{topology.hosts: N}}\"",
                            ref.gpus, ref.topology->gpu_count()));
        d.throw_if_any();
    }
    BaseFacts facts;
    facts.gpus = ref.gpus;
    facts.gpus_per_host = ref.topology->gpus_per_host();
    facts.layers = ref.model.layers;
    facts.routed_experts = ref.model.moe.routed_experts;
    facts.global_batch = ref.global_batch;
    // (yaml-cpp throws when asked the type of a key that is not there, so each step checks IsDefined.)
    const YAML::Node parallel = reference_tree["parallel"];
    if (parallel.IsDefined() && parallel.IsMap()) {
        const YAML::Node base_split = static_cast<const YAML::Node&>(parallel)["layers_per_part"];
        facts.base_split_parts = base_split.IsDefined() && base_split.IsSequence() ? base_split.size() : 0;
    }
    search.gpus = ref.gpus;
    search.global_batch = ref.global_batch;
    search.sequence_length = ref.seq;
    search.model = ref.model.name;
    search.gpu = ref.gpu;

    // Each axis: the searched values, or the base's one value (no override).
    struct IntChoice {
        int value;
        const SearchValue<int>* from;
    };
    const auto axis = [](const std::vector<SearchValue<int>>& values, int fallback) {
        std::vector<IntChoice> out;
        for (const auto& v : values) out.push_back({v.value, &v});
        if (out.empty()) out.push_back({fallback, nullptr});
        return out;
    };
    const auto tps = axis(spec.tp, ref.parallel.tp);
    const auto pps = axis(spec.pp, ref.parallel.pp);
    const auto eps = axis(spec.ep, ref.parallel.ep);
    const auto mbss = axis(spec.micro_batch_size, static_cast<int>(ref.micro_batch_size));
    const auto zeros = axis(spec.zero_stage, ref.parallel.zero_stage);
    std::vector<const ScheduleChoice*> schedules;
    for (const auto& s : spec.schedules) schedules.push_back(&s);
    if (schedules.empty()) schedules.push_back(nullptr);
    std::vector<const SearchValue<std::string>*> recomputes;
    for (const auto& r : spec.recompute) recomputes.push_back(&r);
    if (recomputes.empty()) recomputes.push_back(nullptr);

    // The sweep's columns: the searched paths, and the layer split where the search may change it.
    SweepSpec& sweep = search.sweep;
    sweep.file = spec.file;
    sweep.name = spec.name;
    sweep.description = spec.description;
    sweep.base = spec.base;
    sweep.base_where = spec.base_where;
    sweep.on_invalid = InvalidPlans::mark;  // the loader's word on a plan is its row, not an abort
    sweep.pareto = ParetoSpec{{"peak_memory_gib_per_gpu", false}, {"tokens_per_s_per_gpu", true}};
    const bool split_varies = facts.base_split_parts > 0 && (!spec.pp.empty() || !spec.schedules.empty());
    const std::vector<std::pair<std::string, bool>> columns = {
        {"parallel.tp", !spec.tp.empty()},
        {"parallel.pp", !spec.pp.empty()},
        {"parallel.ep", !spec.ep.empty()},
        {"schedule.kind", !spec.schedules.empty()},
        {"schedule.virtual_stages", !spec.schedules.empty()},
        {"batch.micro_batch_size", !spec.micro_batch_size.empty()},
        {"parallel.zero_stage", !spec.zero_stage.empty()},
        {"recompute", !spec.recompute.empty()},
        {"parallel.layers_per_part", split_varies}};
    for (const auto& [path, used] : columns)
        if (used) sweep.columns.push_back(path);

    // The product, tp slowest; the odometer's digits index tps, pps, eps, schedules, mbss, zeros, recomputes.
    const std::array<std::size_t, 7> sizes = {tps.size(),  pps.size(),   eps.size(),       schedules.size(),
                                              mbss.size(), zeros.size(), recomputes.size()};
    std::array<std::size_t, 7> at{};
    std::size_t total = 1;
    for (const std::size_t n : sizes) total = std::min(total * n, kMaxSweepPlans + 1);
    if (total > kMaxSweepPlans) {
        Diagnostics d;
        d.error({file, 0, 0}, "search",
                fmt::format("the search has more than {} combinations; narrow it", kMaxSweepPlans));
        d.throw_if_any();
    }
    while (true) {
        PlanCombination c;
        c.index = search.combinations.size();
        const IntChoice& tp = tps[at[0]];
        const IntChoice& pp = pps[at[1]];
        const IntChoice& ep = eps[at[2]];
        const ScheduleChoice* schedule = schedules[at[3]];
        const IntChoice& mbs = mbss[at[4]];
        const IntChoice& zero = zeros[at[5]];
        const SearchValue<std::string>* recompute = recomputes[at[6]];
        c.tp = tp.value;
        c.pp = pp.value;
        c.ep = ep.value;
        c.schedule = schedule ? schedule->kind : to_string(ref.schedule);
        c.virtual_stages = schedule ? schedule->virtual_stages : ref.virtual_stages;
        c.micro_batch_size = mbs.value;
        c.zero_stage = zero.value;
        c.recompute = recompute ? recompute->value : recompute_name(ref.recompute);

        if (auto problem = structural_problem(c, facts)) {
            c.dropped = problem->first;
            c.drop_detail = problem->second;
            ++search.dropped_by_reason[static_cast<std::size_t>(problem->first)];
        } else {
            SweepPlan plan;
            plan.index = sweep.plans.size();
            plan.overrides.assign(common.begin(), common.end());  // constructs: the vector is empty
            const auto add = [&](const std::string& path, const SearchValue<int>* v) {
                if (v) plan.overrides.push_back(make_override(file, path, v->node, v->node, v->key));
            };
            add("parallel.tp", tp.from);
            add("parallel.pp", pp.from);
            add("parallel.ep", ep.from);
            if (schedule) {
                // virtual_stages first: a complaint about `schedule` then blames the kind, the last override.
                const bool interleaved = schedule->kind == "interleaved-1f1b";
                plan.overrides.push_back(make_override(file, "schedule.virtual_stages",
                                                       interleaved ? schedule->virtual_stages_node : YAML::Node(),
                                                       schedule->node, schedule->key));
                plan.overrides.push_back(
                    make_override(file, "schedule.kind", schedule->node, schedule->node, schedule->key));
            }
            add("batch.micro_batch_size", mbs.from);
            add("parallel.zero_stage", zero.from);
            if (recompute)
                plan.overrides.push_back(
                    make_override(file, "recompute", recompute->node, recompute->node, recompute->key));
            if (facts.base_split_parts > 0 && !c.base_split) {
                // The base's split has another number of parts: the scenario's even default applies.
                const YAML::Node& blame = pp.from ? pp.from->node : schedule ? schedule->node : YAML::Node();
                plan.overrides.push_back(make_override(file, "parallel.layers_per_part", YAML::Node(), blame,
                                                       pp.from    ? pp.from->key
                                                       : schedule ? schedule->key
                                                                  : "search"));
            }
            plan.cells.assign(sweep.columns.size(), "");
            for (std::size_t col = 0; col < sweep.columns.size(); ++col) {
                for (const auto& o : plan.overrides)
                    if (o.path == sweep.columns[col]) plan.cells[col] = value_text(o.value);
                if (sweep.columns[col] == "parallel.layers_per_part" && c.base_split) plan.cells[col] = "base";
            }
            c.plan = plan.index;
            sweep.plans.push_back(std::move(plan));
        }
        search.combinations.push_back(std::move(c));

        bool advanced = false;
        for (std::size_t a = sizes.size(); a-- > 0;) {
            if (++at[a] < sizes[a]) {
                advanced = true;
                break;
            }
            at[a] = 0;
        }
        if (!advanced) break;
    }
    return search;
}

// ---- the outputs ----------------------------------------------------------------------------------

namespace {

// A copy of a sweep whose override values are nodes of their own. Copies of a YAML::Node share the
// node, and assigning to one (as copying an Override over another does) rebinds the shared node in
// place, so the sweep runner and its charts could otherwise change the values this search keeps.
SweepSpec detached(const SweepSpec& sweep) {
    SweepSpec copy = sweep;
    for (auto& plan : copy.plans) {
        std::vector<Override> own;
        own.reserve(plan.overrides.size());
        for (const auto& o : plan.overrides)
            own.push_back(Override{o.path, o.segments, YAML::Clone(o.value), o.where, o.sweep_key});
        plan.overrides = std::move(own);  // moves the vector: no Override is assigned over another
    }
    return copy;
}

struct Outputs {
    const TrainingPlanSearch& search;
    const std::vector<PlanRow>& rows;  // by sweep plan
    const std::vector<std::size_t>& ranked;
    std::vector<const PlanCombination*> by_plan;  // sweep plan -> its combination

    Outputs(const TrainingPlanSearch& s, const std::vector<PlanRow>& r, const std::vector<std::size_t>& k)
        : search(s), rows(r), ranked(k), by_plan(s.sweep.plans.size(), nullptr) {
        for (const auto& c : s.combinations)
            if (c.plan) by_plan[*c.plan] = &c;
    }
    const PlanCombination& combination(std::size_t plan) const { return *by_plan[plan]; }
};

std::string plans_csv(const Outputs& o) {
    std::map<std::size_t, std::size_t> rank_of;
    for (std::size_t r = 0; r < o.ranked.size(); ++r) rank_of[o.ranked[r]] = r + 1;
    std::string out =
        "combination,plan,tp,pp,ep,dp,schedule,virtual_stages,micro_batch_size,micro_batches,zero_stage,recompute,"
        "layers_per_part,status,reason,rank,tokens_per_s_per_gpu,step_time_s,mfu,bubble_fraction,"
        "exposed_comm_fraction,peak_memory_gib_per_gpu,memory_capacity_gib,over_memory_gib,plan_key\n";
    const auto number = [](const PlanRow& row, const char* name) {
        for (const auto& [column, cell] : row.metrics)
            if (column == name) return cell;
        return std::string();
    };
    for (const auto& c : o.search.combinations) {
        std::vector<std::string> cells = {std::to_string(c.index),
                                          c.plan ? std::to_string(*c.plan) : "",
                                          std::to_string(c.tp),
                                          std::to_string(c.pp),
                                          std::to_string(c.ep),
                                          c.dp > 0 ? std::to_string(c.dp) : "",
                                          c.schedule,
                                          std::to_string(c.virtual_stages),
                                          std::to_string(c.micro_batch_size),
                                          c.micro_batches > 0 ? std::to_string(c.micro_batches) : "",
                                          std::to_string(c.zero_stage),
                                          c.recompute};
        if (c.dropped) {
            cells.insert(cells.end(),
                         {"", "dropped",
                          fmt::format("{}: {} ({})", to_string(*c.dropped), describe(*c.dropped), c.drop_detail)});
            cells.resize(cells.size() + 10);
        } else {
            const PlanRow& row = o.rows[*c.plan];
            const auto rank = rank_of.find(*c.plan);
            const std::optional<double> peak = metric(row, "peak_memory_gib_per_gpu");
            const std::optional<double> capacity = metric(row, "memory_capacity_gib");
            cells.insert(cells.end(),
                         {c.base_split ? "base" : "even", to_string(row.status), row.reason,
                          rank == rank_of.end() ? "" : std::to_string(rank->second),
                          number(row, "tokens_per_s_per_gpu"), number(row, "step_time_s"), number(row, "mfu"),
                          number(row, "bubble_fraction"), number(row, "exposed_comm_fraction"),
                          number(row, "peak_memory_gib_per_gpu"), number(row, "memory_capacity_gib"),
                          peak && capacity && *peak > *capacity ? fmt::format("{}", *peak - *capacity) : "", row.key});
        }
        for (std::size_t i = 0; i < cells.size(); ++i) {
            if (i) out += ',';
            out += csv_cell(cells[i]);
        }
        out += '\n';
    }
    return out;
}

std::string metrics_line(const PlanRow& row) {
    return fmt::format(
        "{:.1f} tokens/s/GPU, step {:.3f} s, MFU {}, bubble {}, exposed communication {}, "
        "peak memory {:.1f} of {:.1f} GiB",
        metric_or(row, "tokens_per_s_per_gpu"), metric_or(row, "step_time_s"), pct(metric_or(row, "mfu")),
        pct(metric_or(row, "bubble_fraction")), pct(metric_or(row, "exposed_comm_fraction")),
        metric_or(row, "peak_memory_gib_per_gpu"), metric_or(row, "memory_capacity_gib"));
}

// Plans whose throughput differs by less than this share are reported as tied.
constexpr double kTie = 5e-4;
bool tied(const PlanRow& a, const PlanRow& b) {
    const double tb = metric_or(b, "tokens_per_s_per_gpu");
    return tb > 0 && std::abs(metric_or(a, "tokens_per_s_per_gpu") / tb - 1) < kTie;
}

// One sentence comparing two fitting plans (`a` ranked above `b`): how much faster `a` is and which
// part of the step explains it, or what broke the tie.
std::string comparison(const PlanRow& a, const PlanRow& b, const std::string& b_name) {
    const TimeSplit x = time_split(a);
    const TimeSplit y = time_split(b);
    const double ta = metric_or(a, "tokens_per_s_per_gpu");
    const double tb = metric_or(b, "tokens_per_s_per_gpu");
    const double ma = metric_or(a, "peak_memory_gib_per_gpu");
    const double mb = metric_or(b, "peak_memory_gib_per_gpu");
    if (tied(a, b)) {
        return fmt::format(
            "ties with {} ({:.1f} vs {:.1f} tokens/s/GPU, step {:.3f} vs {:.3f} s: within {:.2f}%) and "
            "{} (peak memory {:.1f} vs {:.1f} GiB).",
            b_name, ta, tb, x.step, y.step, kTie * 100,
            ta > tb   ? "is ranked first for its slightly higher throughput"
            : ma < mb ? "is ranked first for its lower peak memory"
                      : "is ranked first as the earlier combination",
            ma, mb);
    }
    std::string s = fmt::format(
        "has {:.1f}% more tokens/s/GPU than {} ({:.1f} vs {:.1f}): its step takes {:.3f} s "
        "against {:.3f} s",
        tb > 0 ? (ta / tb - 1) * 100 : 0.0, b_name, ta, tb, x.step, y.step);
    const std::array<std::pair<const char*, double>, 3> parts = {
        std::pair{"pipeline bubble", y.bubble - x.bubble}, std::pair{"exposed communication", y.exposed - x.exposed},
        std::pair{"compute and the rest", y.rest - x.rest}};
    const auto biggest =
        std::max_element(parts.begin(), parts.end(), [](const auto& p, const auto& q) { return p.second < q.second; });
    s += fmt::format(
        " (bubble {:.3f} vs {:.3f} s, exposed communication {:.3f} vs {:.3f} s, compute and the rest "
        "{:.3f} vs {:.3f} s; MFU {} vs {}; peak memory {:.1f} vs {:.1f} GiB)",
        x.bubble, y.bubble, x.exposed, y.exposed, x.rest, y.rest, pct(metric_or(a, "mfu")), pct(metric_or(b, "mfu")),
        ma, mb);
    if (biggest->second > 0)
        s += fmt::format("; most of the gain is {} ({:.3f} s less)", biggest->first, biggest->second);
    return s + ".";
}

std::string report_md(const Outputs& o, const SweepReport& sweep, const fs::path& out_dir, const fs::path& best_yaml) {
    const TrainingPlanSearch& s = o.search;
    const TrainingPlanSpec& spec = s.spec;
    std::string md = fmt::format("# Training plan search: {}\n\n", spec.name);
    if (!spec.description.empty()) md += spec.description + "\n\n";
    md += fmt::format(
        "Plan file `{}`, base scenario `{}`: {} on {} {} GPUs, global batch {} sequences of {} tokens. "
        "Plans are ranked by tokens/s/GPU among those that fit in memory; every number below comes "
        "from the simulated runs (`sweep.csv` has all their metrics, `plans.csv` every combination).\n\n",
        spec.file.string(), spec.base.string(), s.model, s.gpus, s.gpu, s.global_batch, s.sequence_length);

    std::size_t dropped = 0;
    for (const std::size_t n : s.dropped_by_reason) dropped += n;
    md += "## Search\n\n";
    const auto list_of = [](const auto& values) {
        std::string t;
        for (const auto& v : values) t += (t.empty() ? "" : ", ") + fmt::format("{}", v.value);
        return t.empty() ? std::string("the base's") : t;
    };
    std::string schedules;
    for (const auto& c : spec.schedules)
        schedules += (schedules.empty() ? "" : ", ") + c.kind +
                     (c.virtual_stages > 1 ? fmt::format(" (v{})", c.virtual_stages) : "");
    md += fmt::format("- tp: {}; pp: {}; ep: {}; schedule: {}; micro-batch size: {}; ZeRO stage: {}; recompute: {}\n",
                      list_of(spec.tp), list_of(spec.pp), list_of(spec.ep),
                      schedules.empty() ? std::string("the base's") : schedules, list_of(spec.micro_batch_size),
                      list_of(spec.zero_stage), list_of(spec.recompute));
    md += fmt::format(
        "- {} combinations: {} dropped before running (structurally impossible), {} run as training "
        "scenarios: {} fit, {} do not fit in memory, {} rejected by the scenario's loader, {} failed\n",
        s.combinations.size(), dropped, s.sweep.plans.size(), o.ranked.size(), sweep.does_not_fit, sweep.invalid,
        sweep.failed);
    md += fmt::format(
        "- {} plans simulated now, {} rows reused from an earlier run; {:.1f} s of wall time on {} "
        "thread{}\n\n",
        sweep.ran, sweep.reused, sweep.wall_seconds, sweep.jobs, sweep.jobs == 1 ? "" : "s");

    // The best plans.
    md += "## Best plans\n\n";
    if (o.ranked.empty()) {
        md += "No plan fits in memory (see below), so there is no best plan and no `best.yaml`.\n\n";
    } else {
        md +=
            "| # | layout | options | micro-batches | tokens/s/GPU | step (s) | MFU | bubble | exposed comm | peak "
            "GiB / capacity | plan |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
        for (std::size_t r = 0; r < std::min(spec.top, o.ranked.size()); ++r) {
            const PlanRow& row = o.rows[o.ranked[r]];
            const PlanCombination& c = o.combination(o.ranked[r]);
            md +=
                fmt::format("| {} | {} | {} | {} | {:.1f} | {:.3f} | {} | {} | {} | {:.1f} / {:.1f} | {} |\n", r + 1,
                            layout_text(c), options_text(c), c.micro_batches, metric_or(row, "tokens_per_s_per_gpu"),
                            metric_or(row, "step_time_s"), pct(metric_or(row, "mfu")),
                            pct(metric_or(row, "bubble_fraction")), pct(metric_or(row, "exposed_comm_fraction")),
                            metric_or(row, "peak_memory_gib_per_gpu"), metric_or(row, "memory_capacity_gib"), c.index);
        }
        md += fmt::format(
            "\n{} of {} fitting plans listed. `{}` is the best plan as a scenario: `clustersim run {}`.\n\n",
            std::min(spec.top, o.ranked.size()), o.ranked.size(), best_yaml.filename().string(), best_yaml.string());

        // Why the best wins.
        const PlanRow& best = o.rows[o.ranked.front()];
        const PlanCombination& bc = o.combination(o.ranked.front());
        const TimeSplit t = time_split(best);
        md += "## Why the best plan wins\n\n";
        md += fmt::format("**{}, {}**: {}.\n\n", layout_text(bc), options_text(bc), metrics_line(best));
        md += fmt::format(
            "Where its {:.3f} s step goes: pipeline bubble about {:.3f} s ({} of the {:.3f} s pipeline), exposed "
            "communication about {:.3f} s ({} of the step), compute and the rest {:.3f} s; the data-parallel "
            "gradient reduction and optimizer after the pipeline take {:.3f} s. Its busiest rank needs {:.1f} of "
            "the {:.1f} GiB ({:.1f} GiB to spare).\n\n",
            t.step, t.bubble, pct(metric_or(best, "bubble_fraction")), t.pipeline, t.exposed,
            pct(metric_or(best, "exposed_comm_fraction")), t.rest, t.tail, metric_or(best, "peak_memory_gib_per_gpu"),
            metric_or(best, "memory_capacity_gib"),
            metric_or(best, "memory_capacity_gib") - metric_or(best, "peak_memory_gib_per_gpu"));
        if (o.ranked.size() > 1) {
            const PlanCombination& rc = o.combination(o.ranked[1]);
            md += fmt::format("The runner-up is {}, {}. The best plan {}\n\n", layout_text(rc), options_text(rc),
                              comparison(best, o.rows[o.ranked[1]], "the runner-up"));
            // With a tie, the first plan that is really slower says more about what matters.
            const auto slower =
                std::find_if(o.ranked.begin(), o.ranked.end(), [&](std::size_t p) { return !tied(best, o.rows[p]); });
            if (tied(best, o.rows[o.ranked[1]]) && slower != o.ranked.end()) {
                const PlanCombination& sc = o.combination(*slower);
                md += fmt::format("The fastest plan not tied with it is #{}, {}, {}. The best plan {}\n\n",
                                  slower - o.ranked.begin() + 1, layout_text(sc), options_text(sc),
                                  comparison(best, o.rows[*slower], "that plan"));
            }
        }
        md +=
            "Bubble time is the bubble fraction (mean idle share of the pipeline ranks) times the pipeline time; "
            "exposed communication is the exposed-communication fraction times the step; the rest is compute "
            "(recomputation included) and everything else. They are estimates from means, not one rank's "
            "timeline.\n\n";

        // The best plan of each schedule.
        md +=
            "## The best plan of each schedule\n\n| schedule | best fitting plan | tokens/s/GPU | vs best | step (s) "
            "| bubble | exposed comm | MFU | peak GiB |\n|---|---|---|---|---|---|---|---|---|\n";
        std::vector<std::string> kinds;
        for (const auto& c : s.combinations)
            if (std::find(kinds.begin(), kinds.end(), c.schedule) == kinds.end()) kinds.push_back(c.schedule);
        std::vector<std::string> notes;
        for (const auto& kind : kinds) {
            const auto first = std::find_if(o.ranked.begin(), o.ranked.end(),
                                            [&](std::size_t p) { return o.combination(p).schedule == kind; });
            if (first == o.ranked.end()) {
                std::size_t ran = 0, over = 0, combos = 0;
                for (const auto& c : s.combinations) {
                    if (c.schedule != kind) continue;
                    ++combos;
                    if (!c.plan) continue;
                    ++ran;
                    if (o.rows[*c.plan].status == PlanStatus::does_not_fit) ++over;
                }
                const std::string why =
                    ran == 0 ? fmt::format("none ran: all {} combinations were dropped (below)", combos)
                             : fmt::format(
                                   "none fits: of {} combinations {} were dropped, {} ran and {} of them were "
                                   "over memory",
                                   combos, combos - ran, ran, over);
                md += fmt::format("| {} | {} | | | | | | | |\n", kind, why);
                continue;
            }
            const PlanRow& row = o.rows[*first];
            const PlanCombination& c = o.combination(*first);
            const double ratio = metric_or(row, "tokens_per_s_per_gpu") / metric_or(best, "tokens_per_s_per_gpu") - 1;
            md += fmt::format("| {} | {}, {} | {:.1f} | {:+.1f}% | {:.3f} | {} | {} | {} | {:.1f} |\n", kind,
                              layout_text(c), options_text(c), metric_or(row, "tokens_per_s_per_gpu"), ratio * 100,
                              metric_or(row, "step_time_s"), pct(metric_or(row, "bubble_fraction")),
                              pct(metric_or(row, "exposed_comm_fraction")), pct(metric_or(row, "mfu")),
                              metric_or(row, "peak_memory_gib_per_gpu"));
            if (*first != o.ranked.front() && !tied(best, row))
                notes.push_back(fmt::format("- {}: the best plan {}", kind,
                                            comparison(best, row, fmt::format("the best {} plan", kind))));
        }
        md += "\n";
        for (const auto& n : notes) md += n + "\n";
        if (!notes.empty()) md += "\n";
    }

    // Plans over memory.
    std::vector<std::size_t> over;
    for (std::size_t p = 0; p < o.rows.size(); ++p)
        if (o.rows[p].status == PlanStatus::does_not_fit) over.push_back(p);
    const auto excess = [&](std::size_t p) {
        return metric_or(o.rows[p], "peak_memory_gib_per_gpu") - metric_or(o.rows[p], "memory_capacity_gib");
    };
    std::stable_sort(over.begin(), over.end(), [&](std::size_t a, std::size_t b) { return excess(a) < excess(b); });
    md += fmt::format("## Plans that do not fit in memory ({})\n\n", over.size());
    if (!over.empty()) {
        md +=
            "Closest to fitting first. Memory of the busiest rank, GiB.\n\n| layout | options | peak | capacity | "
            "over by | weights | gradients | optimizer | activations (micro-batches) |\n"
            "|---|---|---|---|---|---|---|---|---|\n";
        const std::size_t shown = std::min<std::size_t>(over.size(), 20);
        for (std::size_t i = 0; i < shown; ++i) {
            const PlanRow& row = o.rows[over[i]];
            const PlanCombination& c = o.combination(over[i]);
            md += fmt::format("| {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} ({:.0f}) |\n",
                              layout_text(c), options_text(c), metric_or(row, "peak_memory_gib_per_gpu"),
                              metric_or(row, "memory_capacity_gib"), excess(over[i]),
                              metric_or(row, "peak_memory_rank.weights_gib"),
                              metric_or(row, "peak_memory_rank.gradients_gib"),
                              metric_or(row, "peak_memory_rank.optimizer_states_gib"),
                              metric_or(row, "peak_memory_rank.activations_gib"),
                              metric_or(row, "peak_memory_rank.activation_micro_batches"));
        }
        if (shown < over.size())
            md += fmt::format("\n... and {} more, up to {:.1f} GiB over (all in plans.csv).\n", over.size() - shown,
                              excess(over.back()));
        md += "\n";
    }

    // Plans the loader rejected or that failed.
    std::vector<std::size_t> rejected;
    for (std::size_t p = 0; p < o.rows.size(); ++p)
        if (o.rows[p].status == PlanStatus::invalid || o.rows[p].status == PlanStatus::failed) rejected.push_back(p);
    if (!rejected.empty()) {
        md += fmt::format("## Plans rejected by the scenario or failed ({})\n\n", rejected.size());
        for (std::size_t i = 0; i < std::min<std::size_t>(rejected.size(), 10); ++i) {
            const PlanRow& row = o.rows[rejected[i]];
            md += fmt::format("- {}, {}: {}: {}\n", layout_text(o.combination(rejected[i])),
                              options_text(o.combination(rejected[i])), to_string(row.status), row.reason);
        }
        if (rejected.size() > 10) md += fmt::format("- ... and {} more (plans.csv)\n", rejected.size() - 10);
        md += "\n";
    }

    md += fmt::format("## Dropped before running ({})\n\n", dropped);
    if (dropped > 0) {
        md +=
            "Each combination counts under the first rule it breaks.\n\n| reason | combinations | example |\n"
            "|---|---|---|\n";
        for (int r = 0; r < kDropReasons; ++r) {
            const auto reason = static_cast<DropReason>(r);
            const std::size_t n = s.dropped_by_reason[static_cast<std::size_t>(r)];
            if (n == 0) continue;
            const auto example = std::find_if(s.combinations.begin(), s.combinations.end(),
                                              [&](const PlanCombination& c) { return c.dropped == reason; });
            md += fmt::format("| {} (`{}`) | {} | {}, {}: {} |\n", describe(reason), to_string(reason), n,
                              layout_text(*example), options_text(*example), example->drop_detail);
        }
        md += "\n";
    }
    md += fmt::format(
        "## Files\n\n- `plans.csv`: every combination with its status and headline metrics\n"
        "- `sweep.csv`, `journal.jsonl`: every plan that ran, with every metric of its summary "
        "(a second run reuses them)\n- `pareto.csv` (and `pareto.svg` with gnuplot): tokens/s/GPU "
        "against peak memory\n{}- `report.md`: this report, in `{}`\n",
        best_yaml.empty() ? "" : "- `best.yaml`: the best plan as a training scenario\n", out_dir.string());
    return md;
}

}  // namespace

TrainingPlanResult search_training_plan(const fs::path& plan_file, const PlanOptions& options,
                                        ProcessGroup* processes) {
    TrainingPlanResult result;
    result.search = expand_training_plan(read_training_plan_spec(plan_file));  // moves the vectors whole
    const TrainingPlanSearch& search = result.search;
    const fs::path out_dir = options.out_dir.empty() ? fs::path("results/plans") / search.spec.name : options.out_dir;
    result.outcome.name = search.spec.name;
    result.outcome.out_dir = out_dir;

    SweepOptions sweep_options;
    sweep_options.out_dir = out_dir;
    sweep_options.jobs = options.jobs;
    sweep_options.fresh = options.fresh;
    sweep_options.progress = options.progress;
    sweep_options.processes = processes;
    result.sweep = run_sweep(detached(search.sweep), sweep_options);
    if (processes && processes->size() > 1 && processes->rank() != 0) return result;  // rank 0 reports

    const std::vector<PlanRow>& rows = result.sweep.rows;
    for (std::size_t p = 0; p < rows.size(); ++p)
        if (fits(rows[p])) result.ranked.push_back(p);
    // Most tokens/s/GPU first; ties go to less memory, then to the earlier plan.
    std::stable_sort(result.ranked.begin(), result.ranked.end(), [&](std::size_t a, std::size_t b) {
        const double ta = metric_or(rows[a], "tokens_per_s_per_gpu");
        const double tb = metric_or(rows[b], "tokens_per_s_per_gpu");
        if (ta != tb) return ta > tb;
        return metric_or(rows[a], "peak_memory_gib_per_gpu") < metric_or(rows[b], "peak_memory_gib_per_gpu");
    });
    const Outputs outputs(search, rows, result.ranked);

    result.plans_csv = out_dir / "plans.csv";
    write_file_atomically(result.plans_csv, plans_csv(outputs));

    const fs::path best_path = out_dir / "best.yaml";
    std::error_code ignored;
    fs::remove(best_path, ignored);  // an earlier run's best may not be this one's
    if (!result.ranked.empty()) {
        const std::size_t best = result.ranked.front();
        const PlanCombination& c = outputs.combination(best);
        const BaseScenario base(search.spec.base);
        Diagnostics problems;
        YAML::Node tree = YAML::Load(build_plan_text(base, search.sweep.plans[best], problems));
        problems.throw_if_any();
        anchor_scenario_paths(tree, base.path().parent_path());
        tree["description"] = fmt::format("{}, {}: the best plan of the training plan search {}", layout_text(c),
                                          options_text(c), search.spec.name);
        const PlanRow& row = rows[best];
        std::string text = fmt::format(
            "# The best plan of the training plan search \"{}\" ({}), found by clustersim {}:\n"
            "# combination {} (sweep plan {}, key {}) of {}, the fastest of {} plans that fit in memory.\n"
            "# {}, {}: {}.\n"
            "# The base scenario {} with the search's values; run it with `clustersim run best.yaml`.\n",
            search.spec.name, search.spec.file.string(), CLUSTERSIM_VERSION, c.index, best, row.key,
            search.combinations.size(), result.ranked.size(), layout_text(c), options_text(c), metrics_line(row),
            search.spec.base.string());
        text += to_yaml(tree);
        if (!text.ends_with('\n')) text += '\n';
        write_file_atomically(best_path, text);
        result.best_yaml = best_path;
    }

    result.report_md = out_dir / "report.md";
    write_file_atomically(result.report_md, report_md(outputs, result.sweep, out_dir, result.best_yaml));

    std::size_t dropped = 0;
    for (const std::size_t n : search.dropped_by_reason) dropped += n;
    std::string& headline = result.outcome.headline;
    headline = fmt::format(
        "{}: {} combinations: {} dropped as impossible, {} run ({} simulated now, {} reused): {} "
        "fit, {} do not fit, {} invalid, {} failed",
        search.spec.name, search.combinations.size(), dropped, search.sweep.plans.size(), result.sweep.ran,
        result.sweep.reused, result.ranked.size(), result.sweep.does_not_fit, result.sweep.invalid,
        result.sweep.failed);
    if (!result.ranked.empty()) {
        const PlanCombination& c = outputs.combination(result.ranked.front());
        headline += fmt::format("\n  best: {}, {}: {}\n  {}", layout_text(c), options_text(c),
                                metrics_line(rows[result.ranked.front()]), result.best_yaml.string());
    } else {
        headline += "\n  no plan fits in memory";
    }
    headline += fmt::format("\n  report: {}", result.report_md.string());
    return result;
}

PlanOutcome run_training_plan(const fs::path& plan_file, const PlanOptions& options) {
    const std::optional<int> world = mpirun_world_size();
    std::unique_ptr<ProcessGroup> group = start_process_group();
    if (world && *world > 1 && !group && mpirun_world_rank() != 0) {
        // Built without MPI: rank 0 runs the whole search and writes the output once.
        PlanOutcome outcome;
        outcome.name = plan_file.stem().string();
        return outcome;
    }
    return search_training_plan(plan_file, options, group.get()).outcome;
}

}  // namespace clustersim
