// Reading YAML mappings with declared fields, collected errors and a resolved mirror.
#include "yaml_reader.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace clustersim {
namespace {

SourceLocation location_of(const std::string& file, const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return {file, 0, 0};
    return {file, m.line + 1, m.column + 1};
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
    return out;
}

}  // namespace

std::shared_ptr<YamlDocument> YamlDocument::load_file(const std::string& path, Diagnostics& diagnostics) {
    std::error_code ec;
    const bool regular = std::filesystem::is_regular_file(path, ec);
    std::ifstream in(path);
    if (!in || !regular) {
        auto doc = std::shared_ptr<YamlDocument>(new YamlDocument(path, diagnostics));
        diagnostics.error({path, 0, 0}, "",
                          std::filesystem::is_directory(path, ec)
                              ? "cannot read the file: it is a directory; expected a YAML file"
                              : "cannot open the file (does it exist, and is it readable?)");
        doc->root_ = YAML::Node(YAML::NodeType::Map);
        return doc;
    }
    std::stringstream text;
    text << in.rdbuf();
    return load_string(text.str(), path, diagnostics);
}

std::shared_ptr<YamlDocument> YamlDocument::load_string(const std::string& text, const std::string& name,
                                                        Diagnostics& diagnostics) {
    auto doc = std::shared_ptr<YamlDocument>(new YamlDocument(name, diagnostics));
    try {
        const std::vector<YAML::Node> documents = YAML::LoadAll(text);
        doc->root_ = documents.empty() ? YAML::Node() : documents.front();
        doc->parsed_ = true;
        if (documents.size() > 1) {
            const YAML::Mark m = documents[1].Mark();
            diagnostics.error({name, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1}, "",
                              fmt::format("expected one YAML document; found {} (a \"---\" line starts another)",
                                          documents.size()));
        }
    } catch (const YAML::Exception& e) {
        diagnostics.error({name, e.mark.is_null() ? 0 : e.mark.line + 1, e.mark.is_null() ? 0 : e.mark.column + 1}, "",
                          "not valid YAML: " + e.msg);
        doc->root_ = YAML::Node(YAML::NodeType::Map);
    }
    if (doc->root_.IsNull()) {
        diagnostics.error({name, 0, 0}, "", "the file is empty; expected a YAML mapping of keys to values");
        doc->root_ = YAML::Node(YAML::NodeType::Map);
    }
    return doc;
}

MapReader::MapReader(std::shared_ptr<YamlDocument> doc, YAML::Node node, std::string key_path, YAML::Node resolved)
    : doc_(std::move(doc)), node_(std::move(node)), path_(std::move(key_path)), resolved_(std::move(resolved)) {
    if (!node_.IsDefined() || node_.IsNull()) {
        node_ = YAML::Node(YAML::NodeType::Map);
    } else if (!node_.IsMap()) {
        error_at(node_, path_, fmt::format("expected a mapping of keys to values; found {}", describe(node_)));
        is_map_ = false;
        node_ = YAML::Node(YAML::NodeType::Map);
    }
}

MapReader MapReader::root(const std::shared_ptr<YamlDocument>& doc) {
    return MapReader(doc, doc->root(), "", doc->resolved());
}

std::string MapReader::describe(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Scalar: return "\"" + n.Scalar() + "\"";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Map: return "a mapping";
        case YAML::NodeType::Null: return "nothing (null)";
        default: return "nothing";
    }
}

SourceLocation MapReader::location() const {
    SourceLocation here = location_of(doc_->file(), node_);
    return here.line == 0 && fallback_.line != 0 ? fallback_ : here;
}

SourceLocation MapReader::key_location(std::string_view key) const {
    const YAML::Node n = lookup(key);
    if (!present(n)) return location();
    SourceLocation where = location_of(doc_->file(), n);
    return where.line == 0 ? location() : where;
}

void MapReader::declare(std::string_view key, std::string_view) { declared_.emplace_back(key); }

void MapReader::error_at(const YAML::Node& n, const std::string& key_path, const std::string& message) {
    SourceLocation where = location_of(doc_->file(), n);
    if (where.line == 0) where = location();
    doc_->diagnostics().error(std::move(where), key_path, message);
}

void MapReader::error(std::string_view key, const std::string& message) {
    failed_.emplace(key);
    const YAML::Node n = lookup(key);
    error_at(present(n) ? n : node_, path_of(key), message);
}

bool MapReader::failed(std::string_view key) const {
    return !is_map_ || !report_missing_ || failed_.find(key) != failed_.end();
}

void MapReader::error_here(const std::string& message) {
    // When the mapping itself is wrong or missing, that is reported already; its keys add nothing.
    if (!is_map_ || !report_missing_) return;
    error_at(node_, path_, message);
}

std::string MapReader::choice(std::string_view key, const std::vector<std::string>& allowed,
                              std::optional<std::string> fallback, std::string_view meaning) {
    declare(key, meaning);
    const YAML::Node n = lookup(key);
    if (!present(n)) {
        if (!fallback) {
            failed_.emplace(key);
            error_here(fmt::format("missing required key \"{}\" ({}); expected one of: {}", key, meaning, join(allowed)));
            return allowed.empty() ? std::string() : allowed.front();
        }
        resolved_[std::string(key)] = *fallback;
        return *fallback;
    }
    if (!n.IsScalar()) {
        failed_.emplace(key);
        error_at(n, path_of(key), fmt::format("expected one of: {}; found {}", join(allowed), describe(n)));
        return fallback.value_or(allowed.empty() ? std::string() : allowed.front());
    }
    const std::string& v = n.Scalar();
    for (const auto& a : allowed) {
        if (a == v) {
            resolved_[std::string(key)] = v;
            return v;
        }
    }
    std::string message = fmt::format("expected one of: {}; found \"{}\"", join(allowed), v);
    if (auto near = closest_match(v, allowed); !near.empty()) message += fmt::format(" (did you mean \"{}\"?)", near);
    failed_.emplace(key);
    error_at(n, path_of(key), message);
    return fallback.value_or(allowed.empty() ? std::string() : allowed.front());
}

MapReader MapReader::child(std::string_view key, std::string_view meaning, bool required) {
    declare(key, meaning);
    const YAML::Node n = lookup(key);
    if (!present(n) && required) error_here(fmt::format("missing required key \"{}\" ({})", key, meaning));
    resolved_[std::string(key)] = YAML::Node(YAML::NodeType::Map);
    YAML::Node mirror = resolved_[std::string(key)];
    MapReader reader(doc_, present(n) ? n : YAML::Node(YAML::NodeType::Map), path_of(key), mirror);
    reader.fallback_ = location();  // an absent mapping's problems point at its parent
    reader.report_missing_ = present(n) || !required;
    if (!is_map_ || !report_missing_) reader.report_missing_ = false;
    return reader;
}

std::vector<MapReader> MapReader::list_of_maps(std::string_view key, std::string_view meaning, bool required) {
    declare(key, meaning);
    std::vector<MapReader> out;
    const YAML::Node n = lookup(key);
    if (!present(n)) {
        if (required) error_here(fmt::format("missing required key \"{}\" ({})", key, meaning));
        return out;
    }
    if (!n.IsSequence()) {
        error_at(n, path_of(key), fmt::format("expected a list ({}); found {}", meaning, describe(n)));
        return out;
    }
    // Attach the mirror to the resolved document first, so the items' values live in its memory
    // (yaml-cpp frees nodes with the memory pool they were created in).
    resolved_[std::string(key)] = YAML::Node(YAML::NodeType::Sequence);
    YAML::Node mirror = resolved_[std::string(key)];
    for (std::size_t i = 0; i < n.size(); ++i) {
        mirror.push_back(YAML::Node(YAML::NodeType::Map));
        out.emplace_back(doc_, n[i], fmt::format("{}[{}]", path_of(key), i), mirror[i]);
    }
    return out;
}

void MapReader::finish() {
    if (!is_map_) return;
    std::vector<std::pair<std::string, int>> seen;  // key and line, to report keys given twice
    for (auto it = node_.begin(); it != node_.end(); ++it) {
        const std::string key = it->first.as<std::string>("");
        const int line = it->first.Mark().is_null() ? 0 : it->first.Mark().line + 1;
        const auto first = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == key; });
        if (first != seen.end()) {
            error_at(it->first, path_of(key),
                     fmt::format("key \"{}\" is given twice (first at line {}); only the first would be used", key,
                                 first->second));
            continue;
        }
        seen.emplace_back(key, line);
        if (std::find(declared_.begin(), declared_.end(), key) != declared_.end()) continue;
        std::string message = fmt::format("unknown key \"{}\"", key);
        if (auto near = closest_match(key, declared_); !near.empty()) {
            message += fmt::format(" (did you mean \"{}\"?)", near);
        } else if (!declared_.empty()) {
            message += fmt::format("; expected one of: {}", join(declared_));
        }
        error_at(it->first, path_of(key), message);
    }
}

// ---- codecs ---------------------------------------------------------------------------------------

std::optional<bool> ValueCodec<bool>::decode(const std::string& s, std::string& problem) {
    if (s == "true" || s == "True" || s == "yes") return true;
    if (s == "false" || s == "False" || s == "no") return false;
    problem = fmt::format("expected true or false; found \"{}\"", s);
    return std::nullopt;
}

namespace {
template <typename I>
std::optional<I> decode_integer(const std::string& s, std::string& problem, const char* what) {
    I v{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size()) return v;
    if (ec == std::errc::result_out_of_range) {
        problem = fmt::format("expected {}; found \"{}\", which is out of range", what, s);
    } else {
        problem = fmt::format("expected {}; found \"{}\"", what, s);
    }
    return std::nullopt;
}
}  // namespace

std::optional<std::int64_t> ValueCodec<std::int64_t>::decode(const std::string& s, std::string& problem) {
    return decode_integer<std::int64_t>(s, problem, expected());
}
std::optional<int> ValueCodec<int>::decode(const std::string& s, std::string& problem) {
    return decode_integer<int>(s, problem, expected());
}
std::optional<std::uint64_t> ValueCodec<std::uint64_t>::decode(const std::string& s, std::string& problem) {
    return decode_integer<std::uint64_t>(s, problem, expected());
}

std::optional<double> ValueCodec<double>::decode(const std::string& s, std::string& problem) {
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && std::isfinite(v)) return v;
    problem = fmt::format("expected a number; found \"{}\"", s);
    return std::nullopt;
}

std::string to_yaml(const YAML::Node& node) {
    YAML::Emitter out;
    out << node;
    return std::string(out.c_str()) + "\n";
}

void anchor_scenario_paths(YAML::Node tree, const std::filesystem::path& dir) {
    if (tree.IsSequence()) {
        for (auto item : tree) anchor_scenario_paths(item, dir);
        return;
    }
    if (!tree.IsMap()) return;
    for (auto item : tree) {
        const std::string key = item.first.as<std::string>();
        YAML::Node value = item.second;
        if ((key == "file" || key == "model" || key == "topology") && value.IsScalar()) {
            const std::filesystem::path p(value.Scalar());
            std::error_code ec;
            if (p.is_relative() && std::filesystem::is_regular_file(dir / p, ec))
                value = std::filesystem::absolute(dir / p).lexically_normal().string();
        } else {
            anchor_scenario_paths(value, dir);
        }
    }
}

}  // namespace clustersim
