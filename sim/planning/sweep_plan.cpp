// Applying a plan's overrides to the base scenario and loading the result (see sweep_plan.hpp).
#include "sim/planning/sweep_plan.hpp"

#include "sim/input/yaml_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace clustersim {
namespace {

std::string describe_node(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return "nothing";
    if (n.IsScalar()) return fmt::format("the value \"{}\"", n.Scalar());
    if (n.IsSequence()) return "a list";
    return "a mapping";
}

std::string segments_text(const std::vector<PathSegment>& segments, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count && i < segments.size(); ++i) {
        if (segments[i].index) {
            out += fmt::format("[{}]", *segments[i].index);
        } else {
            out += (out.empty() ? "" : ".") + segments[i].key;
        }
    }
    return out;
}

// Sets (or, for a null value, removes) `o` in `root`; returns why not, or "" when done.
std::string apply_override(YAML::Node root, const Override& o) {
    YAML::Node at = root;
    const std::size_t n = o.segments.size();
    for (std::size_t i = 0; i < n; ++i) {
        const PathSegment& s = o.segments[i];
        const bool last = i + 1 == n;
        const std::string here = segments_text(o.segments, i);
        if (s.index) {
            if (!at.IsSequence())
                return fmt::format("cannot apply \"{}\": \"{}\" holds {}, not a list", o.path, here, describe_node(at));
            if (*s.index >= at.size())
                return fmt::format("cannot apply \"{}\": \"{}\" has {} items, so there is no item [{}]", o.path, here,
                                   at.size(), *s.index);
            if (last) {
                if (!o.value.IsDefined() || o.value.IsNull())
                    return fmt::format("cannot remove list item \"{}\"; give the whole list instead", o.path);
                at[*s.index] = YAML::Clone(o.value);
                return "";
            }
            YAML::Node next = at[*s.index];
            at.reset(next);
            continue;
        }
        if (at.IsNull()) at = YAML::Node(YAML::NodeType::Map);
        if (!at.IsMap())
            return fmt::format("cannot apply \"{}\": \"{}\" holds {}, not a mapping of keys", o.path,
                               here.empty() ? std::string("the scenario") : here, describe_node(at));
        if (last) {
            if (!o.value.IsDefined() || o.value.IsNull()) {
                at.remove(s.key);
            } else {
                at[s.key] = YAML::Clone(o.value);
            }
            return "";
        }
        const YAML::Node existing = static_cast<const YAML::Node&>(at)[s.key];
        if (!existing.IsDefined() || existing.IsNull()) {
            if (o.segments[i + 1].index)
                return fmt::format(
                    "cannot apply \"{}\": \"{}\" is not set in the base scenario, so it has no item [{}]", o.path,
                    segments_text(o.segments, i + 1), *o.segments[i + 1].index);
            // A path into a mapping the base does not have yet: create it (the loader judges the key).
            at[s.key] = YAML::Node(YAML::NodeType::Map);
        }
        YAML::Node next = at[s.key];
        at.reset(next);
    }
    return "";
}

// Whether a problem reported at `key_path` concerns override path `path` (the same key, inside it,
// or a mapping that holds it, as cross-field checks report on the parent).
bool concerns(const std::string& key_path, const std::string& path) {
    const auto inside = [](const std::string& a, const std::string& b) {
        return a.size() > b.size() && a.starts_with(b) && (a[b.size()] == '.' || a[b.size()] == '[');
    };
    return !key_path.empty() && (key_path == path || inside(key_path, path) || inside(path, key_path));
}

// The base file's location of the deepest existing node along `key_path`.
SourceLocation base_location(const BaseScenario& base, const std::string& key_path) {
    SourceLocation where{base.path().string(), 0, 0};
    std::string problem;
    const auto segments = parse_dotted_path(key_path, problem);
    if (!segments) return where;
    YAML::Node at = base.tree();
    for (const auto& s : *segments) {
        YAML::Node next;
        if (s.index) {
            if (!at.IsSequence() || *s.index >= at.size()) break;
            next.reset(static_cast<const YAML::Node&>(at)[*s.index]);
        } else {
            if (!at.IsMap()) break;
            const YAML::Node child = static_cast<const YAML::Node&>(at)[s.key];
            if (!child.IsDefined()) break;
            next.reset(child);
        }
        at.reset(next);
        const YAML::Mark m = at.Mark();
        if (!m.is_null()) where = {base.path().string(), m.line + 1, m.column + 1};
    }
    return where;
}

}  // namespace

BaseScenario::BaseScenario(std::filesystem::path path) : path_(std::move(path)) {
    Diagnostics diagnostics;
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
        diagnostics.error({path_.string(), 0, 0}, "",
                          "cannot open the base scenario (does it exist, and is it readable?)");
        diagnostics.throw_if_any();
    }
    std::stringstream text;
    text << in.rdbuf();
    text_ = text.str();
    // The document reader reports syntax errors with the file's line and column.
    auto doc = YamlDocument::load_string(text_, path_.string(), diagnostics);
    diagnostics.throw_if_any();
    tree_ = doc->root();
}

std::string build_plan_text(const BaseScenario& base, const SweepPlan& plan, Diagnostics& problems) {
    YAML::Node root = YAML::Load(base.text());  // a fresh copy of the base for this plan
    for (const auto& o : plan.overrides) {
        const std::string why = apply_override(root, o);
        if (!why.empty()) problems.error(o.where, o.sweep_key, why);
    }
    return to_yaml(root);
}

LoadedPlan load_plan_text(const std::string& text, const std::filesystem::path& base) {
    LoadedPlan plan;
    try {
        LoadedScenario scenario = load_scenario_text(text, base, std::nullopt);
        plan.kind = scenario.kind;
        plan.seed = scenario.seed;
        plan.runner = std::move(scenario.runner);
        plan.resolved_yaml = std::move(scenario.resolved_yaml);
        plan.key = plan_key(plan.resolved_yaml);
    } catch (const InputError& e) {
        plan.runner.reset();
        plan.problems = e.diagnostics();
        plan.key = plan_key(text);
    }
    return plan;
}

std::string plan_key(const std::string& resolved_yaml) {
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a, 64-bit
    const auto mix = [&h](std::string_view text) {
        for (const unsigned char c : text) {
            h ^= c;
            h *= 1099511628211ULL;
        }
    };
    mix("clustersim " CLUSTERSIM_VERSION "\n");
    mix(resolved_yaml);
    return fmt::format("{:016x}", h);
}

std::string describe_plan(const SweepSpec& spec, const SweepPlan& plan) {
    std::string out;
    for (std::size_t c = 0; c < spec.columns.size(); ++c) {
        if (plan.cells[c].empty()) continue;
        out += fmt::format("{}{}={}", out.empty() ? "" : ", ", spec.columns[c], plan.cells[c]);
    }
    return out;
}

std::vector<Diagnostic> explain_rejection(const BaseScenario& base, const SweepPlan& plan,
                                          const std::vector<Diagnostic>& problems) {
    std::vector<Diagnostic> out;
    for (const auto& d : problems) {
        // The last override wins when the plan is built, so it is the one to blame.
        const auto o = std::find_if(plan.overrides.rbegin(), plan.overrides.rend(),
                                    [&](const Override& x) { return concerns(d.key_path, x.path); });
        if (o != plan.overrides.rend()) {
            out.push_back({o->where, o->sweep_key,
                           fmt::format("the scenario rejects \"{}\" = {}: {}{}", o->path, value_text(o->value),
                                       d.key_path == o->path ? "" : d.key_path + ": ", d.message)});
        } else if (d.where.file == base.path().string()) {
            out.push_back({base_location(base, d.key_path), d.key_path, d.message});
        } else {
            out.push_back(d);  // another file's problem (a model or topology file) keeps its place
        }
    }
    return out;
}

}  // namespace clustersim
