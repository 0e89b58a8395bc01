// Tests of sweep files: dotted paths, how grids, zips and blocks expand into plans, and every
// problem a sweep file can have, reported with the sweep file's line and key.
#include "sim/planning/sweep_spec.hpp"
#include "sweep_test_support.hpp"

#include <catch2/catch.hpp>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("dotted paths name mapping keys and list indices", "[planning][spec]") {
    std::string problem;
    const auto p = parse_dotted_path("parallel.layers_per_part[3]", problem);
    REQUIRE(p);
    REQUIRE(p->size() == 3);
    CHECK((*p)[0].key == "parallel");
    CHECK((*p)[1].key == "layers_per_part");
    CHECK((*p)[2].index == 3u);
    CHECK(parse_dotted_path("seed", problem)->size() == 1);

    for (const char* bad : {"", "parallel..pp", ".pp", "parallel.", "a[x]", "a[1", "a]"}) {
        INFO(bad);
        problem.clear();
        CHECK_FALSE(parse_dotted_path(bad, problem));
        CHECK_THAT(problem, Contains("is not a dotted path into the scenario"));
    }
}

TEST_CASE("a grid is a cartesian product with the first key slowest, and a zip one more axis", "[planning][spec]") {
    SweepScratch dir("grid");
    const SweepSpec spec = read_sweep_spec(dir.sweep("grid", R"(grid:
  parallel.pp: [1, 2]
  batch.micro_batch_size: [1, 2, 4]
zip:
  schedule.kind: [1f1b, gpipe]
  seed: [1, 2]
)"));
    CHECK(spec.name == "grid");
    CHECK(spec.base == base_scenario());
    CHECK(spec.columns == std::vector<std::string>{"parallel.pp", "batch.micro_batch_size", "schedule.kind", "seed"});
    REQUIRE(spec.plans.size() == 12);
    CHECK(spec.plans[0].cells == std::vector<std::string>{"1", "1", "1f1b", "1"});
    CHECK(spec.plans[1].cells == std::vector<std::string>{"1", "1", "gpipe", "2"});
    CHECK(spec.plans[2].cells == std::vector<std::string>{"1", "2", "1f1b", "1"});
    CHECK(spec.plans[11].cells == std::vector<std::string>{"2", "4", "gpipe", "2"});
    for (std::size_t i = 0; i < spec.plans.size(); ++i) CHECK(spec.plans[i].index == i);
}

TEST_CASE("blocks follow one another, with the sweep's set in every plan and each block's own", "[planning][spec]") {
    SweepScratch dir("blocks");
    const SweepSpec spec = read_sweep_spec(dir.sweep("blocks", R"(name: two-blocks
set:
  precision: bf16
blocks:
  - grid: {parallel.pp: [1, 2]}
  - set: {parallel.tp: 2, parallel.layers_per_part: ~}
    zip: {parallel.pp: [4], batch.micro_batch_size: [2]}
)"));
    CHECK(spec.name == "two-blocks");
    // A block's own set is an input that differs between blocks, so it gets a column; the sweep's does not.
    CHECK(spec.columns ==
          std::vector<std::string>{"parallel.pp", "parallel.tp", "parallel.layers_per_part", "batch.micro_batch_size"});
    REQUIRE(spec.plans.size() == 3);
    CHECK(spec.plans[0].cells == std::vector<std::string>{"1", "", "", ""});
    CHECK(spec.plans[1].cells == std::vector<std::string>{"2", "", "", ""});
    CHECK(spec.plans[2].cells == std::vector<std::string>{"4", "2", "default", "2"});
    CHECK(spec.plans[2].overrides.size() == 5);  // precision, tp, layers_per_part, pp, micro_batch_size
}

TEST_CASE("list and mapping values are shown as flow YAML in the CSV", "[planning][spec]") {
    SweepScratch dir("values");
    const SweepSpec spec = read_sweep_spec(dir.sweep(
        "values", "grid:\n  parallel.layers_per_part: [[10, 14], ~]\n  topology: [{file: h100-ib-rail, hosts: 6}]\n"));
    REQUIRE(spec.plans.size() == 2);
    CHECK(spec.plans[0].cells == std::vector<std::string>{"[10, 14]", "{file: h100-ib-rail, hosts: 6}"});
    CHECK(spec.plans[1].cells[0] == "default");
}

TEST_CASE("every problem of a sweep file is reported at once with its line and key", "[planning][spec][errors]") {
    SweepScratch dir("errors");
    const fs::path file = dir.sweep("bad", R"(gird:
  parallel.pp: [1, 2]
grid:
  parallel.pp: 8
  parallel..tp: [1]
  batch.micro_batch_size: []
  schedule.kind: [1f1b]
set:
  schedule.kind: gpipe
zip:
  seed: [1, 2, 3]
  precision: [bf16, fp8]
on_invalid: maybe
)");
    const std::string errors = sweep_errors(file);
    const std::string f = file.string();
    CHECK_THAT(errors, Contains(f + ":2:1: gird: unknown key \"gird\" (did you mean \"grid\"?)"));
    CHECK_THAT(
        errors,
        Contains(
            f +
            ":5:16: grid.parallel.pp: expected a list of values for \"parallel.pp\", such as [8, 16]; found \"8\""));
    CHECK_THAT(errors,
               Contains(f + ":6:3: grid.parallel..tp: \"parallel..tp\" is not a dotted path into the scenario"));
    CHECK_THAT(
        errors,
        Contains(f + ":7:27: grid.batch.micro_batch_size: the list of values for \"batch.micro_batch_size\" is empty"));
    CHECK_THAT(errors, Contains(f + ":8:18: grid.schedule.kind: \"schedule.kind\" is given twice in this block (first "
                                    "as set.schedule.kind at line 10)"));
    CHECK_THAT(errors, Contains(f + ":13:14: zip.precision: the lists of a zip must have the same length: "
                                    "\"precision\" has 2 values, \"seed\" has 3"));
    CHECK_THAT(errors, Contains(f + ":14:13: on_invalid: expected one of: error, mark; found \"maybe\""));
    CHECK_THAT(errors, StartsWith("7 problems in the input:"));
}

TEST_CASE("a sweep file must name a base scenario that exists", "[planning][spec][errors]") {
    SweepScratch dir("base");
    const fs::path missing = dir.path / "missing.yaml";
    std::ofstream(missing) << "base: nowhere.yaml\ngrid: {seed: [1]}\n";
    CHECK_THAT(sweep_errors(missing),
               Contains(missing.string() + ":1:7: base: the base scenario \"nowhere.yaml\" is not a file"));

    const fs::path none = dir.path / "none.yaml";
    std::ofstream(none) << "grid: {seed: [1]}\n";
    CHECK_THAT(sweep_errors(none), Contains("missing required key \"base\""));

    CHECK_THAT(sweep_errors(dir.path / "absent.yaml"), Contains("cannot open the file"));

    const fs::path slash = dir.sweep("slash", "name: a/b\ngrid: {seed: [1]}\n");
    CHECK_THAT(sweep_errors(slash), Contains(slash.string() + ":2:7: name: \"a/b\" cannot name the output folder"));
}

TEST_CASE("top-level grid and blocks cannot be combined, and blocks must not be empty", "[planning][spec][errors]") {
    SweepScratch dir("blocks-errors");
    const fs::path both = dir.sweep("both", "grid: {seed: [1]}\nblocks:\n  - grid: {seed: [2]}\n");
    CHECK_THAT(sweep_errors(both),
               Contains(both.string() + ":2:7: grid: \"grid\" at the top level cannot be combined with \"blocks\""));
    const fs::path empty = dir.sweep("empty", "blocks: []\n");
    CHECK_THAT(sweep_errors(empty), Contains("blocks: the list of blocks is empty"));
    const fs::path unknown = dir.sweep("unknown", "blocks:\n  - grud: {seed: [2]}\n");
    CHECK_THAT(sweep_errors(unknown),
               Contains(unknown.string() + ":3:5: blocks[0].grud: unknown key \"grud\" (did you mean \"grid\"?)"));
}
