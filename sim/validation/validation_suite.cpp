// Running one scenario per published row and judging the prediction.
#include "sim/validation/validation_suite.hpp"
#include "sim/validation/exact_checks.hpp"

#include "sim/input/diagnostics.hpp"
#include "sim/scenario/scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

// Where the parts a row still needs are being built, so a row without a prediction says what it
// waits for. Scenario kinds are matched by the row's kind; the rest by row-id prefix (the exact rows
// compare closed forms that come with the training and serving simulators).
struct PendingPart {
    std::string_view what;  // a scenario kind, or a row-id prefix
    std::string_view needs;
};
constexpr PendingPart kPendingKinds[] = {
    {"training", "needs the training scenario kind (issue 5)"},
    {"serving", "needs the serving scenario kind (issue 6)"},
};
constexpr PendingPart kPendingRowPrefixes[] = {
    {"S1",
     "needs its load-protocol scenario: S1a a saturated prefill unit, S1b the decode concurrency searched "
     "for 21 tokens/s per request, S1c the day's decode load per node; none may take its load from its own "
     "published figure (issue 6)"},
};

// The reason a row of an unimplemented scenario kind has no prediction, or "" if its kind is ready.
std::string unimplemented_kind(const PublishedRow& row) {
    for (const auto& kind : scenario_kinds()) {
        if (kind.name != row.kind || kind.loader) continue;
        for (const auto& p : kPendingKinds)
            if (p.what == row.kind) return std::string(p.needs);
        return fmt::format("needs the {} scenario kind ({})", kind.name, kind.planned_in);
    }
    return {};
}

std::string display(const fs::path& path, const fs::path& root) {
    return root.empty() ? path.generic_string()
                        : fs::absolute(path).lexically_normal().lexically_proximate(root).generic_string();
}

// What a prediction rests on, as the summary states it: a sentence, or shares by kind of data.
std::string provenance_of(const nlohmann::ordered_json& summary) {
    if (!summary.contains("provenance")) return {};
    const auto& p = summary["provenance"];
    if (p.is_string()) return p.get<std::string>();
    if (!p.is_object()) return p.dump();
    std::string text;
    for (const auto& [kind, share] : p.items()) {
        if (!text.empty()) text += "; ";
        text += share.is_number() ? fmt::format("{} {:.0f}%", kind, share.get<double>() * 100)
                                  : fmt::format("{} {}", kind, share.dump());
    }
    return text;
}

void check_only(const PublishedSet& set, const std::vector<std::string>& only) {
    Diagnostics diagnostics;
    std::vector<std::string> ids;
    for (const auto& row : set.rows) ids.push_back(row.id);
    for (const auto& id : only) {
        if (set.find(id)) continue;
        const std::string guess = closest_match(id, ids);
        diagnostics.error({}, "--only",
                          fmt::format("no row \"{}\" in {}{}", id, set.file.string(),
                                      guess.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", guess)));
    }
    diagnostics.throw_if_any();
}

// One problem as an InputError (built through Diagnostics: GCC 12 misreads a braced Diagnostic list).
InputError input_error(const fs::path& file, int line, const std::string& key, const std::string& message) {
    Diagnostics diagnostics;
    diagnostics.error({file.string(), line, 0}, key, message);
    return InputError(diagnostics.errors());
}

// Runs a row's scenario and reads the metric of its unit from the summary.
void predict(RowResult& r, const fs::path& published_file, const fs::path& scenario_file, const fs::path& scratch_dir) {
    const PublishedRow& row = r.row;
    const SummaryMetric* metric = metric_for(row.unit, row.figure);
    if (!metric) {
        std::string units;
        for (const auto& m : summary_metrics()) units += fmt::format("{}\"{}\"", units.empty() ? "" : ", ", m.unit);
        throw input_error(published_file, row.line, "unit",
                          fmt::format("row {} has a scenario, but no summary metric is known for its unit \"{}\" "
                                      "(known: {}); add it to summary_metrics() in sim/validation/validation_suite.cpp",
                                      row.id, row.unit, units));
    }
    LoadedScenario scenario = load_scenario(scenario_file, std::nullopt);
    nlohmann::ordered_json summary;
    try {
        RunOutput out(scratch_dir / row.id);  // never committed: its staged folder goes when it does
        RunOptions run_options;
        run_options.seed = scenario.seed;
        summary = scenario.runner->run(run_options, out);
    } catch (const UnreachableTarget& e) {
        // The modelled deployment cannot do what the row's protocol asks, so there is no figure to
        // compare: listed with the rows that have no prediction, with the reason.
        r.status = RowStatus::not_yet_predictable;
        r.note = fmt::format("the modelled deployment cannot run the row's protocol ({})", e.what());
        return;
    }
    const std::string key(metric->key);
    auto scenario_error = [&](const std::string& message) { return input_error(scenario_file, 0, "", message); };
    if (!summary.contains(key) || !summary[key].is_number())
        throw scenario_error(
            fmt::format("row {} is in {}, compared with the summary's \"{}\", which this {} "
                        "scenario does not report",
                        row.id, row.unit, key, scenario.kind));
    if (!metric->required_key.empty()) {
        const std::string required(metric->required_key);
        const auto& found = summary.contains(required) ? summary[required] : nlohmann::ordered_json();
        if (!found.is_string() || found.get<std::string>() != metric->required_value)
            throw scenario_error(fmt::format("row {} is in {}, which needs the summary's {} to be \"{}\"; found {}",
                                             row.id, row.unit, required, metric->required_value, found.dump()));
    }
    const double predicted = summary[key].get<double>();
    r.metric = metric;
    r.predicted = predicted;
    r.error = relative_error(predicted, row.value);
    r.status = within_tolerance(predicted, row.value, row.tolerance) ? RowStatus::pass : RowStatus::fail;
    r.note = fmt::format("{} of the scenario", key);
    r.provenance = provenance_of(summary);
    r.summary = std::move(summary);
}

}  // namespace

std::string_view to_string(RowStatus status) {
    switch (status) {
        case RowStatus::pass:
            return "pass";
        case RowStatus::fail:
            return "fail";
        case RowStatus::not_yet_predictable:
            break;
    }
    return "not-yet-predictable";
}

const std::vector<SummaryMetric>& summary_metrics() {
    static const std::vector<SummaryMetric> metrics = {
        // DeepEP intranode tables: logical bytes per GPU (own-GPU tokens included) over the kernel time.
        {"GB/s (logical)", "logical_bandwidth_gb_per_s", true, "", ""},
        // DeepEP internode tables: the same count, named after the RDMA path the kernels use.
        {"GB/s (logical RDMA)", "logical_bandwidth_gb_per_s", true, "logical_bytes_kind", "rdma"},
        // Low-latency kernels: the time of one dispatch or combine.
        {"us", "time_us", false, "", ""},
        // Training (T1, T3): one simulated step; MFU as DeepSeek and Megatron count it (the summary's
        // mfu_convention says how).
        {"tokens/s/GPU", "tokens_per_s_per_gpu", true, "kind", "training"},
        {"s", "step_time_s", false, "kind", "training"},
        {"%", "mfu_percent", true, "kind", "training", "MFU"},
        {"TFLOPS", "model_tflops_per_gpu", true, "kind", "training"},
        // DeepSeek's profiled DualPipe chunk pair (T2): the overlapped F&B pair of one all-MoE part.
        {"ms", "pair_span_ms", false, "kind", "training", "span"},
        {"%", "pair_ep_comm_hidden_percent", true, "kind", "training", "hidden"},
        {"ms", "dispatch_ms_per_call", false, "kind", "training", "dispatch"},
        {"ms", "combine_ms_per_call", false, "kind", "training", "combine"},
        // DeepSeek serving (S1a-S1c): rates per node of the pool in its role (prompts counted whole, cache
        // hits included, as DeepSeek counts them), and the speed of a decoding request over the window.
        {"input tokens/s/node", "input_tokens_per_s_per_node_prefill", true, "kind", "serving"},
        {"output tokens/s/node", "output_tokens_per_s_per_node_decode", true, "kind", "serving"},
        {"tokens/s", "output_tokens_per_s_per_decoding_request", true, "kind", "serving"},
    };
    return metrics;
}

const SummaryMetric* metric_for(const std::string& unit, const std::string& figure) {
    for (const auto& m : summary_metrics()) {
        if (m.unit != unit) continue;
        if (m.figure_contains.empty() || figure.find(m.figure_contains) != std::string::npos) return &m;
    }
    return nullptr;
}

const SummaryMetric* metric_for_unit(const std::string& unit) {
    return metric_for(unit, "");
}

bool RowResult::faster_than_published() const {
    if (!error || !metric || *error == 0) return false;
    return metric->higher_is_faster ? *error > 0 : *error < 0;
}

std::size_t ValidationResult::count(RowStatus status) const {
    return static_cast<std::size_t>(
        std::count_if(rows.begin(), rows.end(), [&](const RowResult& r) { return r.status == status; }));
}

std::optional<double> ValidationResult::median_absolute_error() const {
    std::vector<double> errors;
    for (const auto& r : rows)
        if (r.error) errors.push_back(std::abs(*r.error));
    if (errors.empty()) return std::nullopt;
    std::sort(errors.begin(), errors.end());
    const std::size_t n = errors.size();
    return n % 2 == 1 ? errors[n / 2] : (errors[n / 2 - 1] + errors[n / 2]) / 2;
}

ValidationResult run_validation(const ValidationOptions& options, const fs::path& scratch_dir) {
    ValidationResult result;
    result.published = read_published_set(options.published);
    check_only(result.published, options.only);
    for (const auto& row : result.published.rows) {
        if (!options.only.empty() && std::find(options.only.begin(), options.only.end(), row.id) == options.only.end())
            continue;
        RowResult r;
        r.row = row;
        const fs::path scenario_file = options.scenario_dir / (row.id + ".yaml");
        const bool has_scenario = fs::exists(scenario_file);
        if (has_scenario) r.scenario = display(scenario_file, options.display_root);
        const std::string missing_kind = unimplemented_kind(row);
        if (auto exact = run_exact_check(row)) {
            r.status = exact->matches ? RowStatus::pass : RowStatus::fail;
            r.note = exact->note;
            r.provenance = "computed exactly by the simulator's code from the row's inputs";
        } else if (!missing_kind.empty()) {
            r.note = missing_kind;
        } else if (!has_scenario) {
            // The folder, not the file, so that rows waiting for the same part read alike in the report.
            r.note = fmt::format("no scenario in {}/ yet", display(options.scenario_dir, options.display_root));
            for (const auto& p : kPendingRowPrefixes)
                if (row.id.starts_with(p.what)) r.note = fmt::format("{}; {}", p.needs, r.note);
        } else if (!row.value.numeric()) {
            r.note = "the published value is a list, not a number or range; comparing it needs a check of its own";
        } else {
            predict(r, options.published, scenario_file, scratch_dir);
        }
        if (options.on_row) options.on_row(r);
        result.rows.push_back(std::move(r));
    }
    return result;
}

}  // namespace clustersim
