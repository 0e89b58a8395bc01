// YAML input read into typed structs, with every problem reported precisely.
//
// A loader declares each field once, with its meaning, default and valid range, by calling
// MapReader::required / optional on the mapping that holds it. The reader converts the value,
// checks it, records an error (file:line:col, key path, expected vs found) if anything is wrong,
// and writes the resolved value (defaults filled in) into a mirror document that becomes the run's
// resolved.yaml. finish() rejects keys nobody asked for, with a "did you mean" suggestion.
//
//   MapReader r = document.root();
//   spec.gpus = r.required<int>("gpus", "number of GPUs in the cluster", at_least(1));
//   spec.link = r.optional<Bandwidth>("link_bandwidth", 400_Gbps, "per-direction link bandwidth");
//   r.finish();
//   diagnostics.throw_if_any();
#pragma once

#include "diagnostics.hpp"
#include "sim/core/units.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include <fmt/format.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clustersim {

// A check on a value: returns an error message ("expected ..."), or nothing if the value is fine.
template <typename T>
using Check = std::function<std::optional<std::string>(const T&)>;

template <typename T>
Check<T> at_least(T min) {
    return [min](const T& v) -> std::optional<std::string> {
        if (v < min) return fmt::format("expected a value of at least {}", min);
        return std::nullopt;
    };
}
template <typename T>
Check<T> in_range(T min, T max) {
    return [min, max](const T& v) -> std::optional<std::string> {
        if (v < min || v > max) return fmt::format("expected a value from {} to {}", min, max);
        return std::nullopt;
    };
}
// For quantities: strictly positive.
template <typename T>
Check<T> positive() {
    return [](const T& v) -> std::optional<std::string> {
        if (!(v > T{})) return std::string("expected a positive value");
        return std::nullopt;
    };
}

// Converts one YAML scalar to T, or returns an "expected ..., found ..." message.
template <typename T>
struct ValueCodec;

// One YAML file being read: its name, its root, the shared diagnostics, and the resolved mirror.
class YamlDocument {
public:
    // Parses `path`; a syntax error or a missing file is recorded in `diagnostics` and the root is
    // then an empty map.
    static std::shared_ptr<YamlDocument> load_file(const std::string& path, Diagnostics& diagnostics);
    static std::shared_ptr<YamlDocument> load_string(const std::string& text, const std::string& name,
                                                     Diagnostics& diagnostics);

    const std::string& file() const { return file_; }
    Diagnostics& diagnostics() { return *diagnostics_; }
    YAML::Node root() const { return root_; }
    YAML::Node resolved() const { return resolved_; }
    bool parsed() const { return parsed_; }

private:
    YamlDocument(std::string file, Diagnostics& d) : file_(std::move(file)), diagnostics_(&d) {}
    std::string file_;
    Diagnostics* diagnostics_;
    YAML::Node root_;
    YAML::Node resolved_ = YAML::Node(YAML::NodeType::Map);
    bool parsed_ = false;
};

class MapReader {
public:
    // Reads the mapping `node` at `key_path` of `doc`; `resolved` receives the resolved values.
    MapReader(std::shared_ptr<YamlDocument> doc, YAML::Node node, std::string key_path, YAML::Node resolved);
    // The root mapping of a document.
    static MapReader root(const std::shared_ptr<YamlDocument>& doc);

    // A field that must be present.
    template <typename T>
    T required(std::string_view key, std::string_view meaning, Check<T> check = {}) {
        declare(key, meaning);
        const YAML::Node n = lookup(key);
        if (!present(n)) {
            failed_.emplace(key);
            error_here(fmt::format("missing required key \"{}\" ({})", key, meaning));
            return T{};
        }
        return convert<T>(n, key, std::move(check)).value_or(T{});
    }

    // A field with a default; the default is recorded in the resolved document when absent.
    template <typename T>
    T optional(std::string_view key, T fallback, std::string_view meaning, Check<T> check = {}) {
        declare(key, meaning);
        const YAML::Node n = lookup(key);
        if (!present(n)) {
            resolved_[std::string(key)] = ValueCodec<T>::encode(fallback);
            return fallback;
        }
        return convert<T>(n, key, std::move(check)).value_or(fallback);
    }

    // A field that may be absent with no default (std::nullopt then).
    template <typename T>
    std::optional<T> maybe(std::string_view key, std::string_view meaning, Check<T> check = {}) {
        declare(key, meaning);
        const YAML::Node n = lookup(key);
        if (!present(n)) return std::nullopt;
        return convert<T>(n, key, std::move(check));
    }

    // A string field restricted to a set of names; the error lists them and suggests the closest.
    std::string choice(std::string_view key, const std::vector<std::string>& allowed,
                       std::optional<std::string> fallback, std::string_view meaning);

    // A nested mapping. If absent and not required, the reader reads an empty map (so all defaults).
    MapReader child(std::string_view key, std::string_view meaning, bool required = true);
    bool has(std::string_view key) const { return present(lookup(key)); }
    // A sequence of mappings.
    std::vector<MapReader> list_of_maps(std::string_view key, std::string_view meaning, bool required = true);
    // A sequence of scalars.
    template <typename T>
    std::vector<T> list(std::string_view key, std::string_view meaning, bool required = true) {
        declare(key, meaning);
        std::vector<T> out;
        const YAML::Node n = lookup(key);
        if (!present(n)) {
            if (required) error_here(fmt::format("missing required key \"{}\" ({})", key, meaning));
            return out;
        }
        if (!n.IsSequence()) {
            error_at(n, path_of(key), fmt::format("expected a list ({}); found {}", meaning, describe(n)));
            return out;
        }
        YAML::Node mirror(YAML::NodeType::Sequence);
        for (std::size_t i = 0; i < n.size(); ++i) {
            const std::string p = fmt::format("{}[{}]", path_of(key), i);
            auto v = decode<T>(n[i], p, {});
            if (v) {
                out.push_back(*v);
                mirror.push_back(ValueCodec<T>::encode(*v));
            }
        }
        resolved_[std::string(key)] = mirror;
        return out;
    }

    // Records an error about `key` of this mapping (for cross-field checks), at the key's location.
    void error(std::string_view key, const std::string& message);
    // Whether `key` already has a problem recorded by this reader (a required key missing, a value of the
    // wrong type or out of range, an error() about it), or this whole mapping is missing or not a mapping:
    // its value is then a placeholder, and a later check of it would only repeat the problem.
    bool failed(std::string_view key) const;
    // Records an error about this mapping as a whole.
    void error_here(const std::string& message);
    // Rejects keys that were never declared, suggesting the closest declared key.
    void finish();

    const std::string& path() const { return path_; }
    const std::shared_ptr<YamlDocument>& document() const { return doc_; }
    SourceLocation location() const;
    // Where `key` of this mapping is written (this mapping's location when it is absent): for problems
    // found after loading, such as a simulated time out of range, that still belong to a key.
    SourceLocation key_location(std::string_view key) const;
    YAML::Node resolved() const { return resolved_; }
    YAML::Node node() const { return node_; }

private:
    static bool present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }
    // Const lookup: a non-const operator[] would insert the key into the user's document.
    YAML::Node lookup(std::string_view key) const {
        const YAML::Node& map = node_;
        return map[std::string(key)];
    }
    static std::string describe(const YAML::Node& n);
    void declare(std::string_view key, std::string_view meaning);
    std::string path_of(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }
    void error_at(const YAML::Node& n, const std::string& key_path, const std::string& message);

    template <typename T>
    std::optional<T> decode(const YAML::Node& n, const std::string& key_path, const Check<T>& check) {
        if (!n.IsScalar()) {
            error_at(n, key_path, fmt::format("expected {}; found {}", ValueCodec<T>::expected(), describe(n)));
            return std::nullopt;
        }
        std::string problem;
        auto v = ValueCodec<T>::decode(n.Scalar(), problem);
        if (!v) {
            error_at(n, key_path, problem);
            return std::nullopt;
        }
        if (check) {
            if (auto bad = check(*v)) {
                error_at(n, key_path, fmt::format("{}; found {}", *bad, n.Scalar()));
                return std::nullopt;
            }
        }
        return v;
    }

    template <typename T>
    std::optional<T> convert(const YAML::Node& n, std::string_view key, Check<T> check) {
        auto v = decode<T>(n, path_of(key), check);
        if (v)
            resolved_[std::string(key)] = ValueCodec<T>::encode(*v);
        else
            failed_.emplace(key);
        return v;
    }

    std::shared_ptr<YamlDocument> doc_;
    YAML::Node node_;
    std::string path_;
    YAML::Node resolved_;
    std::vector<std::string> declared_;
    std::set<std::string, std::less<>> failed_;  // keys with a problem recorded (see failed())
    bool is_map_ = true;
    bool report_missing_ = true;  // false inside a required mapping that is absent (already reported)
    SourceLocation fallback_;     // where to point when this mapping has no location of its own
};

// ---- value codecs -------------------------------------------------------------------------------

template <>
struct ValueCodec<std::string> {
    static const char* expected() { return "a string"; }
    static std::optional<std::string> decode(const std::string& s, std::string&) { return s; }
    static YAML::Node encode(const std::string& v) { return YAML::Node(v); }
};

template <>
struct ValueCodec<bool> {
    static const char* expected() { return "true or false"; }
    static std::optional<bool> decode(const std::string& s, std::string& problem);
    static YAML::Node encode(bool v) { return YAML::Node(v); }
};

template <>
struct ValueCodec<std::int64_t> {
    static const char* expected() { return "an integer"; }
    static std::optional<std::int64_t> decode(const std::string& s, std::string& problem);
    static YAML::Node encode(std::int64_t v) { return YAML::Node(v); }
};

template <>
struct ValueCodec<int> {
    static const char* expected() { return "an integer"; }
    static std::optional<int> decode(const std::string& s, std::string& problem);
    static YAML::Node encode(int v) { return YAML::Node(v); }
};

template <>
struct ValueCodec<std::uint64_t> {
    static const char* expected() { return "a non-negative integer"; }
    static std::optional<std::uint64_t> decode(const std::string& s, std::string& problem);
    static YAML::Node encode(std::uint64_t v) { return YAML::Node(v); }
};

template <>
struct ValueCodec<double> {
    static const char* expected() { return "a number"; }
    static std::optional<double> decode(const std::string& s, std::string& problem);
    static YAML::Node encode(double v) { return YAML::Node(v); }
};

// Physical quantities: the unit is mandatory (see units.hpp for the accepted spellings).
template <typename Q, Q (*Parse)(std::string_view), const char* Expected>
struct QuantityCodec {
    static const char* expected() { return Expected; }
    static std::optional<Q> decode(const std::string& s, std::string& problem) {
        try {
            return Parse(s);
        } catch (const UnitError& e) {
            problem = e.what();
            return std::nullopt;
        }
    }
    static YAML::Node encode(const Q& v) { return YAML::Node(to_string(v)); }
};

inline constexpr char kExpectTime[] = "a time with a unit, such as \"1.5us\"";
inline constexpr char kExpectBytes[] = "a size with a unit, such as \"80GiB\"";
inline constexpr char kExpectBandwidth[] = "a bandwidth with a unit, such as \"400Gbps\" or \"50GB/s\"";
inline constexpr char kExpectFlops[] = "an amount of work with a unit, such as \"2TFLOP\"";
inline constexpr char kExpectFlopRate[] = "a compute rate with a unit, such as \"989TFLOPS\"";

template <> struct ValueCodec<Time> : QuantityCodec<Time, parse_time, kExpectTime> {};
template <> struct ValueCodec<Bytes> : QuantityCodec<Bytes, parse_bytes, kExpectBytes> {};
template <> struct ValueCodec<Bandwidth> : QuantityCodec<Bandwidth, parse_bandwidth, kExpectBandwidth> {};
template <> struct ValueCodec<Flops> : QuantityCodec<Flops, parse_flops, kExpectFlops> {};
template <> struct ValueCodec<FlopRate> : QuantityCodec<FlopRate, parse_flop_rate, kExpectFlopRate> {};

// Writes a resolved document as YAML text.
std::string to_yaml(const YAML::Node& node);

// Makes the files a scenario names by relative path (keys `model`, `file` and a scalar `topology`, at
// any depth) absolute where such a file exists beside `dir`, so that the scenario loads the same files
// from any folder (a run's resolved.yaml, a plan's base). Bundled names (no such file) stay as written.
void anchor_scenario_paths(YAML::Node tree, const std::filesystem::path& dir);

}  // namespace clustersim
