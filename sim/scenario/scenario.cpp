// Loading scenario files and the table of scenario kinds.
#include "scenario.hpp"

#include "sim/network/network_scenario.hpp"
#ifdef CLUSTERSIM_HAS_training_SCENARIO
#include "sim/training/training_scenario.hpp"
#endif
#ifdef CLUSTERSIM_HAS_serving_SCENARIO
#include "sim/serving/serving_scenario.hpp"
#endif

#include <fmt/format.h>

namespace clustersim {

const std::vector<ScenarioKind>& scenario_kinds() {
    static const std::vector<ScenarioKind> kinds = {
        {"network", "one collective or expert-parallel dispatch/combine on a cluster topology", load_network_scenario, ""},
#ifdef CLUSTERSIM_HAS_training_SCENARIO
        {"training", "one training step of a parallel plan (pipeline schedules, EP, ZeRO)", load_training_scenario, ""},
#else
        {"training", "one training step of a parallel plan (pipeline schedules, EP, ZeRO)", nullptr,
         "the training-simulation issue (DualPipe, 1F1B, ZB1P, interleaved)"},
#endif
#ifdef CLUSTERSIM_HAS_serving_SCENARIO
        {"serving", "a serving deployment under a request workload (prefill/decode, KV cache, SLOs)",
         load_serving_scenario, ""},
#else
        {"serving", "a serving deployment under a request workload (prefill/decode, KV cache, SLOs)", nullptr,
         "the serving-simulation issue (prefill/decode disaggregation, EPLB)"},
#endif
    };
    return kinds;
}

namespace {

LoadedScenario load_document(const std::shared_ptr<YamlDocument>& doc, Diagnostics& diagnostics,
                             const std::filesystem::path& path, std::optional<std::uint64_t> seed_override) {
    diagnostics.throw_if_any();  // nothing more can be said about a file that is not YAML

    MapReader root = MapReader::root(doc);
    std::vector<std::string> names;
    for (const auto& k : scenario_kinds()) names.push_back(k.name);
    LoadedScenario scenario;
    scenario.kind = root.choice("kind", names, std::nullopt, "what to simulate");
    scenario.name = root.optional<std::string>("name", path.stem().string(), "a short name for the scenario");
    scenario.description =
        root.optional<std::string>("description", "", "what the scenario shows and where its numbers come from");
    scenario.seed = root.optional<std::uint64_t>("seed", 1, "the run's random seed (overridden by --seed)");
    if (seed_override) {
        scenario.seed = *seed_override;
        doc->resolved()["seed"] = *seed_override;
    }
    if (!diagnostics.empty()) diagnostics.throw_if_any();  // without a valid kind the rest cannot be checked

    const auto& kind = *std::find_if(scenario_kinds().begin(), scenario_kinds().end(),
                                     [&](const ScenarioKind& k) { return k.name == scenario.kind; });
    if (!kind.loader) {
        std::string implemented;
        for (const auto& k : scenario_kinds())
            if (k.loader) implemented += (implemented.empty() ? "" : ", ") + k.name;
        root.error("kind", fmt::format("scenario kind \"{}\" is not implemented yet in this version of clustersim "
                                       "(it is planned in {}); the kinds that run today are: {}",
                                       kind.name, kind.planned_in, implemented));
        diagnostics.throw_if_any();
    }
    scenario.runner = kind.loader(root, ScenarioContext{path.parent_path()});
    root.finish();
    diagnostics.throw_if_any();
    // resolved.yaml names its files absolutely, so it runs again from any folder (a run's output folder).
    anchor_scenario_paths(doc->resolved(), path.parent_path());
    scenario.resolved_yaml = to_yaml(doc->resolved());
    return scenario;
}

}  // namespace

LoadedScenario load_scenario(const std::filesystem::path& path, std::optional<std::uint64_t> seed_override) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(path.string(), diagnostics);
    return load_document(doc, diagnostics, path, seed_override);
}

LoadedScenario load_scenario_text(const std::string& text, const std::filesystem::path& path,
                                  std::optional<std::uint64_t> seed_override) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_string(text, path.string(), diagnostics);
    return load_document(doc, diagnostics, path, seed_override);
}

}  // namespace clustersim
