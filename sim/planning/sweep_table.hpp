// The rows of a sweep: one per plan, kept in an append-only journal while the sweep runs and
// written as one CSV ordered by plan index when it ends.
//
// Every cell is text from the moment a row is made (numbers in their shortest round-trip form), so
// a row read back from the journal, or from another process, prints exactly as it was computed.
#pragma once

#include "sim/planning/sweep_spec.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace clustersim {

enum class PlanStatus {
    ok,            // simulated; the metrics are the plan's
    does_not_fit,  // the plan needs more memory than the GPU has (its memory metrics are filled in)
    failed,        // the run stopped with an error (the reason says which)
    invalid,       // the scenario rejected the plan when it was loaded (on_invalid: mark)
};
const char* to_string(PlanStatus status);
std::optional<PlanStatus> parse_plan_status(const std::string& text);

struct PlanRow {
    std::size_t plan = 0;
    std::string key;
    PlanStatus status = PlanStatus::ok;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> metrics;  // column name and cell, in the summary's order
};

// A finished run's row: the summary's numbers and booleans (nested objects flattened with dots:
// "layout.tp"); its strings and lists are descriptions or inputs and are left out. A summary with
// `fits_in_memory: false` makes the row does_not_fit, and a `status` text other than "simulated"
// becomes the reason.
PlanRow row_from_summary(std::size_t plan, const std::string& key, const nlohmann::ordered_json& summary);

// One journal line (JSON, no newline) and back; nothing when the line is damaged (a crash while writing).
std::string journal_line(const PlanRow& row);
std::optional<PlanRow> parse_journal_line(const std::string& line);

// The journal of a sweep's output folder: rows appended and flushed to disk as plans finish. It
// is locked (flock) while open, so two sweeps cannot write into the same folder at once.
class SweepJournal {
public:
    // Opens (creating) and locks the journal; throws when another process holds the lock.
    explicit SweepJournal(std::filesystem::path path);
    ~SweepJournal();
    SweepJournal(const SweepJournal&) = delete;
    SweepJournal& operator=(const SweepJournal&) = delete;

    // The rows a previous run of the sweep left, by plan key (the last one wins); damaged lines are skipped.
    static std::map<std::string, PlanRow> read(const std::filesystem::path& path);
    // Appends the row and waits until it is on disk.
    void append(const PlanRow& row);
    // Forgets every row (--fresh).
    void clear();

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

// Rows of an earlier sweep.csv, by plan key (a journal lost or deleted still leaves the CSV).
std::map<std::string, PlanRow> read_sweep_csv(const std::filesystem::path& path, const SweepSpec& spec);

// The CSV: plan, plan_key, the varied inputs, status, reason, then the union of the rows' metric
// columns in order of first appearance by plan index. `rows` holds one row per plan, by index.
std::string sweep_csv(const SweepSpec& spec, const std::vector<PlanRow>& rows);

// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half a file.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace clustersim
