// Tests of MapReader and YamlDocument: typed fields, checks, choices, unknown keys, and the resolved mirror.
#include "sim/input/yaml_reader.hpp"

#include <catch2/catch.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace clustersim;
using namespace clustersim::literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// Failing checks print quantities in their written form instead of "{?}".
namespace Catch {
template <>
struct StringMaker<Time> {
    static std::string convert(Time v) { return clustersim::to_string(v); }
};
template <>
struct StringMaker<Bytes> {
    static std::string convert(Bytes v) { return clustersim::to_string(v); }
};
template <>
struct StringMaker<Bandwidth> {
    static std::string convert(Bandwidth v) { return clustersim::to_string(v); }
};
template <>
struct StringMaker<Flops> {
    static std::string convert(Flops v) { return clustersim::to_string(v); }
};
template <>
struct StringMaker<FlopRate> {
    static std::string convert(FlopRate v) { return clustersim::to_string(v); }
};
}  // namespace Catch

namespace {

// A document parsed from text as "test.yaml", with the diagnostics it reports into.
class Input {
public:
    explicit Input(const std::string& text) : doc(YamlDocument::load_string(text, "test.yaml", diagnostics)) {}
    Input(const Input&) = delete;
    Input& operator=(const Input&) = delete;

    MapReader root() const { return MapReader::root(doc); }
    // Every diagnostic, formatted the way the CLI prints it.
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        for (const auto& d : diagnostics.errors()) out.push_back(format(d));
        return out;
    }
    std::string resolved_yaml() const { return to_yaml(doc->resolved()); }

    Diagnostics diagnostics;  // declared first: the document keeps a pointer to it
    std::shared_ptr<YamlDocument> doc;
};

using Messages = std::vector<std::string>;

// One value of each readable type: as written, as read, as the resolved document records it, and a
// different value to use as a default.
template <typename T>
struct Sample {
    std::string text;
    T value;
    std::string resolved;
    T fallback;
    std::string fallback_resolved;
};
template <typename T>
Sample<T> sample();
template <>
Sample<int> sample<int>() { return {"42", 42, "42", 7, "7"}; }
template <>
Sample<std::int64_t> sample<std::int64_t>() { return {"9000000000", 9'000'000'000, "9000000000", -5, "-5"}; }
template <>
Sample<std::uint64_t> sample<std::uint64_t>() {
    return {"18446744073709551615", std::numeric_limits<std::uint64_t>::max(), "18446744073709551615", 3, "3"};
}
template <>
Sample<double> sample<double>() { return {"0.25", 0.25, "0.25", 1.5, "1.5"}; }
template <>
Sample<bool> sample<bool>() { return {"yes", true, "true", false, "false"}; }
template <>
Sample<std::string> sample<std::string>() { return {"ring", "ring", "ring", "tree", "tree"}; }
template <>
Sample<Time> sample<Time>() { return {"1.5us", 1.5_us, "1.5us", 10_us, "10us"}; }
template <>
Sample<Bytes> sample<Bytes>() { return {"80GiB", 80_GiB, "80GiB", 4_KB, "4KB"}; }
template <>
Sample<Bandwidth> sample<Bandwidth>() { return {"400Gbps", 400_Gbps, "50GB/s", 100_GBps, "100GB/s"}; }
template <>
Sample<Flops> sample<Flops>() { return {"2TFLOP", 2_TFLOP, "2TFLOP", 300_GFLOP, "300GFLOP"}; }
template <>
Sample<FlopRate> sample<FlopRate>() { return {"989TFLOPS", 989_TFLOPS, "989TFLOPS", 500_TFLOPS, "500TFLOPS"}; }

}  // namespace

// ---- every value type: required, optional, maybe --------------------------------------------------

#define CLUSTERSIM_VALUE_TYPES int, std::int64_t, std::uint64_t, double, bool, std::string, Time, Bytes, \
                               Bandwidth, Flops, FlopRate

TEMPLATE_TEST_CASE("a required value is read from its key and recorded in the resolved document",
                   "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    const Sample<TestType> s = sample<TestType>();
    Input in("value: " + s.text + "\n");
    MapReader r = in.root();
    CHECK(r.required<TestType>("value", "the value under test") == s.value);
    r.finish();
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["value"].Scalar() == s.resolved);
}

TEMPLATE_TEST_CASE("a missing required value is an error at its mapping naming the key and its meaning",
                   "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    Input in("other: 1\n");
    MapReader r = in.root();
    CHECK(r.required<TestType>("value", "the value under test") == TestType{});
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: missing required key "value" (the value under test))"});
    CHECK_FALSE(in.doc->resolved()["value"].IsDefined());
}

TEMPLATE_TEST_CASE("an absent optional value takes its default and the default is recorded in the resolved document",
                   "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    const Sample<TestType> s = sample<TestType>();
    Input in("other: 1\n");
    MapReader r = in.root();
    CHECK(r.optional<TestType>("value", s.fallback, "the value under test") == s.fallback);
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["value"].Scalar() == s.fallback_resolved);
}

TEMPLATE_TEST_CASE("a present optional value overrides its default", "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    const Sample<TestType> s = sample<TestType>();
    Input in("value: " + s.text + "\n");
    MapReader r = in.root();
    CHECK(r.optional<TestType>("value", s.fallback, "the value under test") == s.value);
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["value"].Scalar() == s.resolved);
}

TEMPLATE_TEST_CASE("a maybe value is empty when absent and leaves the resolved document alone",
                   "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    Input in("other: 1\n");
    MapReader r = in.root();
    CHECK_FALSE(r.maybe<TestType>("value", "the value under test").has_value());
    CHECK(in.messages().empty());
    CHECK_FALSE(in.doc->resolved()["value"].IsDefined());
}

TEMPLATE_TEST_CASE("a maybe value is read when present", "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    const Sample<TestType> s = sample<TestType>();
    Input in("value: " + s.text + "\n");
    MapReader r = in.root();
    const std::optional<TestType> v = r.maybe<TestType>("value", "the value under test");
    REQUIRE(v.has_value());
    CHECK(*v == s.value);
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["value"].Scalar() == s.resolved);
}

TEMPLATE_TEST_CASE("a list where a single value is expected is an error saying what was expected",
                   "[input][reader]", CLUSTERSIM_VALUE_TYPES) {
    Input in("value: [1, 2]\n");
    MapReader r = in.root();
    CHECK(r.optional<TestType>("value", sample<TestType>().fallback, "the value under test") ==
          sample<TestType>().fallback);
    CHECK(in.messages() ==
          Messages{fmt::format("test.yaml:1:8: value: expected {}; found a list", ValueCodec<TestType>::expected())});
}

TEST_CASE("a key with no value counts as absent", "[input][reader]") {
    Input in("gpus:\nnodes: ~\nname: null\n");
    MapReader r = in.root();
    CHECK(r.optional<int>("gpus", 8, "GPUs") == 8);
    CHECK_FALSE(r.maybe<int>("nodes", "nodes").has_value());
    CHECK(r.required<std::string>("name", "run name").empty());
    r.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: missing required key "name" (run name))"});
    CHECK(in.doc->resolved()["gpus"].Scalar() == "8");
}

TEST_CASE("a quoted empty string is a present string value", "[input][reader]") {
    Input in("name: \"\"\n");
    MapReader r = in.root();
    CHECK(r.required<std::string>("name", "run name").empty());
    CHECK(in.messages().empty());
}

TEST_CASE("reading a key that is absent does not add it to the user's document", "[input][reader]") {
    Input in("gpus: 8\n");
    MapReader r = in.root();
    CHECK_FALSE(r.maybe<int>("nodes", "nodes").has_value());
    CHECK(r.optional<int>("links", 4, "links") == 4);
    CHECK_FALSE(r.has("nodes"));
    CHECK(r.has("gpus"));
    CHECK(in.doc->root().size() == 1);
}

TEST_CASE("integers of each width accept their full range", "[input][reader]") {
    Input in("a: -2147483648\nb: 2147483647\nc: -9223372036854775808\nd: 0\n");
    MapReader r = in.root();
    CHECK(r.required<int>("a", "") == std::numeric_limits<int>::min());
    CHECK(r.required<int>("b", "") == std::numeric_limits<int>::max());
    CHECK(r.required<std::int64_t>("c", "") == std::numeric_limits<std::int64_t>::min());
    CHECK(r.required<std::uint64_t>("d", "") == 0u);
    CHECK(in.messages().empty());
}

TEST_CASE("booleans are read from true, false, yes and no", "[input][reader]") {
    Input in("a: true\nb: True\nc: yes\nd: false\ne: False\nf: no\n");
    MapReader r = in.root();
    CHECK(r.required<bool>("a", ""));
    CHECK(r.required<bool>("b", ""));
    CHECK(r.required<bool>("c", ""));
    CHECK_FALSE(r.required<bool>("d", ""));
    CHECK_FALSE(r.required<bool>("e", ""));
    CHECK_FALSE(r.required<bool>("f", ""));
    CHECK(in.messages().empty());
}

TEST_CASE("numbers are read in decimal and exponent forms", "[input][reader]") {
    Input in("a: 1e-3\nb: -2.5\nc: 3\n");
    MapReader r = in.root();
    CHECK(r.required<double>("a", "") == 1e-3);
    CHECK(r.required<double>("b", "") == -2.5);
    CHECK(r.required<double>("c", "") == 3.0);
    CHECK(in.messages().empty());
}

// ---- wrong values ------------------------------------------------------------------------------

TEST_CASE("a word where an integer is expected is an error", "[input][reader][errors]") {
    Input in("gpus: abc\n");
    MapReader r = in.root();
    CHECK(r.optional<int>("gpus", 8, "GPUs") == 8);
    CHECK(in.messages() == Messages{R"(test.yaml:1:7: gpus: expected an integer; found "abc")"});
}

TEST_CASE("a fraction where an integer is expected is an error", "[input][reader][errors]") {
    Input in("gpus: 3.5\ntokens: 1e3\n");
    MapReader r = in.root();
    CHECK(r.required<int>("gpus", "GPUs") == 0);
    CHECK_FALSE(r.maybe<std::int64_t>("tokens", "tokens").has_value());
    CHECK(in.messages() == Messages{R"(test.yaml:1:7: gpus: expected an integer; found "3.5")",
                                    R"(test.yaml:2:9: tokens: expected an integer; found "1e3")"});
}

TEST_CASE("an integer too large for its type is an error saying it is out of range", "[input][reader][errors]") {
    Input in("a: 2147483648\n"
             "b: -9223372036854775809\n"
             "c: 18446744073709551616\n");
    MapReader r = in.root();
    r.required<int>("a", "");
    r.required<std::int64_t>("b", "");
    r.required<std::uint64_t>("c", "");
    CHECK(in.messages() ==
          Messages{R"(test.yaml:1:4: a: expected an integer; found "2147483648", which is out of range)",
                   R"(test.yaml:2:4: b: expected an integer; found "-9223372036854775809", which is out of range)",
                   R"(test.yaml:3:4: c: expected a non-negative integer; found "18446744073709551616", which is out of range)"});
}

TEST_CASE("a negative number where a non-negative integer is expected is an error", "[input][reader][errors]") {
    Input in("seed: -1\n");
    MapReader r = in.root();
    CHECK(r.required<std::uint64_t>("seed", "seed") == 0u);
    CHECK(in.messages() == Messages{R"(test.yaml:1:7: seed: expected a non-negative integer; found "-1")"});
}

TEST_CASE("a number that is not finite is an error", "[input][reader][errors]") {
    Input in("a: .inf\nb: nan\nc: 1e999\nd: twelve\n");
    MapReader r = in.root();
    r.maybe<double>("a", "");
    r.maybe<double>("b", "");
    r.maybe<double>("c", "");
    r.maybe<double>("d", "");
    CHECK(in.messages() == Messages{R"(test.yaml:1:4: a: expected a number; found ".inf")",
                                    R"(test.yaml:2:4: b: expected a number; found "nan")",
                                    R"(test.yaml:3:4: c: expected a number; found "1e999")",
                                    R"(test.yaml:4:4: d: expected a number; found "twelve")"});
}

TEST_CASE("a word that is not a boolean is an error", "[input][reader][errors]") {
    Input in("overlap: maybe\n");
    MapReader r = in.root();
    CHECK(r.optional<bool>("overlap", true, "overlap compute and communication"));
    CHECK(in.messages() == Messages{R"(test.yaml:1:10: overlap: expected true or false; found "maybe")"});
}

TEST_CASE("a mapping where a scalar is expected is an error", "[input][reader][errors]") {
    Input in("name:\n  first: a\n");
    MapReader r = in.root();
    r.required<std::string>("name", "run name");
    CHECK(in.messages() == Messages{R"(test.yaml:2:3: name: expected a string; found a mapping)"});
}

TEST_CASE("a quantity without a unit is an error naming the key path and suggesting a unit",
          "[input][reader][errors][units]") {
    Input in("link:\n"
             "  latency: 5\n"
             "  memory: 80\n"
             "  bandwidth: 400\n"
             "  work: 2\n"
             "  peak: 989\n");
    MapReader link = in.root().child("link", "a link");
    link.required<Time>("latency", "");
    link.required<Bytes>("memory", "");
    link.required<Bandwidth>("bandwidth", "");
    link.required<Flops>("work", "");
    link.required<FlopRate>("peak", "");
    CHECK(in.messages() ==
          Messages{
              R"(test.yaml:2:12: link.latency: expected a time with a unit, such as "1.5us", "20ms" or "3s"; found "5" with no unit)",
              R"(test.yaml:3:11: link.memory: expected a size with a unit, such as "80GiB", "4KB" or "512B"; found "80" with no unit)",
              R"(test.yaml:4:14: link.bandwidth: expected a bandwidth with a unit, such as "400Gbps", "50GB/s"; found "400" with no unit)",
              R"(test.yaml:5:9: link.work: expected an amount of work with a unit, such as "2.5TFLOP" or "300GFLOP"; found "2" with no unit)",
              R"(test.yaml:6:9: link.peak: expected a compute rate with a unit, such as "989TFLOPS" or "1.98PFLOP/s"; found "989" with no unit)"});
}

TEST_CASE("a quantity with the wrong kind of unit is an error naming the accepted units", "[input][reader][errors][units]") {
    Input in("latency: 5GB\nmemory: 8Gb\nwork: 2TFLOPS\n");
    MapReader r = in.root();
    r.required<Time>("latency", "");
    r.required<Bytes>("memory", "");
    r.required<Flops>("work", "");
    CHECK(in.messages() ==
          Messages{
              R"(test.yaml:1:10: latency: unknown time unit "GB" in "5GB"; expected one of ps, ns, us, ms, s, min, h)",
              R"(test.yaml:2:9: memory: "8Gb" is in bits but a size in bytes is expected; write B (bytes), not b (bits), such as "8GB")",
              R"(test.yaml:3:7: work: "2TFLOPS" is a rate (FLOPS) but an amount of work is expected; write FLOP, such as "2.5TFLOP")"});
}

TEST_CASE("a quantity accepts a space between number and unit", "[input][reader][units]") {
    Input in("latency: 20 ms\nlink: 50 GB/s\n");
    MapReader r = in.root();
    CHECK(r.required<Time>("latency", "") == 20_ms);
    CHECK(r.required<Bandwidth>("link", "") == 50_GBps);
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["latency"].Scalar() == "20ms");
    CHECK(in.doc->resolved()["link"].Scalar() == "50GB/s");
}

// Bug (in sim/core/units.cpp, reached through every quantity field): split() words the negative-value
// error as "expected a finite, non-negative {what}" where `what` already carries an article ("a time"),
// so the user reads "expected a finite, non-negative a time". Proposed fix: pass the noun without its
// article for this message (or word it "expected {what} that is finite and not negative").
TEST_CASE("a negative quantity is an error that reads as a sentence", "[input][reader][errors][units]") {
    Input in("latency: -1us\n");
    MapReader r = in.root();
    r.required<Time>("latency", "");
    REQUIRE(in.messages().size() == 1);
    CHECK_THAT(in.messages()[0], StartsWith("test.yaml:1:10: latency: expected a") && Contains("found \"-1us\""));
    CHECK_THAT(in.messages()[0], !Contains("non-negative a "));
}

// ---- checks ------------------------------------------------------------------------------------

TEST_CASE("a value below at_least is an error naming the bound and the value found", "[input][reader][checks]") {
    Input in("gpus: 0\nnodes: -3\nlayers: 1\n");
    MapReader r = in.root();
    CHECK(r.required<int>("gpus", "GPUs", at_least(1)) == 0);
    CHECK(r.optional<int>("nodes", 2, "nodes", at_least(1)) == 2);
    CHECK(r.required<int>("layers", "layers", at_least(1)) == 1);
    CHECK(in.messages() == Messages{R"(test.yaml:1:7: gpus: expected a value of at least 1; found 0)",
                                    R"(test.yaml:2:8: nodes: expected a value of at least 1; found -3)"});
    // A value that failed its check is not recorded as resolved.
    CHECK_FALSE(in.doc->resolved()["gpus"].IsDefined());
    CHECK(in.doc->resolved()["layers"].Scalar() == "1");
}

TEST_CASE("a value outside in_range is an error naming both bounds and the value found", "[input][reader][checks]") {
    Input in("chunks: 0\nlow: 1\nhigh: 4096\nratio: 1.5\nedge: 1.0\nbig: 5000000000\n");
    MapReader r = in.root();
    CHECK(r.required<int>("chunks", "", in_range(1, 4096)) == 0);
    CHECK(r.required<int>("low", "", in_range(1, 4096)) == 1);
    CHECK(r.required<int>("high", "", in_range(1, 4096)) == 4096);
    CHECK(r.required<double>("ratio", "", in_range(0.0, 1.0)) == 0.0);
    CHECK(r.required<double>("edge", "", in_range(0.0, 1.0)) == 1.0);
    CHECK_FALSE(r.maybe<std::int64_t>("big", "", in_range<std::int64_t>(0, 4'000'000'000)).has_value());
    CHECK(in.messages() == Messages{R"(test.yaml:1:9: chunks: expected a value from 1 to 4096; found 0)",
                                    R"(test.yaml:4:8: ratio: expected a value from 0 to 1; found 1.5)",
                                    R"(test.yaml:6:6: big: expected a value from 0 to 4000000000; found 5000000000)"});
}

TEST_CASE("a quantity that is not positive is an error naming the value found", "[input][reader][checks]") {
    Input in("size: 0B\nlatency: 0us\nlink: 0Gbps\nwork: 0FLOP\npeak: 0TFLOPS\ncount: 0\nok: 1B\n");
    MapReader r = in.root();
    r.required<Bytes>("size", "", positive<Bytes>());
    r.required<Time>("latency", "", positive<Time>());
    r.required<Bandwidth>("link", "", positive<Bandwidth>());
    r.required<Flops>("work", "", positive<Flops>());
    r.required<FlopRate>("peak", "", positive<FlopRate>());
    r.required<int>("count", "", positive<int>());
    CHECK(r.required<Bytes>("ok", "", positive<Bytes>()) == 1_B);
    CHECK(in.messages() == Messages{R"(test.yaml:1:7: size: expected a positive value; found 0B)",
                                    R"(test.yaml:2:10: latency: expected a positive value; found 0us)",
                                    R"(test.yaml:3:7: link: expected a positive value; found 0Gbps)",
                                    R"(test.yaml:4:7: work: expected a positive value; found 0FLOP)",
                                    R"(test.yaml:5:7: peak: expected a positive value; found 0TFLOPS)",
                                    R"(test.yaml:6:8: count: expected a positive value; found 0)"});
}

TEST_CASE("a check applies to a maybe value when it is present", "[input][reader][checks]") {
    Input in("limit: 0\n");
    MapReader r = in.root();
    CHECK_FALSE(r.maybe<int>("limit", "", at_least(1)).has_value());
    CHECK_FALSE(r.maybe<int>("absent", "", at_least(1)).has_value());
    CHECK(in.messages() == Messages{R"(test.yaml:1:8: limit: expected a value of at least 1; found 0)"});
}

TEST_CASE("a custom check's message is reported with the value found", "[input][reader][checks]") {
    Input in("heads: 6\n");
    MapReader r = in.root();
    const Check<int> power_of_two = [](const int& v) -> std::optional<std::string> {
        if (v <= 0 || (v & (v - 1)) != 0) return std::string("expected a power of two");
        return std::nullopt;
    };
    r.required<int>("heads", "attention heads", power_of_two);
    CHECK(in.messages() == Messages{R"(test.yaml:1:8: heads: expected a power of two; found 6)"});
}

// Bug: at_least and in_range format their bounds with fmt::format("{}", min), and the quantity types
// have no fmt formatter, so `at_least(1_us)` or `in_range(1_GBps, 900_GBps)` does not compile; loaders
// can only use positive() on quantities. Proposed fix: give the checks a formatting hook that uses
// to_string() for quantities (e.g. an overload `bound_text(const T&)` picking to_string when it
// exists), or add fmt::formatter specialisations for Time, Bytes, Bandwidth, Flops and FlopRate.
TEST_CASE("a bound check can be declared on a quantity", "[input][reader][checks]") {
    CHECK(fmt::is_formattable<Time>::value);
    CHECK(fmt::is_formattable<Bytes>::value);
    CHECK(fmt::is_formattable<Bandwidth>::value);
}

// ---- choices -----------------------------------------------------------------------------------

namespace {
const std::vector<std::string> kAlgorithms{"ring", "tree", "direct"};
}

TEST_CASE("a choice accepts one of its allowed values and records it", "[input][reader][choice]") {
    Input in("algorithm: tree\n");
    MapReader r = in.root();
    CHECK(r.choice("algorithm", kAlgorithms, std::nullopt, "collective algorithm") == "tree");
    r.finish();
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["algorithm"].Scalar() == "tree");
}

TEST_CASE("an unknown choice suggests the closest allowed value", "[input][reader][choice]") {
    Input in("algorithm: rnig\nfallback: Tree\n");
    MapReader r = in.root();
    CHECK(r.choice("algorithm", kAlgorithms, std::nullopt, "collective algorithm") == "ring");
    CHECK(r.choice("fallback", kAlgorithms, "direct", "fallback algorithm") == "direct");
    CHECK(in.messages() ==
          Messages{R"(test.yaml:1:12: algorithm: expected one of: ring, tree, direct; found "rnig" (did you mean "ring"?))",
                   R"(test.yaml:2:11: fallback: expected one of: ring, tree, direct; found "Tree" (did you mean "tree"?))"});
}

TEST_CASE("an unknown choice close to no allowed value lists them without a suggestion", "[input][reader][choice]") {
    Input in("algorithm: butterfly\n");
    MapReader r = in.root();
    r.choice("algorithm", kAlgorithms, std::nullopt, "collective algorithm");
    CHECK(in.messages() == Messages{R"(test.yaml:1:12: algorithm: expected one of: ring, tree, direct; found "butterfly")"});
}

TEST_CASE("a missing required choice lists the allowed values", "[input][reader][choice]") {
    Input in("gpus: 8\n");
    MapReader r = in.root();
    CHECK(r.choice("algorithm", kAlgorithms, std::nullopt, "collective algorithm") == "ring");
    CHECK(in.messages() ==
          Messages{R"(test.yaml:1:1: missing required key "algorithm" (collective algorithm); expected one of: ring, tree, direct)"});
    CHECK_FALSE(in.doc->resolved()["algorithm"].IsDefined());
}

TEST_CASE("a missing choice with a fallback takes the fallback and records it", "[input][reader][choice]") {
    Input in("gpus: 8\n");
    MapReader r = in.root();
    CHECK(r.choice("algorithm", kAlgorithms, "direct", "collective algorithm") == "direct");
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["algorithm"].Scalar() == "direct");
}

TEST_CASE("a list given for a choice is an error listing the allowed values", "[input][reader][choice]") {
    Input in("algorithm: [ring, tree]\n");
    MapReader r = in.root();
    CHECK(r.choice("algorithm", kAlgorithms, "tree", "collective algorithm") == "tree");
    CHECK(in.messages() == Messages{R"(test.yaml:1:12: algorithm: expected one of: ring, tree, direct; found a list)"});
}

// ---- unknown keys ------------------------------------------------------------------------------

TEST_CASE("finish reports an unknown key close to a declared one with did you mean", "[input][reader][keys]") {
    Input in("gpu: 8\nnodes: 2\n");
    MapReader r = in.root();
    r.optional<int>("gpus", 8, "GPUs");
    r.optional<int>("nodes", 1, "nodes");
    r.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: gpu: unknown key "gpu" (did you mean "gpus"?))"});
}

TEST_CASE("finish suggests a declared key that differs only in case", "[input][reader][keys]") {
    Input in("GPUs: 8\n");
    MapReader r = in.root();
    CHECK(r.optional<int>("gpus", 4, "GPUs") == 4);
    r.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: GPUs: unknown key "GPUs" (did you mean "gpus"?))"});
}

TEST_CASE("finish lists the expected keys when an unknown key is close to none", "[input][reader][keys]") {
    Input in("gpus: 8\ncolour: red\n");
    MapReader r = in.root();
    r.optional<int>("gpus", 8, "GPUs");
    r.optional<int>("nodes", 1, "nodes");
    r.choice("algorithm", kAlgorithms, "ring", "collective algorithm");
    r.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:2:1: colour: unknown key "colour"; expected one of: gpus, nodes, algorithm)"});
}

TEST_CASE("finish with no declared keys reports an unknown key without a list", "[input][reader][keys]") {
    Input in("anything: 1\n");
    MapReader r = in.root();
    r.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: anything: unknown key "anything")"});
}

TEST_CASE("finish accepts every declared key, whichever way it was read", "[input][reader][keys]") {
    Input in("a: 1\nb: 2\nc: 3\nd: ring\ne:\n  x: 1\nf: []\ng: [1]\n");
    MapReader r = in.root();
    r.required<int>("a", "");
    r.optional<int>("b", 0, "");
    r.maybe<int>("c", "");
    r.choice("d", kAlgorithms, std::nullopt, "");
    MapReader e = r.child("e", "");
    e.required<int>("x", "");
    e.finish();
    r.list_of_maps("f", "");
    r.list<int>("g", "");
    r.finish();
    CHECK(in.messages().empty());
}

TEST_CASE("every unknown key is reported, in document order", "[input][reader][keys]") {
    Input in("zeta: 1\ngpus: 8\nalpha: 2\n");
    MapReader r = in.root();
    r.required<int>("gpus", "GPUs");
    r.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: zeta: unknown key "zeta"; expected one of: gpus)",
                                    R"(test.yaml:3:1: alpha: unknown key "alpha"; expected one of: gpus)"});
}

// ---- nested mappings and lists -----------------------------------------------------------------

TEST_CASE("errors inside nested mappings and lists of mappings carry the full key path", "[input][reader][nesting]") {
    Input in("a:\n"
             "  b:\n"
             "    - c: 1\n"
             "    - weight: 2\n"
             "    - c: x\n"
             "      comment: 4\n");
    MapReader a = in.root().child("a", "outer");
    std::vector<MapReader> items = a.list_of_maps("b", "items");
    REQUIRE(items.size() == 3);
    std::vector<int> cs;
    for (MapReader& item : items) {
        cs.push_back(item.required<int>("c", "the value"));
        item.finish();
    }
    a.finish();
    CHECK(items[2].path() == "a.b[2]");
    CHECK(cs == std::vector<int>{1, 0, 0});
    CHECK(in.messages() == Messages{R"(test.yaml:4:7: a.b[1]: missing required key "c" (the value))",
                                    R"(test.yaml:4:7: a.b[1].weight: unknown key "weight"; expected one of: c)",
                                    R"(test.yaml:5:10: a.b[2].c: expected an integer; found "x")",
                                    R"(test.yaml:6:7: a.b[2].comment: unknown key "comment"; expected one of: c)"});
}

TEST_CASE("nested mappings and lists of mappings are mirrored in the resolved document", "[input][reader][nesting]") {
    Input in("network:\n"
             "  links:\n"
             "    - bandwidth: 400Gbps\n"
             "    - bandwidth: 50GB/s\n"
             "      latency: 2us\n");
    MapReader network = in.root().child("network", "the network");
    // The item readers are kept alive while the resolved document is read: see the list-of-maps bug below.
    std::vector<MapReader> link_readers = network.list_of_maps("links", "links");
    for (MapReader& link : link_readers) {
        link.required<Bandwidth>("bandwidth", "");
        link.optional<Time>("latency", 1_us, "");
        link.finish();
    }
    network.optional<int>("rails", 1, "");
    network.finish();
    CHECK(in.messages().empty());
    const YAML::Node links = in.doc->resolved()["network"]["links"];
    REQUIRE(links.IsSequence());
    REQUIRE(links.size() == 2);
    CHECK(links[0]["bandwidth"].Scalar() == "50GB/s");
    CHECK(links[0]["latency"].Scalar() == "1us");
    CHECK(links[1]["latency"].Scalar() == "2us");
    CHECK(in.doc->resolved()["network"]["rails"].Scalar() == "1");
}

TEST_CASE("a missing required nested mapping is an error at the enclosing mapping", "[input][reader][nesting]") {
    Input in("gpus: 8\n");
    MapReader r = in.root();
    r.required<int>("gpus", "");
    r.child("network", "the network");
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: missing required key "network" (the network))"});
}

TEST_CASE("an absent optional nested mapping reads as all defaults", "[input][reader][nesting]") {
    Input in("gpus: 8\n");
    MapReader network = in.root().child("network", "the network", false);
    CHECK(network.path() == "network");
    CHECK(network.optional<Bandwidth>("bandwidth", 400_Gbps, "") == 400_Gbps);
    network.finish();
    CHECK(in.messages().empty());
    CHECK(in.doc->resolved()["network"]["bandwidth"].Scalar() == "50GB/s");
}

TEST_CASE("a scalar where a mapping is expected is an error at the scalar", "[input][reader][nesting]") {
    Input in("gpus: 8\nnetwork: 5\n");
    MapReader network = in.root().child("network", "the network");
    network.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:2:10: network: expected a mapping of keys to values; found "5")"});
}

// Bug: when a child mapping is given as a scalar, MapReader reads it as an empty map, so every field
// the loader then reads from it adds its own "missing required key" error, and these have no line
// (the empty stand-in map has no source mark): `network: 5` yields "test.yaml: network: missing
// required key ..." once per required field after the real error. Proposed fix: in required(),
// choice(), child(), list() and list_of_maps(), skip the missing-key error when !is_map_ (the one
// "expected a mapping" error already explains it); and give the stand-in reader the location of the
// offending node so any later cross-field error still has a line.
TEST_CASE("a scalar where a mapping is expected gives one diagnostic, not one per field read from it",
          "[input][reader][nesting]") {
    Input in("gpus: 8\nnetwork: 5\n");
    MapReader network = in.root().child("network", "the network");
    network.required<Bandwidth>("bandwidth", "link bandwidth");
    network.required<Time>("latency", "link latency");
    network.finish();
    CHECK(in.messages() == Messages{R"(test.yaml:2:10: network: expected a mapping of keys to values; found "5")"});
}

TEST_CASE("a list item that is not a mapping is an error at its index", "[input][reader][nesting]") {
    Input in("links:\n  - bandwidth: 1GB/s\n  - 7\n");
    std::vector<MapReader> links = in.root().list_of_maps("links", "links");
    REQUIRE(links.size() == 2);
    CHECK(links[1].path() == "links[1]");
    CHECK(in.messages() == Messages{R"(test.yaml:3:5: links[1]: expected a mapping of keys to values; found "7")"});
}

TEST_CASE("a scalar where a list is expected is an error", "[input][reader][nesting]") {
    Input in("links: 4\nsizes: {a: 1}\n");
    MapReader r = in.root();
    CHECK(r.list_of_maps("links", "links").empty());
    CHECK(r.list<int>("sizes", "sizes").empty());
    CHECK(in.messages() == Messages{R"(test.yaml:1:8: links: expected a list (links); found "4")",
                                    R"(test.yaml:2:8: sizes: expected a list (sizes); found a mapping)"});
}

TEST_CASE("a missing required list is an error and a missing optional list is empty", "[input][reader][nesting]") {
    Input in("gpus: 8\n");
    MapReader r = in.root();
    CHECK(r.list_of_maps("links", "links").empty());
    CHECK(r.list<int>("sizes", "message sizes").empty());
    CHECK(r.list_of_maps("extra_links", "extra links", false).empty());
    CHECK(r.list<int>("extra_sizes", "extra sizes", false).empty());
    CHECK(in.messages() == Messages{R"(test.yaml:1:1: missing required key "links" (links))",
                                    R"(test.yaml:1:1: missing required key "sizes" (message sizes))"});
}

TEST_CASE("a list of scalars is read, each bad item named by its index", "[input][reader][nesting]") {
    Input in("sizes: [1KB, 2, 3MB]\nnested:\n  counts:\n    - 1\n    - two\n");
    MapReader r = in.root();
    CHECK(r.list<Bytes>("sizes", "message sizes") == std::vector<Bytes>{1_KB, 3_MB});
    MapReader nested = r.child("nested", "");
    CHECK(nested.list<int>("counts", "") == std::vector<int>{1});
    CHECK(in.messages() ==
          Messages{R"(test.yaml:1:14: sizes[1]: expected a size with a unit, such as "80GiB", "4KB" or "512B"; found "2" with no unit)",
                   R"(test.yaml:5:7: nested.counts[1]: expected an integer; found "two")"});
    const YAML::Node sizes = in.doc->resolved()["sizes"];
    REQUIRE(sizes.size() == 2);
    CHECK(sizes[0].Scalar() == "1KB");
    CHECK(sizes[1].Scalar() == "3MB");
}

TEST_CASE("a cross-field error is reported at the key's value, or at the mapping when the key is absent",
          "[input][reader]") {
    Input in("net:\n  min: 4\n  max: 2\n");
    MapReader net = in.root().child("net", "");
    const int lo = net.required<int>("min", "");
    const int hi = net.required<int>("max", "");
    if (hi < lo) net.error("max", fmt::format("expected max ({}) to be at least min ({})", hi, lo));
    net.error("step", "expected a step when max is set");
    net.error_here("expected min and max to describe a range");
    CHECK(in.messages() == Messages{R"(test.yaml:3:8: net.max: expected max (2) to be at least min (4))",
                                    R"(test.yaml:2:3: net.step: expected a step when max is set)",
                                    R"(test.yaml:2:3: net: expected min and max to describe a range)"});
    CHECK(net.location().line == 2);
    CHECK(net.location().column == 3);
}

// ---- collecting every problem ------------------------------------------------------------------

TEST_CASE("every problem in a document is reported, and throw_if_any lists them all", "[input][reader][collect]") {
    Input in("gpus: abc\n"
             "algorithm: rnig\n"
             "colour: red\n"
             "link:\n"
             "  bandwidth: 400\n"
             "  latency: 0us\n");
    MapReader r = in.root();
    r.required<int>("gpus", "GPUs", at_least(1));
    r.choice("algorithm", kAlgorithms, "ring", "collective algorithm");
    MapReader link = r.child("link", "the link");
    link.required<Bandwidth>("bandwidth", "bandwidth");
    link.required<Time>("latency", "latency", positive<Time>());
    link.required<int>("lanes", "lanes");
    link.finish();
    r.finish();
    const Messages expected{
        R"(test.yaml:1:7: gpus: expected an integer; found "abc")",
        R"(test.yaml:2:12: algorithm: expected one of: ring, tree, direct; found "rnig" (did you mean "ring"?))",
        R"(test.yaml:5:14: link.bandwidth: expected a bandwidth with a unit, such as "400Gbps", "50GB/s"; found "400" with no unit)",
        R"(test.yaml:6:12: link.latency: expected a positive value; found 0us)",
        R"(test.yaml:5:3: link: missing required key "lanes" (lanes))",
        R"(test.yaml:3:1: colour: unknown key "colour"; expected one of: gpus, algorithm, link)"};
    CHECK(in.messages() == expected);
    try {
        in.diagnostics.throw_if_any();
        FAIL("throw_if_any did not throw");
    } catch (const InputError& e) {
        std::string listing = "6 problems in the input:";
        for (const auto& m : expected) listing += "\n  " + m;
        CHECK(std::string(e.what()) == listing);
        CHECK(e.diagnostics().size() == 6);
    }
}

TEST_CASE("problems in two documents go to the same diagnostics, each with its file name", "[input][reader][collect]") {
    Diagnostics diagnostics;
    auto scenario = YamlDocument::load_string("gpus: x\n", "scenario.yaml", diagnostics);
    auto model = YamlDocument::load_string("layers: 0\n", "model.yaml", diagnostics);
    MapReader::root(scenario).required<int>("gpus", "");
    MapReader::root(model).required<int>("layers", "", at_least(1));
    REQUIRE(diagnostics.size() == 2);
    CHECK(format(diagnostics.errors()[0]) == R"(scenario.yaml:1:7: gpus: expected an integer; found "x")");
    CHECK(format(diagnostics.errors()[1]) == R"(model.yaml:1:9: layers: expected a value of at least 1; found 0)");
    CHECK_THROWS_AS(diagnostics.throw_if_any(), InputError);
}

// ---- documents ---------------------------------------------------------------------------------

TEST_CASE("invalid YAML is one diagnostic with the line of the syntax error", "[input][document]") {
    Input in("gpus: 8\nnodes: [1, 2\nlinks: 3\n");
    CHECK_FALSE(in.doc->parsed());
    REQUIRE(in.diagnostics.size() == 1);
    const Diagnostic& d = in.diagnostics.errors()[0];
    CHECK(d.where.file == "test.yaml");
    CHECK(d.where.line >= 2);
    CHECK(d.key_path.empty());
    CHECK_THAT(d.message, StartsWith("not valid YAML: "));
    // The root is then an empty map, so a loader can still run.
    CHECK(in.doc->root().IsMap());
    CHECK(in.doc->root().size() == 0);
}

TEST_CASE("a syntax error reports the line and column where the parser stopped", "[input][document]") {
    Input in("gpus: 8\nnodes: 2\n  links: 3\n");
    REQUIRE(in.diagnostics.size() == 1);
    CHECK(in.messages()[0] == "test.yaml:3:8: not valid YAML: illegal map value");
}

TEST_CASE("an empty document is an error saying a mapping was expected", "[input][document]") {
    for (const char* text : {"", "\n\n", "# only a comment\n"}) {
        CAPTURE(text);
        Input in(text);
        CHECK(in.messages() == Messages{"test.yaml: the file is empty; expected a YAML mapping of keys to values"});
        CHECK(in.doc->root().IsMap());
    }
}

TEST_CASE("a document that is a list or a scalar is an error at the root", "[input][document]") {
    Input list("- a\n- b\n");
    MapReader::root(list.doc).finish();
    CHECK(list.messages() == Messages{"test.yaml:1:1: expected a mapping of keys to values; found a list"});
    Input scalar("hello\n");
    MapReader::root(scalar.doc).required<int>("gpus", "GPUs");
    REQUIRE_FALSE(scalar.messages().empty());
    CHECK(scalar.messages()[0] == R"(test.yaml:1:1: expected a mapping of keys to values; found "hello")");
}

TEST_CASE("a missing file is an error naming the path", "[input][document]") {
    Diagnostics diagnostics;
    const std::string path = "/nonexistent/clustersim/scenario.yaml";
    auto doc = YamlDocument::load_file(path, diagnostics);
    CHECK(doc->file() == path);
    CHECK_FALSE(doc->parsed());
    CHECK(doc->root().IsMap());
    REQUIRE(diagnostics.size() == 1);
    CHECK(format(diagnostics.errors()[0]) ==
          "/nonexistent/clustersim/scenario.yaml: cannot open the file (does it exist, and is it readable?)");
}

TEST_CASE("a file is read and its errors carry its path", "[input][document]") {
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("clustersim_input_test_" + std::to_string(::getpid()) + ".yaml");
    {
        std::ofstream out(path);
        out << "gpus: 8\nnodes: zero\n";
    }
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(path.string(), diagnostics);
    std::filesystem::remove(path);
    CHECK(doc->parsed());
    MapReader r = MapReader::root(doc);
    CHECK(r.required<int>("gpus", "") == 8);
    r.required<int>("nodes", "");
    REQUIRE(diagnostics.size() == 1);
    CHECK(format(diagnostics.errors()[0]) == path.string() + R"(:2:8: nodes: expected an integer; found "zero")");
}

// Bug (sim/input/yaml_reader.cpp): yaml-cpp keeps both entries of a key given twice in one mapping,
// lookup() returns the first, and finish() skips the second because its name was declared, so
// `gpus: 1` followed later by `gpus: 2` silently runs with 1 (YAML requires keys to be unique; a
// user overriding a value at the end of a long file expects the override to win or to be told).
// Proposed fix: in finish(), remember the keys already seen while iterating the mapping and report
// `duplicate key "gpus" (first given at line N)` at the second occurrence.
TEST_CASE("a key given twice in one mapping is an error", "[input][document]") {
    Input in("gpus: 1\nnodes: 2\ngpus: 2\n");
    MapReader r = in.root();
    r.optional<int>("gpus", 8, "GPUs");
    r.optional<int>("nodes", 1, "nodes");
    r.finish();
    REQUIRE(in.messages().size() == 1);
    CHECK_THAT(in.messages()[0], StartsWith("test.yaml:3:1: gpus: "));
}

// Bug (sim/input/yaml_reader.cpp, YamlDocument::load_string): YAML::Load parses only the first
// document of a stream, so everything after a "---" line is silently ignored, unknown keys included.
// Proposed fix: parse with YAML::LoadAll and report "expected one YAML document; found N" at the
// start of the second one when there is more than one.
TEST_CASE("a second YAML document in the same file is an error", "[input][document]") {
    Input in("gpus: 1\n---\ngpus: 2\ncolour: red\n");
    MapReader r = in.root();
    r.optional<int>("gpus", 8, "GPUs");
    r.finish();
    CHECK_FALSE(in.messages().empty());
}

// Bug (sim/input/yaml_reader.cpp, YamlDocument::load_file): std::ifstream opens a directory without
// failing on Linux and reading it yields no text, so a directory given where a file is expected is
// reported as "the file is empty". Proposed fix: check std::filesystem::is_regular_file(path) (or
// the stream state after reading) and report "cannot read the file: it is a directory".
TEST_CASE("a directory given as a file is an error that says it cannot be read", "[input][document]") {
    Diagnostics diagnostics;
    const std::string dir = std::filesystem::temp_directory_path().string();
    auto doc = YamlDocument::load_file(dir, diagnostics);
    REQUIRE(diagnostics.size() == 1);
    CHECK_THAT(format(diagnostics.errors()[0]), StartsWith(dir + ": ") && !Contains("empty"));
}

// ---- the resolved document round-trips ---------------------------------------------------------

namespace {

// Every kind of field, read the way a scenario loader reads it.
struct Settings {
    int gpus = 0;
    std::int64_t tokens = 0;
    std::uint64_t seed = 0;
    double ratio = 0;
    bool overlap = false;
    std::string name;
    Time latency;
    Bytes memory;
    Bandwidth link;
    Flops work;
    FlopRate peak;
    std::string algorithm;
    std::vector<Time> stages;
    int rails = 0;
    std::vector<Bandwidth> lanes;
};

// `item_readers` keeps the list items' readers alive as long as the resolved document is used (see
// the list-of-maps bug below).
Settings read_settings(MapReader r, std::vector<MapReader>& item_readers) {
    Settings s;
    s.gpus = r.required<int>("gpus", "", at_least(1));
    s.tokens = r.optional<std::int64_t>("tokens", 4096, "");
    s.seed = r.optional<std::uint64_t>("seed", 12345678901234567890u, "");
    s.ratio = r.optional<double>("ratio", 0.1, "");
    s.overlap = r.optional<bool>("overlap", true, "");
    s.name = r.optional<std::string>("name", "unnamed", "");
    s.latency = r.optional<Time>("latency", 1.5_us, "");
    s.memory = r.optional<Bytes>("memory", 80_GiB, "");
    s.link = r.required<Bandwidth>("link", "");
    s.work = r.optional<Flops>("work", 2_TFLOP, "");
    s.peak = r.optional<FlopRate>("peak", 989_TFLOPS, "");
    s.algorithm = r.choice("algorithm", kAlgorithms, "tree", "");
    s.stages = r.list<Time>("stages", "", false);
    MapReader network = r.child("network", "", false);
    s.rails = network.optional<int>("rails", 2, "");
    item_readers = network.list_of_maps("lanes", "", false);
    for (MapReader& lane : item_readers) {
        s.lanes.push_back(lane.optional<Bandwidth>("bandwidth", 25_GBps, ""));
        lane.finish();
    }
    network.finish();
    r.finish();
    return s;
}

}  // namespace

TEST_CASE("the resolved document loads back to the same values", "[input][resolved]") {
    Input first("gpus: 16\n"
                "ratio: 0.3\n"
                "name: \"a: b # c\"\n"
                "link: 400Gbps\n"
                "latency: 2min\n"
                "stages: [1us, 2.5ms]\n"
                "network:\n"
                "  lanes:\n"
                "    - bandwidth: 1GiB/s\n"
                "    - {}\n");
    std::vector<MapReader> first_items;
    const Settings a = read_settings(first.root(), first_items);
    REQUIRE(first.messages().empty());
    const std::string text = first.resolved_yaml();
    CAPTURE(text);

    Input second(text);
    std::vector<MapReader> second_items;
    const Settings b = read_settings(second.root(), second_items);
    REQUIRE(second.messages().empty());
    CHECK(b.gpus == a.gpus);
    CHECK(b.tokens == a.tokens);
    CHECK(b.seed == a.seed);
    CHECK(b.seed == 12345678901234567890u);
    CHECK(b.ratio == a.ratio);
    CHECK(b.overlap == a.overlap);
    CHECK(b.name == "a: b # c");
    CHECK(b.name == a.name);
    CHECK(b.latency == a.latency);
    CHECK(b.latency == 120_s);
    CHECK(b.memory == a.memory);
    CHECK(b.link == a.link);
    CHECK(b.work == a.work);
    CHECK(b.peak == a.peak);
    CHECK(b.algorithm == "tree");
    CHECK(b.stages == a.stages);
    CHECK(b.rails == 2);
    REQUIRE(b.lanes.size() == 2);
    CHECK(b.lanes == a.lanes);
    CHECK(b.lanes[1] == 25_GBps);
    // Resolving a resolved document changes nothing.
    CHECK(second.resolved_yaml() == text);
}

TEST_CASE("a string that looks like another type survives the round trip", "[input][resolved]") {
    Input first("a: \"\"\nb: \"~\"\nc: \"true\"\nd: \"- x\"\ne: \"8\"\n");
    MapReader r = first.root();
    std::vector<std::string> values;
    for (const char* key : {"a", "b", "c", "d", "e"}) values.push_back(r.required<std::string>(key, ""));
    Input second(first.resolved_yaml());
    MapReader r2 = second.root();
    for (const char* key : {"a", "b", "c", "d", "e"}) values.push_back(r2.required<std::string>(key, ""));
    CHECK(second.messages().empty());
    CHECK(values == std::vector<std::string>{"", "~", "true", "- x", "8", "", "~", "true", "- x", "8"});
}

// Bug (in sim/core/units.cpp, reached through every quantity field of the resolved document):
// to_string() of Bytes, Bandwidth, Flops and FlopRate prints 12 significant digits ("{:.12g}"), so a
// value written with more digits than that comes back different when resolved.yaml is re-run:
// "123456789012345B" resolves to "123.456789012TB". Proposed fix: print the shortest form that parses
// back to the same double (fmt's default "{}"), and fall back to the base unit ("...B") when the
// scaled form does not parse back exactly.
TEST_CASE("a resolved quantity with many significant digits loads back to the same value", "[input][resolved]") {
    Input first("memory: 123456789012345B\nlink: 123456789012345B/s\n");
    MapReader r = first.root();
    const Bytes memory = r.required<Bytes>("memory", "");
    const Bandwidth link = r.required<Bandwidth>("link", "");
    Input second(first.resolved_yaml());
    MapReader r2 = second.root();
    CHECK(r2.required<Bytes>("memory", "") == memory);
    CHECK(r2.required<Bandwidth>("link", "") == link);
}

// Bug (sim/input/yaml_reader.cpp, MapReader::list_of_maps): each item's mirror node is pushed into the
// sequence mirror, and only then is the sequence assigned into the parent's resolved node. yaml-cpp
// merges node memory on assignment, but the items' memory holders still point at the sequence's
// old memory pool, so every value an item reader records later (required/optional/...) is allocated
// in a pool that only the item readers own. When the readers are destroyed -- the normal pattern
// `for (MapReader& x : r.list_of_maps(...)) {...}` -- those nodes are freed while the resolved
// document still points at them: writing resolved.yaml then crashes or prints garbage (confirmed
// with a SIGSEGV in to_yaml under AddressSanitizer). Proposed fix: in list_of_maps, assign
// `resolved_[std::string(key)] = mirror;` before the loop that pushes the item mirrors, as child()
// already does, so each push_back merges the item into the document's own pool (checked: the crash
// goes away). The dangling read is undefined behaviour, so the check runs in a child process.
TEST_CASE("the resolved document keeps the values read from a list of mappings after its readers are gone",
          "[input][resolved]") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::signal(SIGSEGV, SIG_DFL);
        std::signal(SIGBUS, SIG_DFL);
        std::signal(SIGABRT, SIG_DFL);
        bool same = false;
        try {
            Diagnostics diagnostics;
            auto doc = YamlDocument::load_string("links:\n  - bandwidth: 400Gbps\n  - bandwidth: 1GB/s\n",
                                                 "test.yaml", diagnostics);
            {
                MapReader r = MapReader::root(doc);
                for (MapReader& link : r.list_of_maps("links", "links")) {
                    link.required<Bandwidth>("bandwidth", "");
                    link.optional<Time>("latency", 1_us, "");
                }
            }
            same = to_yaml(doc->resolved()) ==
                   "links:\n  - bandwidth: 50GB/s\n    latency: 1us\n  - bandwidth: 1GB/s\n    latency: 1us\n";
        } catch (...) {
        }
        std::_Exit(same ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("the child process " << (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                                       : "exited with status " + std::to_string(WEXITSTATUS(status))));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
