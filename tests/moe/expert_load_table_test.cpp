// Tests of reading expert load tables: the format, and every error naming its file and line.
#include "sim/moe/expert_load_table.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace clustersim;

namespace {
std::string fixture(const std::string& name) {
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/tests/moe/fixtures/" + name;
}
}  // namespace

TEST_CASE("a load table reads into loads per layer and expert", "[moe][csv]") {
    const ExpertLoadMatrix loads = read_expert_load_table(fixture("load_table_ok.csv"));
    REQUIRE(loads.size() == 2);
    CHECK(loads[0] == std::vector<double>{90, 132, 40});
    CHECK(loads[1] == std::vector<double>{20, 107, 104.5});
}

TEST_CASE("load table errors name the file and line of every bad row", "[moe][csv]") {
    const std::string path = fixture("load_table_bad_value.csv");
    CHECK_THROWS_WITH(
        read_expert_load_table(path),
        Catch::Contains(path + ":3: column load: expected a finite non-negative number; found \"lots\"") &&
            Catch::Contains(path + ":4: column load: expected a finite non-negative number; found \"-4\""));
}

TEST_CASE("load table rows with the wrong number of columns are named by line", "[moe][csv]") {
    const std::string path = fixture("load_table_bad_columns.csv");
    CHECK_THROWS_WITH(read_expert_load_table(path),
                      Catch::Contains(path + ":3: too few columns") && Catch::Contains(path + ":4: too many columns"));
}

TEST_CASE("a load given twice names both lines", "[moe][csv]") {
    const std::string path = fixture("load_table_duplicate.csv");
    CHECK_THROWS_WITH(read_expert_load_table(path),
                      Catch::Contains(path + ":5: layer 0 expert 1 already has a load (line 3)"));
}

TEST_CASE("a load table must cover every expert of every layer", "[moe][csv]") {
    const std::string path = fixture("load_table_missing.csv");
    CHECK_THROWS_WITH(read_expert_load_table(path), Catch::Contains(path + ": layer 1 has no row for expert 1"));
}

TEST_CASE("a load table needs its header, some rows, and to exist", "[moe][csv]") {
    CHECK_THROWS_WITH(read_expert_load_table(fixture("load_table_bad_header.csv")),
                      Catch::Contains("load_table_bad_header.csv:1: expected the header \"layer,expert,load\""));
    CHECK_THROWS_WITH(read_expert_load_table(fixture("load_table_empty.csv")),
                      Catch::Contains("the table has no rows"));
    CHECK_THROWS_WITH(read_expert_load_table(fixture("no_such_table.csv")),
                      Catch::Contains("no_such_table.csv: cannot open the file"));
}
