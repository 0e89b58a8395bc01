// Reading a sweep file and expanding its blocks into plans (see sweep_spec.hpp and README.md).
#include "sim/planning/sweep_spec.hpp"

#include "sim/input/yaml_reader.hpp"
#include "sim/planning/plan_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

namespace clustersim {
namespace {

// One axis of a block's product: each choice sets one value (grid) or several at once (zip).
using Choice = std::vector<Override>;
using Axis = std::vector<Choice>;

struct Block {
    std::vector<Override> fixed;  // the block's `set`
    std::vector<Axis> axes;       // grid keys in order, then the zip
    std::vector<std::string> varied;
};

class SweepReader {
public:
    SweepReader(std::string file, Diagnostics& diagnostics) : file_(std::move(file)), diagnostics_(diagnostics) {}

    void error(const YAML::Node& at, const std::string& key_path, const std::string& message) {
        diagnostics_.error(location_of(file_, at), key_path, message);
    }

    // The path written as a key of `set`, `grid` or `zip`; nothing when it is malformed (reported).
    std::optional<std::vector<PathSegment>> path_of(const YAML::Node& key, const std::string& key_path) {
        if (!key.IsScalar()) {
            error(key, key_path, "expected a dotted path into the scenario, such as \"parallel.pp\"");
            return std::nullopt;
        }
        std::string problem;
        auto segments = parse_dotted_path(key.Scalar(), problem);
        if (!segments) error(key, key_path, problem);
        return segments;
    }

    Override make_override(const std::string& path, std::vector<PathSegment> segments, const YAML::Node& value,
                           std::string sweep_key) {
        return Override{path, std::move(segments), value, location_of(file_, value), std::move(sweep_key)};
    }

    // `set`: one fixed value per path.
    std::vector<Override> read_set(const YAML::Node& map, const std::string& prefix) {
        std::vector<Override> out;
        for (auto it = map.begin(); it != map.end(); ++it) {
            const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
            const std::string key_path = prefix + "." + key;
            auto segments = path_of(it->first, key_path);
            if (!segments) continue;
            out.push_back(make_override(key, std::move(*segments), it->second, key_path));
        }
        return out;
    }

    // The lists of a `grid` or `zip` mapping: path -> values.
    std::vector<std::pair<Override, std::vector<Override>>> read_lists(const YAML::Node& map,
                                                                       const std::string& prefix) {
        std::vector<std::pair<Override, std::vector<Override>>> out;
        for (auto it = map.begin(); it != map.end(); ++it) {
            const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
            const std::string key_path = prefix + "." + key;
            auto segments = path_of(it->first, key_path);
            if (!segments) continue;
            const YAML::Node list = it->second;
            if (!list.IsSequence()) {
                error(list.IsDefined() && !list.IsNull() ? list : it->first, key_path,
                      fmt::format("expected a list of values for \"{}\", such as [8, 16]; found {}", key,
                                  list.IsScalar() ? "\"" + list.Scalar() + "\""
                                  : list.IsMap()  ? "a mapping"
                                                  : "nothing"));
                continue;
            }
            if (list.size() == 0) {
                error(list, key_path,
                      fmt::format("the list of values for \"{}\" is empty, so the block has no plans", key));
                continue;
            }
            std::vector<Override> values;
            for (std::size_t i = 0; i < list.size(); ++i)
                values.push_back(make_override(key, *segments, list[i], fmt::format("{}[{}]", key_path, i)));
            out.emplace_back(make_override(key, *segments, list, key_path), std::move(values));
        }
        return out;
    }

    // One block: its `set`, `grid` and `zip` mappings (absent ones are empty maps).
    Block read_block(MapReader& block, const std::string& prefix) {
        Block b;
        const auto raw = [&](std::string_view key, std::string_view meaning) {
            return block.child(key, meaning, false).node();
        };
        const YAML::Node set = raw("set", "values every plan of the block gets, by dotted path");
        const YAML::Node grid = raw("grid", "lists of values by dotted path, combined as a cartesian product");
        const YAML::Node zip = raw("zip", "lists of equal length by dotted path, taken together item by item");
        const std::string p = prefix.empty() ? "" : prefix + ".";
        b.fixed = read_set(set, p + "set");
        std::vector<std::pair<Override, std::vector<Override>>> grid_lists = read_lists(grid, p + "grid");
        std::vector<std::pair<Override, std::vector<Override>>> zip_lists = read_lists(zip, p + "zip");

        // A path may appear once per block: in `set`, in `grid` or in `zip`.
        std::vector<std::pair<std::string, const Override*>> seen;
        const auto check_unique = [&](const Override& o) {
            const auto first = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == o.path; });
            if (first != seen.end()) {
                diagnostics_.error(o.where, o.sweep_key,
                                   fmt::format("\"{}\" is given twice in this block (first as {} at line {})", o.path,
                                               first->second->sweep_key, first->second->where.line));
                return false;
            }
            seen.emplace_back(o.path, &o);
            return true;
        };
        for (const auto& o : b.fixed) check_unique(o);
        for (auto& [key, values] : grid_lists) {
            if (!check_unique(key)) continue;
            Axis axis;
            for (auto& v : values) axis.push_back({std::move(v)});
            b.axes.push_back(std::move(axis));
            b.varied.push_back(key.path);
        }
        if (!zip_lists.empty()) {
            const std::size_t n = zip_lists.front().second.size();
            bool same_length = true;
            for (const auto& [key, values] : zip_lists) {
                if (values.size() != n) {
                    diagnostics_.error(
                        key.where, key.sweep_key,
                        fmt::format("the lists of a zip must have the same length: \"{}\" has {} values, "
                                    "\"{}\" has {}",
                                    key.path, values.size(), zip_lists.front().first.path, n));
                    same_length = false;
                }
            }
            Axis axis(n);
            for (auto& [key, values] : zip_lists) {
                if (!check_unique(key)) continue;
                b.varied.push_back(key.path);
                if (!same_length) continue;
                for (std::size_t i = 0; i < n; ++i) axis[i].push_back(std::move(values[i]));
            }
            if (same_length) b.axes.push_back(std::move(axis));
        }
        return b;
    }

private:
    std::string file_;
    Diagnostics& diagnostics_;
};

bool valid_key_char(char c) {
    return c != '.' && c != '[' && c != ']' && c != ' ';
}

}  // namespace

std::optional<std::vector<PathSegment>> parse_dotted_path(const std::string& path, std::string& problem) {
    std::vector<PathSegment> out;
    const auto bad = [&](const std::string& why) {
        problem = fmt::format(
            "\"{}\" is not a dotted path into the scenario ({}); expected keys joined by dots, "
            "such as \"parallel.pp\" or \"parallel.layers_per_part[0]\"",
            path, why);
        return std::nullopt;
    };
    if (path.empty()) return bad("it is empty");
    std::size_t i = 0;
    while (true) {
        const std::size_t start = i;
        while (i < path.size() && valid_key_char(path[i])) ++i;
        if (i == start) return bad(fmt::format("a key is missing at character {}", start + 1));
        out.push_back({path.substr(start, i - start), std::nullopt});
        while (i < path.size() && path[i] == '[') {
            const std::size_t close = path.find(']', i);
            if (close == std::string::npos) return bad("a \"[\" is not closed");
            std::size_t index = 0;
            const auto [end, ec] = std::from_chars(path.data() + i + 1, path.data() + close, index);
            if (ec != std::errc() || end != path.data() + close || close == i + 1)
                return bad(fmt::format("\"{}\" is not a list index", path.substr(i, close - i + 1)));
            out.push_back({"", index});
            i = close + 1;
        }
        if (i == path.size()) break;
        if (path[i] != '.') return bad(fmt::format("unexpected \"{}\" at character {}", path[i], i + 1));
        ++i;
        if (i == path.size()) return bad("it ends with a dot");
    }
    return out;
}

std::string value_text(const YAML::Node& value) {
    if (!value.IsDefined() || value.IsNull()) return "default";
    if (value.IsScalar()) return value.Scalar();
    YAML::Emitter out;
    out.SetMapFormat(YAML::Flow);
    out.SetSeqFormat(YAML::Flow);
    out << value;
    return out.c_str();
}

SweepSpec read_sweep_spec(const std::filesystem::path& file) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(file.string(), diagnostics);
    diagnostics.throw_if_any();

    SweepSpec spec;
    spec.file = file;
    SweepReader reader(file.string(), diagnostics);
    MapReader root = MapReader::root(doc);
    PlanFileHeader header = read_plan_file_header(root, file, "sweep", "the base scenario, relative to the sweep file");
    spec.name = std::move(header.name);
    spec.description = std::move(header.description);
    spec.base = std::move(header.base);
    spec.base_where = header.base_where;
    spec.on_invalid = root.choice("on_invalid", {"error", "mark"}, std::string("error"),
                                  "error: a plan the scenario rejects stops the sweep before anything runs; mark: it "
                                  "gets a row with status invalid and the reason") == "mark"
                          ? InvalidPlans::mark
                          : InvalidPlans::error;
    const YAML::Node top = root.node();  // const: looking a key up must not insert it

    {
        const bool wanted = root.has("pareto");
        MapReader pareto = root.child("pareto", "the Pareto chart to draw: x and y, each {metric, goal}", false);
        if (wanted) {
            ParetoSpec p;
            const auto axis = [&](const char* key, ParetoAxis& a, bool required) {
                MapReader r = pareto.child(key, "a metric column of the CSV and whether more is better", required);
                a.metric = required ? r.required<std::string>("metric", "a metric column of the CSV")
                                    : r.optional<std::string>("metric", a.metric, "a metric column of the CSV");
                a.maximize = r.choice("goal", {"max", "min"},
                                      std::string(required     ? "max"
                                                  : a.maximize ? "max"
                                                               : "min"),
                                      "max: more is better; min: less is better") == "max";
                r.finish();
            };
            axis("x", p.x, true);
            axis("y", p.y, false);
            pareto.finish();
            spec.pareto = p;
        }
    }

    // The sweep-wide `set`, and either one block written at the top level or a list of `blocks`.
    const bool has_blocks = root.has("blocks");
    std::vector<Override> common;
    std::vector<Block> blocks;
    if (has_blocks) {
        for (const char* key : {"grid", "zip"}) {
            if (root.has(key))
                root.error(key, fmt::format("\"{}\" at the top level cannot be combined with \"blocks\"; move it into "
                                            "a block",
                                            key));
        }
        (void)root.child("grid", "not allowed beside blocks", false);
        (void)root.child("zip", "not allowed beside blocks", false);
        common = reader.read_set(root.child("set", "values every plan gets, by dotted path", false).node(), "set");
        std::vector<MapReader> items =
            root.list_of_maps("blocks", "blocks of plans, each a grid and/or zip with its own set");
        if (items.empty() && top["blocks"].IsSequence())
            root.error("blocks", "the list of blocks is empty; expected at least one block with a grid or zip");
        for (std::size_t i = 0; i < items.size(); ++i) {
            blocks.push_back(reader.read_block(items[i], fmt::format("blocks[{}]", i)));
            items[i].finish();
        }
    } else {
        blocks.push_back(reader.read_block(root, ""));
    }
    root.finish();
    diagnostics.throw_if_any();

    // Columns: every varied path, and with several blocks every path a block sets on its own.
    const auto add_column = [&](const std::string& path) {
        if (std::find(spec.columns.begin(), spec.columns.end(), path) == spec.columns.end())
            spec.columns.push_back(path);
    };
    for (const auto& b : blocks) {
        if (blocks.size() > 1)
            for (const auto& o : b.fixed) add_column(o.path);
        for (const auto& p : b.varied) add_column(p);
    }

    std::size_t total = 0;
    for (const auto& b : blocks) {
        std::size_t n = 1;
        for (const auto& axis : b.axes)
            n = axis.size() > 0 && n > kMaxSweepPlans / axis.size() ? kMaxSweepPlans + 1 : n * axis.size();
        total = std::min(total + n, kMaxSweepPlans + 1);
    }
    if (total > kMaxSweepPlans) {
        diagnostics.error(
            {file.string(), 0, 0}, "",
            fmt::format("the sweep expands to more than {} plans; split it into several sweeps", kMaxSweepPlans));
        diagnostics.throw_if_any();
    }

    // The cartesian product of each block's axes, the first axis varying slowest.
    for (const auto& b : blocks) {
        std::vector<std::size_t> at(b.axes.size(), 0);
        while (true) {
            SweepPlan plan;
            plan.index = spec.plans.size();
            plan.overrides = common;
            plan.overrides.insert(plan.overrides.end(), b.fixed.begin(), b.fixed.end());
            for (std::size_t a = 0; a < b.axes.size(); ++a) {
                const Choice& choice = b.axes[a][at[a]];
                plan.overrides.insert(plan.overrides.end(), choice.begin(), choice.end());
            }
            plan.cells.assign(spec.columns.size(), "");
            for (std::size_t c = 0; c < spec.columns.size(); ++c) {
                // The last override of a path wins, as it does when the plan is built.
                for (const auto& o : plan.overrides)
                    if (o.path == spec.columns[c]) plan.cells[c] = value_text(o.value);
            }
            spec.plans.push_back(std::move(plan));
            // Advance the odometer; the block is done when every axis has wrapped around.
            bool advanced = false;
            for (std::size_t a = b.axes.size(); a-- > 0;) {
                if (++at[a] < b.axes[a].size()) {
                    advanced = true;
                    break;
                }
                at[a] = 0;
            }
            if (!advanced) break;
        }
    }
    return spec;
}

}  // namespace clustersim
