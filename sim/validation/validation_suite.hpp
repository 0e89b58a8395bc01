// The validation suite: runs the scenario of each published row (scenarios/validation/<id>.yaml) and
// compares the prediction with the published value within the row's tolerance.
//
// A row is predicted when its scenario exists and its kind of scenario is implemented; every other row
// is reported as not yet predictable with the reason, so that the report always covers the whole set.
#pragma once

#include "sim/validation/published_set.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clustersim {

enum class RowStatus { pass, fail, not_yet_predictable };
std::string_view to_string(RowStatus status);  // "pass", "fail", "not-yet-predictable"

// Which number of a scenario's summary.json a published unit is compared with. The unit is the key
// because a row's unit says what was measured: DeepEP's "GB/s (logical)" is bytes counted the way
// DeepEP counts them over the kernel time, which the network summary reports as
// logical_bandwidth_gb_per_s. Add a unit here when a new kind of row becomes predictable.
struct SummaryMetric {
    std::string_view unit;            // as written in published.csv
    std::string_view key;             // the summary.json field compared with it
    bool higher_is_faster = false;    // bandwidth: a higher prediction means a faster model
    std::string_view required_key;    // a summary field that must equal required_value ("" for none),
    std::string_view required_value;  // so a row is never compared with bytes counted another way
    std::string_view figure_contains = {};  // when one unit names several metrics: a word of the row's figure
};
const std::vector<SummaryMetric>& summary_metrics();
// The metric a row with this unit and figure is compared on (figure "" matches entries of any figure).
const SummaryMetric* metric_for(const std::string& unit, const std::string& figure);
const SummaryMetric* metric_for_unit(const std::string& unit);

struct RowResult {
    PublishedRow row;
    RowStatus status = RowStatus::not_yet_predictable;
    std::optional<double> predicted;  // in the row's unit
    std::optional<double> error;      // relative_error(): (predicted - published) / published
    const SummaryMetric* metric = nullptr;
    std::string scenario;            // the scenario file, relative to the display root; "" if none
    std::string note;                // why a row has no prediction, or which summary field was compared
    std::string provenance;          // what the prediction rests on, from the summary
    nlohmann::ordered_json summary;  // the scenario's summary (null when not run)
    // Whether the model came out faster than the measurement (higher bandwidth or shorter time).
    bool faster_than_published() const;
};

struct ValidationOptions {
    std::filesystem::path published;               // published.csv
    std::filesystem::path scenario_dir;            // holds <id>.yaml per row
    std::filesystem::path display_root;            // paths in notes are written relative to this (the source tree)
    std::vector<std::string> only;                 // row ids to run; empty for all
    std::function<void(const RowResult&)> on_row;  // called as each row is done (progress)
};

struct ValidationResult {
    PublishedSet published;
    std::vector<RowResult> rows;  // the selected rows, in file order
    std::size_t count(RowStatus status) const;
    std::size_t predicted() const { return count(RowStatus::pass) + count(RowStatus::fail); }
    // The median of |error| over the predicted rows; nullopt when none was predicted.
    std::optional<double> median_absolute_error() const;
};

// Runs the selected rows. Scenario outputs are staged under `scratch_dir` and removed after each run.
// Throws InputError for a bad published.csv, an unknown row id in `only`, a bad scenario, or a scenario
// whose summary lacks the metric of its row's unit.
ValidationResult run_validation(const ValidationOptions& options, const std::filesystem::path& scratch_dir);

}  // namespace clustersim
