// Tests of Diagnostics, InputError and closest_match: how input problems are collected and worded.
#include "sim/input/diagnostics.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace clustersim;

namespace {
// Builds a diagnostic field by field: GCC 12 at -O3 falsely warns (maybe-uninitialized) about the
// strings of a brace-initialised nested Diagnostic.
Diagnostic make_diagnostic(const std::string& file, int line, int column, const std::string& key_path,
                           const std::string& message) {
    Diagnostic d;
    d.where.file = file;
    d.where.line = line;
    d.where.column = column;
    d.key_path = key_path;
    d.message = message;
    return d;
}
}  // namespace

TEST_CASE("a diagnostic is formatted as file, line, column, key path and message", "[input][diagnostics]") {
    const Diagnostic d = make_diagnostic("scenario.yaml", 12, 7, "network.links[2].bandwidth", "expected a bandwidth");
    CHECK(format(d) == "scenario.yaml:12:7: network.links[2].bandwidth: expected a bandwidth");
}

TEST_CASE("a diagnostic without a key path leaves the key path out", "[input][diagnostics]") {
    const Diagnostic d = make_diagnostic("scenario.yaml", 3, 1, "", "not valid YAML: illegal map value");
    CHECK(format(d) == "scenario.yaml:3:1: not valid YAML: illegal map value");
}

TEST_CASE("a diagnostic without a line prints only the file name", "[input][diagnostics]") {
    const Diagnostic whole_file = make_diagnostic("missing.yaml", 0, 0, "", "cannot open the file");
    CHECK(format(whole_file) == "missing.yaml: cannot open the file");
    const Diagnostic with_key = make_diagnostic("model.yaml", 0, 0, "layers", "expected an integer");
    CHECK(format(with_key) == "model.yaml: layers: expected an integer");
}

TEST_CASE("diagnostics keep every error in the order it was recorded", "[input][diagnostics]") {
    Diagnostics diagnostics;
    CHECK(diagnostics.empty());
    CHECK(diagnostics.size() == 0);
    diagnostics.error({"a.yaml", 2, 3}, "gpus", "first");
    diagnostics.error({"b.yaml", 1, 1}, "", "second");
    diagnostics.error({"a.yaml", 1, 1}, "nodes", "third");
    CHECK_FALSE(diagnostics.empty());
    REQUIRE(diagnostics.size() == 3);
    const auto& errors = diagnostics.errors();
    CHECK(errors[0].message == "first");
    CHECK(errors[0].where.file == "a.yaml");
    CHECK(errors[0].where.line == 2);
    CHECK(errors[0].where.column == 3);
    CHECK(errors[0].key_path == "gpus");
    CHECK(errors[1].message == "second");
    CHECK(errors[2].message == "third");
}

TEST_CASE("throw_if_any does nothing when no error was recorded", "[input][diagnostics]") {
    const Diagnostics diagnostics;
    CHECK_NOTHROW(diagnostics.throw_if_any());
}

TEST_CASE("throw_if_any throws an InputError whose message lists every problem", "[input][diagnostics]") {
    Diagnostics diagnostics;
    diagnostics.error({"scenario.yaml", 4, 9}, "gpus", "expected an integer; found \"abc\"");
    diagnostics.error({"scenario.yaml", 0, 0}, "", "the file is empty");
    diagnostics.error({"model.yaml", 7, 3}, "layers", "expected a value of at least 1; found 0");
    try {
        diagnostics.throw_if_any();
        FAIL("throw_if_any did not throw");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()) ==
              "3 problems in the input:\n"
              "  scenario.yaml:4:9: gpus: expected an integer; found \"abc\"\n"
              "  scenario.yaml: the file is empty\n"
              "  model.yaml:7:3: layers: expected a value of at least 1; found 0");
        REQUIRE(e.diagnostics().size() == 3);
        CHECK(e.diagnostics()[2].key_path == "layers");
    }
}

TEST_CASE("a single problem is worded in the singular", "[input][diagnostics]") {
    Diagnostics diagnostics;
    diagnostics.error({"scenario.yaml", 1, 1}, "gpus", "missing");
    CHECK_THROWS_WITH(diagnostics.throw_if_any(), "1 problem in the input:\n  scenario.yaml:1:1: gpus: missing");
}

TEST_CASE("an input error is a runtime error that keeps its diagnostics", "[input][diagnostics]") {
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, InputError>);
    const InputError e({make_diagnostic("x.yaml", 1, 2, "k", "m")});
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(format(e.diagnostics()[0]) == "x.yaml:1:2: k: m");
    CHECK(std::string(e.what()) == "1 problem in the input:\n  x.yaml:1:2: k: m");
}

TEST_CASE("closest_match returns an exact match", "[input][closest_match]") {
    CHECK(closest_match("gpus", {"nodes", "gpus", "links"}) == "gpus");
}

TEST_CASE("closest_match ignores case", "[input][closest_match]") {
    CHECK(closest_match("GPUS", {"nodes", "gpus"}) == "gpus");
    CHECK(closest_match("Ring", {"tree", "ring"}) == "ring");
    CHECK(closest_match("linkbandwidth", {"LinkBandwidth"}) == "LinkBandwidth");
}

TEST_CASE("closest_match suggests a word one or two edits away", "[input][closest_match]") {
    CHECK(closest_match("gpu", {"gpus", "nodes"}) == "gpus");            // one deletion
    CHECK(closest_match("gpuss", {"gpus", "nodes"}) == "gpus");          // one insertion
    CHECK(closest_match("gpis", {"gpus", "nodes"}) == "gpus");           // one substitution
    CHECK(closest_match("rnig", {"ring", "tree", "direct"}) == "ring");  // a transposition is two edits
}

TEST_CASE("closest_match allows more edits for longer words", "[input][closest_match]") {
    // 18 characters allow 18 / 3 = 6 edits; "tensor_parallel" is 3 deletions away.
    CHECK(closest_match("tensor_parallelism", {"tensor_parallel", "pipeline"}) == "tensor_parallel");
    // 9 characters allow 3 edits but no more.
    CHECK(closest_match("bandwidth", {"bandwixxx"}) == "bandwixxx");
    CHECK(closest_match("bandwidth", {"banxxxxxx"}).empty());
}

TEST_CASE("closest_match prefers the nearest candidate and breaks ties by candidate order", "[input][closest_match]") {
    CHECK(closest_match("nodez", {"nodes_per_rack", "nodes"}) == "nodes");
    CHECK(closest_match("tap", {"tp", "ap"}) == "tp");
    CHECK(closest_match("tap", {"ap", "tp"}) == "ap");
}

TEST_CASE("closest_match returns nothing when no candidate is close", "[input][closest_match]") {
    CHECK(closest_match("colour", {"gpus", "nodes", "links"}).empty());
    CHECK(closest_match("xyz", {"abc"}).empty());
    CHECK(closest_match("completely_unrelated", {"gpus"}).empty());
}

TEST_CASE("closest_match returns nothing when there are no candidates", "[input][closest_match]") {
    CHECK(closest_match("gpus", {}).empty());
    CHECK(closest_match("", {}).empty());
}

// Bug: the allowed distance is max(2, length / 3), so for words of one or two characters any
// candidate of up to two characters is "close", even one that shares no character with the word:
// an unknown key "x" among declared keys {"tp", ...} is answered with `did you mean "tp"?` instead of
// the list of expected keys. Proposed fix in closest_match: also require the distance to be smaller
// than the word's length (a suggestion must keep at least one character of what the user wrote).
TEST_CASE("closest_match never suggests a word that replaces every character", "[input][closest_match]") {
    CHECK(closest_match("ab", {"xy"}).empty());
    CHECK(closest_match("x", {"tp"}).empty());
    CHECK(closest_match("", {"tp"}).empty());
    CHECK(closest_match("d", {"c"}).empty());
}
