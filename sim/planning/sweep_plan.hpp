// One plan of a sweep as a scenario: the base scenario's YAML with the plan's overrides applied,
// loaded through the scenario kinds' own loaders, and keyed by a hash of the resolved plan.
//
// Building a plan's text (build_plan_text) and explaining a rejection (explain_rejection) read the
// shared base tree and run on one thread; loading the text (load_plan_text) touches nothing shared
// and runs on any worker thread.
#pragma once

#include "sim/input/diagnostics.hpp"
#include "sim/planning/sweep_spec.hpp"
#include "sim/scenario/scenario.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace clustersim {

// The base scenario, read once.
class BaseScenario {
public:
    // Throws InputError when the file is not YAML.
    explicit BaseScenario(std::filesystem::path path);
    const std::filesystem::path& path() const { return path_; }
    const std::string& text() const { return text_; }
    // The parsed tree (with the base file's line numbers); read-only.
    const YAML::Node& tree() const { return tree_; }

private:
    std::filesystem::path path_;
    std::string text_;
    YAML::Node tree_;
};

// The base scenario with the plan's overrides applied, as YAML text. An override whose path goes
// through a value that is not a mapping (or a list index out of range) is recorded in `problems`
// with the sweep file's location; the text is then meaningless.
std::string build_plan_text(const BaseScenario& base, const SweepPlan& plan, Diagnostics& problems);

// A plan's scenario, loaded and validated by its kind's loader.
struct LoadedPlan {
    std::string kind;
    std::uint64_t seed = 1;
    std::string resolved_yaml;               // every default filled in (empty when rejected)
    std::string key;                         // 16 hex digits: plan_key(resolved_yaml), or of the text when rejected
    std::unique_ptr<ScenarioRunner> runner;  // null when rejected
    std::vector<Diagnostic> problems;        // why the scenario rejects the plan, as its loader said it
    bool ok() const { return runner != nullptr; }
};

// Loads a plan's text as if it were the file `base` (relative paths resolve against its folder).
LoadedPlan load_plan_text(const std::string& text, const std::filesystem::path& base);

// A stable 64-bit hash (FNV-1a) of the clustersim version and the resolved plan, as 16 hex digits.
std::string plan_key(const std::string& resolved_yaml);

// The loader's complaints about one plan restated for the sweep: a problem at a key the plan
// overrides points at that value in the sweep file; any other points at the key in the base file
// (the loader saw the rewritten text, whose line numbers mean nothing to the user).
std::vector<Diagnostic> explain_rejection(const BaseScenario& base, const SweepPlan& plan,
                                          const std::vector<Diagnostic>& problems);

// "parallel.pp=8, schedule.kind=dualpipe": the plan's varied values, for messages.
std::string describe_plan(const SweepSpec& spec, const SweepPlan& plan);

}  // namespace clustersim
