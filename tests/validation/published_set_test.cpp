// published.csv as the suite reads it: the real file's quoted fields, ranges and tolerances, tolerance
// arithmetic, and every malformed row reported with its line.
#include "sim/validation/published_set.hpp"
#include "sim/input/diagnostics.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace clustersim;

namespace {
std::string source_path(const std::string& relative) {
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/" + relative;
}
std::string fixture(const std::string& name) {
    return source_path("tests/validation/fixtures/" + name);
}

PublishedValue value(const std::string& text) {
    return parse_published_value(text);
}
Tolerance tolerance(const std::string& text) {
    return parse_tolerance(text).value();
}

std::string load_error(const std::string& file) {
    try {
        read_published_set(file);
    } catch (const InputError& e) {
        return e.what();
    }
    return "no error";
}
}  // namespace

TEST_CASE("the real published set reads as 28 rows with quoted fields, ranges and tolerances", "[validation]") {
    const PublishedSet set = read_published_set(source_path("../shared/validation/published.csv"));
    REQUIRE(set.rows.size() == 28);
    CHECK(set.rows.front().id == "T1a");
    CHECK(set.rows.back().id == "X2a");

    const PublishedRow& t1a = *set.find("T1a");
    CHECK(t1a.kind == "training");
    CHECK(t1a.value.low == 1543);
    CHECK_FALSE(t1a.value.is_range());
    CHECK(t1a.unit == "tokens/s/GPU");
    CHECK(t1a.tolerance.kind == Tolerance::Kind::relative);
    CHECK(t1a.tolerance.amount == Approx(0.10));
    // A quoted field keeps its commas and reads to its closing quote.
    CHECK_THAT(t1a.configuration, Catch::StartsWith("DeepSeek-V3 671B (61 layers; hidden 7168;") &&
                                      Catch::EndsWith("20 of 132 SMs for communication"));
    CHECK_THAT(t1a.source, Catch::StartsWith("DeepSeek-V3 technical report"));

    const PublishedRow& n1a = *set.find("N1a");
    CHECK(n1a.configuration == "EP8 within one H800 node over NVLink; 4096 tokens, hidden 7168, top-8, FP8 dispatch");
    CHECK(n1a.unit == "GB/s (logical)");
    CHECK(set.find("N1c")->unit == "GB/s (logical RDMA)");

    const PublishedRow& t2c = *set.find("T2c");
    CHECK(t2c.value.is_range());
    CHECK(t2c.value.low == 3.1);
    CHECK(t2c.value.high == 4.6);
    CHECK(t2c.tolerance.amount == Approx(0.15));
    CHECK(set.find("S1c")->value.low == 20);
    CHECK(set.find("S1c")->value.high == 22);

    const PublishedRow& t2b = *set.find("T2b");
    CHECK(t2b.tolerance.kind == Tolerance::Kind::points);
    CHECK(t2b.tolerance.amount == 5);
    CHECK(t2b.unit == "%");

    const PublishedRow& x1a = *set.find("X1a");
    CHECK(x1a.kind == "exact");
    CHECK(x1a.tolerance.kind == Tolerance::Kind::exact);
    CHECK_FALSE(x1a.value.numeric());
    CHECK(x1a.value.text == "PP4: 2; PP8: 6; PP16: 14");
    CHECK(x1a.line == 26);
    CHECK(set.find("N9") == nullptr);
}

TEST_CASE("published values are numbers, ranges or text", "[validation]") {
    CHECK(value("19.93").low == 19.93);
    CHECK(value(" 73700 ").high == 73700);
    CHECK(value("-2").low == -2);
    const PublishedValue range = value("5.8 - 6.5");
    CHECK(range.low == 5.8);
    CHECK(range.high == 6.5);
    CHECK_FALSE(value("6.5-5.8").numeric());  // a range must run upwards
    CHECK_FALSE(value("(PP-1)(F+B); (PP-1)(F+B-2W)").numeric());
    CHECK_FALSE(value("12 ms").numeric());
    CHECK_FALSE(value("").numeric());
}

TEST_CASE("tolerances are a percentage, points or exact, and nothing else", "[validation]") {
    CHECK(tolerance("10%").kind == Tolerance::Kind::relative);
    CHECK(tolerance("2.5%").amount == Approx(0.025));
    CHECK(tolerance("5 points").kind == Tolerance::Kind::points);
    CHECK(tolerance("1 point").amount == 1);
    CHECK(tolerance("exact").kind == Tolerance::Kind::exact);
    for (const char* bad : {"10", "0%", "100%", "-5%", "five%", "5 pts", "points", "Exact", ""}) {
        INFO(bad);
        CHECK_FALSE(parse_tolerance(bad).has_value());
    }
}

TEST_CASE("a percentage tolerance accepts exactly that fraction either side", "[validation]") {
    const PublishedValue v = value("153");
    const Tolerance t = tolerance("10%");
    CHECK(within_tolerance(168.29, v, t));
    CHECK_FALSE(within_tolerance(168.31, v, t));
    CHECK(within_tolerance(137.71, v, t));
    CHECK_FALSE(within_tolerance(137.69, v, t));
    CHECK(relative_error(180.5, v) == Approx(27.5 / 153));
    CHECK(relative_error(137.7, v) == Approx(-0.1));
}

TEST_CASE("a tolerance in points is an absolute distance in the row's unit", "[validation]") {
    const PublishedValue v = value("96.3");
    const Tolerance t = tolerance("5 points");
    CHECK(within_tolerance(91.31, v, t));
    CHECK_FALSE(within_tolerance(91.29, v, t));
    CHECK(within_tolerance(100, v, t));  // capped by nothing but the points: 101.3 is still inside
    CHECK_FALSE(within_tolerance(101.31, v, t));
}

TEST_CASE("a published range is widened by the tolerance and errors count from its nearer end", "[validation]") {
    const PublishedValue v = value("3.1-4.6");
    const Tolerance t = tolerance("15%");
    const AcceptedInterval a = accepted_interval(v, t);
    CHECK(a.low == Approx(3.1 * 0.85));
    CHECK(a.high == Approx(4.6 * 1.15));
    CHECK(within_tolerance(2.64, v, t));
    CHECK_FALSE(within_tolerance(2.63, v, t));
    CHECK(within_tolerance(5.28, v, t));
    CHECK_FALSE(within_tolerance(5.30, v, t));
    CHECK(relative_error(4.0, v) == 0);
    CHECK(relative_error(3.1, v) == 0);
    CHECK(relative_error(5.06, v) == Approx(0.1));
    CHECK(relative_error(2.79, v) == Approx(-0.1));
    // Points widen a range by the same distance at both ends.
    const AcceptedInterval p = accepted_interval(value("20-22"), tolerance("2 points"));
    CHECK(p.low == 18);
    CHECK(p.high == 24);
}

TEST_CASE("an exact tolerance accepts the value only, up to floating-point rounding", "[validation]") {
    const PublishedValue v = value("14");
    const Tolerance t = tolerance("exact");
    CHECK(within_tolerance(14, v, t));
    CHECK(within_tolerance(14 + 1e-12, v, t));
    CHECK_FALSE(within_tolerance(14.001, v, t));
    CHECK_FALSE(within_tolerance(13.999, v, t));
}

TEST_CASE("every malformed row of a published set is reported with its line", "[validation]") {
    const std::string error = load_error(fixture("malformed.csv"));
    CHECK_THAT(error, Catch::Contains("4 problems"));
    CHECK_THAT(error, Catch::Contains("malformed.csv:2:0: tolerance: expected \"N%\", \"N points\" or \"exact\"; "
                                      "found \"10\""));
    CHECK_THAT(error, Catch::Contains("malformed.csv:3:0: value: expected a number or a range LOW-HIGH for a 10% "
                                      "tolerance; found \"fast\""));
    CHECK_THAT(error, Catch::Contains("malformed.csv:4:0: id: row id \"A1\" appears twice"));
    CHECK_THAT(error, Catch::Contains("malformed.csv:5:0: tolerance: a tolerance in points needs a figure in %"));
}

TEST_CASE("a row with missing columns and a missing file are input errors", "[validation]") {
    CHECK_THAT(load_error(fixture("wrong_columns.csv")),
               Catch::Contains("wrong_columns.csv:2:0") && Catch::Contains("Too few columns"));
    CHECK_THAT(load_error(fixture("no_such_file.csv")), Catch::Contains("no_such_file.csv"));
}
