// What the planning files share (see plan_file.hpp).
#include "sim/planning/plan_file.hpp"

#include <fmt/format.h>

namespace clustersim {
namespace fs = std::filesystem;

SourceLocation location_of(const std::string& file, const YAML::Node& node) {
    const YAML::Mark m = node.Mark();
    if (m.is_null()) return {file, 0, 0};
    return {file, m.line + 1, m.column + 1};
}

std::string csv_cell(const std::string& text) {
    if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
    std::string out = "\"";
    for (const char c : text) {
        out += c;
        if (c == '"') out += '"';
    }
    out += '"';
    return out;
}

PlanFileHeader read_plan_file_header(MapReader& root, const fs::path& file, std::string_view what,
                                     std::string_view base_meaning) {
    PlanFileHeader h;
    h.name = root.optional<std::string>("name", file.stem().string(),
                                        fmt::format("a short name for the {} (its output folder)", what));
    if (h.name.empty() || h.name.find_first_of("/\\") != std::string::npos || h.name == "." || h.name == "..")
        root.error("name",
                   fmt::format("\"{}\" cannot name the output folder; expected a name without slashes", h.name));
    h.description = root.optional<std::string>("description", "", fmt::format("what the {} asks", what));
    const std::string base = root.required<std::string>("base", base_meaning);
    const YAML::Node top = root.node();  // const: looking a key up must not insert it
    if (root.has("base")) h.base_where = location_of(file.string(), top["base"]);
    if (!base.empty()) {
        const fs::path p(base);
        h.base = p.is_absolute() ? p : (file.parent_path() / p).lexically_normal();
        std::error_code ec;
        if (!fs::is_regular_file(h.base, ec))
            root.error("base",
                       fmt::format("the base scenario \"{}\" is not a file (looked for {})", base, h.base.string()));
    }
    return h;
}

}  // namespace clustersim
