// A sweep file read into the list of plans it names: a base scenario plus overrides by dotted path.
//
// The file format is described in sim/planning/README.md. Reading it checks everything that can be
// checked without the scenario (paths, lists, zip lengths, duplicates) and reports every problem at
// once, each with the sweep file's line, column and key; whether the scenario accepts a plan is
// checked when the plan is loaded (sweep_plan.hpp).
#pragma once

#include "sim/input/diagnostics.hpp"

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

// One step of a dotted path: a mapping key ("parallel") or a list index ("[2]").
struct PathSegment {
    std::string key;                   // empty for an index
    std::optional<std::size_t> index;  // set for an index
};

// "parallel.pp" -> {parallel, pp}; "parallel.layers_per_part[0]" -> {parallel, layers_per_part, [0]}.
// Returns nothing and sets `problem` when the path is malformed.
std::optional<std::vector<PathSegment>> parse_dotted_path(const std::string& path, std::string& problem);

// One value a plan gives to one dotted path of the scenario.
struct Override {
    std::string path;                   // as written in the sweep file: "parallel.pp"
    std::vector<PathSegment> segments;  // the parsed path
    YAML::Node value;                   // the value node in the sweep file; null removes the key
    SourceLocation where;               // the value's place in the sweep file
    std::string sweep_key;              // its key path in the sweep file: "grid.parallel.pp[1]"
};

// The text a value has in the CSV: a scalar as written, null as "default" (the key is removed),
// a list or mapping as flow YAML ("[3, 4, 4]").
std::string value_text(const YAML::Node& value);

// What a sweep does with plans the scenario rejects when they are loaded.
enum class InvalidPlans {
    error,  // the sweep stops before running anything, listing every rejected plan
    mark,   // the plans get a row with status "invalid" and the reason; the others run
};

struct SweepPlan {
    std::size_t index = 0;            // 0-based, in the order the sweep file lists the plans
    std::vector<Override> overrides;  // applied in order: the sweep's `set`, the block's `set`, then the varied values
    std::vector<std::string> cells;  // one per SweepSpec::columns: the value's text, "" where the block does not set it
};

// Which two metrics the sweep's Pareto chart weighs against each other (pareto_chart.hpp).
struct ParetoAxis {
    std::string metric;    // a metric column of the CSV, such as "peak_memory_gib_per_gpu"
    bool maximize = true;  // higher is better
};
struct ParetoSpec {
    ParetoAxis x;
    ParetoAxis y{"tokens_per_s_per_gpu", true};
};

struct SweepSpec {
    std::filesystem::path file;  // the sweep file
    std::string name;
    std::string description;
    std::filesystem::path base;  // the base scenario (resolved against the sweep file's folder)
    SourceLocation base_where;   // where the sweep file names it
    InvalidPlans on_invalid = InvalidPlans::error;
    std::vector<std::string> columns;  // the varied dotted paths, in order of first appearance
    std::vector<SweepPlan> plans;
    std::optional<ParetoSpec> pareto;  // the `pareto` chart to draw, if the file asks for one
};

// The most plans one sweep file may expand to (a guard against a grid written by mistake).
inline constexpr std::size_t kMaxSweepPlans = 1'000'000;

// Reads and expands a sweep file; throws InputError listing every problem found.
SweepSpec read_sweep_spec(const std::filesystem::path& file);

}  // namespace clustersim
