// What the planning files share: sweep files (sweep_spec.hpp), training plan files (training_plan.hpp)
// and serving plan files (serving_plan.hpp) all start with a name, a description and a base scenario,
// point at YAML nodes in their errors, write CSV cells, and rewrite a base's relative file paths for
// scenarios written elsewhere (best.yaml).
#pragma once

#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace clustersim {

// The 1-based line and column of `node` in `file` (0 when the node has no mark).
SourceLocation location_of(const std::string& file, const YAML::Node& node);

// A CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string csv_cell(const std::string& text);

struct PlanFileHeader {
    std::string name;  // the output folder's name (default: the file's stem)
    std::string description;
    std::filesystem::path base;  // the base scenario, resolved against the file's folder
    SourceLocation base_where;   // where the file names it
};

// Reads `name`, `description` and `base` of a planning file; a name that cannot name a folder and a
// base that is not a file are errors recorded on `root`. `what` says what the file is ("sweep",
// "search"); `base_meaning` describes the base.
PlanFileHeader read_plan_file_header(MapReader& root, const std::filesystem::path& file, std::string_view what,
                                     std::string_view base_meaning);

// anchor_scenario_paths (sim/input/yaml_reader.hpp) makes a base scenario's relative file paths absolute.

}  // namespace clustersim
