// Scenarios: loading a scenario file of any kind, validating it whole, and running it.
//
// A scenario file names its `kind` (network, training, serving); the kind's loader reads the rest
// of the file through the same MapReader, so unknown keys, missing units and bad values of every
// kind are reported together, with file, line and key path, before anything runs.
#pragma once

#include "run_output.hpp"
#include "sim/input/yaml_reader.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace clustersim {

// What every run needs besides the scenario itself.
struct RunOptions {
    std::uint64_t seed = 1;
    bool trace = false;  // write trace.json (Chrome/Perfetto)
};

// Thrown by a run that worked but cannot give what the scenario asks for, because the modelled
// deployment cannot reach it (a throughput target above its capacity): the answer to the user's
// question, not a fault. The CLI reports it as a user error; `clustersim validate` as a failed row.
class UnreachableTarget : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A validated scenario of some kind, ready to run.
class ScenarioRunner {
public:
    virtual ~ScenarioRunner() = default;
    // Runs the scenario and writes its outputs (summary.json, CSVs, trace.json) to `out`; returns
    // the headline metrics written to summary.json, for the CLI to print.
    virtual nlohmann::ordered_json run(const RunOptions& options, RunOutput& out) = 0;
};

// Facts about the scenario file that a kind's loader may need (to resolve relative paths).
struct ScenarioContext {
    std::filesystem::path scenario_dir;
};

using ScenarioLoader = std::function<std::unique_ptr<ScenarioRunner>(MapReader& root, const ScenarioContext& context)>;

struct ScenarioKind {
    std::string name;
    std::string summary;
    ScenarioLoader loader;   // empty while the kind is not implemented yet
    std::string planned_in;  // where the kind is being built, when it is not implemented yet
};

// Every kind the simulator knows of, implemented or planned.
const std::vector<ScenarioKind>& scenario_kinds();

struct LoadedScenario {
    std::string kind;
    std::string name;
    std::string description;
    std::uint64_t seed = 1;
    std::unique_ptr<ScenarioRunner> runner;
    std::string resolved_yaml;  // the scenario with every default filled in
};

// Loads and validates a scenario; throws InputError listing every problem found.
LoadedScenario load_scenario(const std::filesystem::path& path, std::optional<std::uint64_t> seed_override);
// The same from YAML text (a sweep's plan): `path` names it in errors and anchors its relative paths.
LoadedScenario load_scenario_text(const std::string& text, const std::filesystem::path& path,
                                  std::optional<std::uint64_t> seed_override);

}  // namespace clustersim
