// Tests of reading query and calibration CSVs: headers, provenance, and errors that name the line.
#include "kernels/calibration_table.hpp"
#include "sim/input/diagnostics.hpp"
#include "tests/kernels/test_paths.hpp"

#include <catch2/catch.hpp>

namespace clustersim {
namespace {

// The diagnostics of the InputError that reading `path` throws.
template <typename Read>
std::vector<Diagnostic> errors_of(Read read) {
    try {
        read();
    } catch (const InputError& e) {
        return e.diagnostics();
    }
    return {};
}

}  // namespace

TEST_CASE("a calibration table keeps its provenance header and rows", "[kernels]") {
    const CalibrationTable t = read_calibration_table(test::kernel_fixtures() + "/calibration/synth/gemm.csv");
    CHECK(t.provenance == Provenance::measured);
    CHECK(t.header.at("gpu") == "synth (synthetic)");
    REQUIRE(t.rows.size() == 7);
    CHECK(t.rows[0].shape.op == "gemm");
    CHECK(t.rows[0].shape.m == 1);
    CHECK(t.rows[0].shape.groups == 0);
    CHECK(t.rows[0].time_us_p50 == 25.0);
    CHECK(t.rows[0].line == 6);
}

TEST_CASE("a non-integer field is an error naming the file and line", "[kernels]") {
    const std::string file = test::kernel_fixtures() + "/bad/bad_field.csv";
    const auto errors = errors_of([&] { read_calibration_table(file); });
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where.file == file);
    CHECK(errors[0].where.line == 5);
    CHECK(errors[0].message.find("column m") != std::string::npos);
    CHECK(format(errors[0]).find("bad_field.csv:5") != std::string::npos);
}

TEST_CASE("a row with too few columns is an error naming its line", "[kernels]") {
    const auto errors = errors_of([&] { read_kernel_shapes(test::kernel_fixtures() + "/bad/short_row.csv"); });
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where.line == 4);
}

TEST_CASE("an unknown operator is an error that suggests the closest", "[kernels]") {
    const auto errors = errors_of([&] { read_kernel_shapes(test::kernel_fixtures() + "/bad/unknown_op.csv"); });
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where.line == 4);
    CHECK(errors[0].message.find("did you mean \"gemm\"") != std::string::npos);
}

TEST_CASE("a row missing a field its operator needs is an error naming the field", "[kernels]") {
    const auto errors = errors_of([&] { read_kernel_shapes(test::kernel_fixtures() + "/bad/missing_field.csv"); });
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where.line == 3);
    CHECK(errors[0].message.find("context") != std::string::npos);
}

TEST_CASE("a dtype its operator does not take is an error naming the dtypes it takes", "[kernels]") {
    const auto errors = errors_of([&] { read_kernel_shapes(test::kernel_fixtures() + "/bad/wrong_dtype.csv"); });
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].where.line == 4);
    CHECK(errors[0].message.find("\"fp8\" is not a dtype of mla_decode; expected bf16") != std::string::npos);
    CHECK(errors[0].message.find("bf16 or") == std::string::npos);  // FlashMLA's dense decoding is BF16 only
    CHECK(errors[1].where.line == 5);
    CHECK(errors[1].message.find("expected bf16 or fp32") != std::string::npos);
}

TEST_CASE("an attention row whose kv_heads do not divide its heads is an error naming both columns", "[kernels]") {
    const auto errors = errors_of([&] { read_kernel_shapes(test::kernel_fixtures() + "/bad/kv_heads.csv"); });
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].where.line == 4);
    CHECK(errors[0].message == "column kv_heads: 7 key/value heads must divide the 64 query heads (column heads)");
    CHECK(errors[1].where.line == 5);
    CHECK(errors[1].message == "column kv_heads: 64 key/value heads must divide the 32 query heads (column heads)");
}

TEST_CASE("read_kernel_shapes gives each shape's line in the file", "[kernels]") {
    std::vector<int> lines;
    const auto shapes = read_kernel_shapes(test::kernel_fixtures() + "/too_large.csv", &lines);
    REQUIRE(shapes.size() == 3);
    CHECK(lines == std::vector<int>{3, 4, 5});
}

TEST_CASE("a table without a provenance line is rejected", "[kernels]") {
    const auto errors = errors_of([&] { read_calibration_table(test::kernel_fixtures() + "/bad/short_row.csv"); });
    REQUIRE_FALSE(errors.empty());
}

TEST_CASE("a missing file is an error naming it", "[kernels]") {
    const auto errors = errors_of([&] { read_kernel_shapes("/nonexistent/shapes.csv"); });
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where.file == "/nonexistent/shapes.csv");
}

TEST_CASE("shapes write back as the query columns with empty unused fields", "[kernels]") {
    KernelShape s;
    s.op = "attn_decode";
    s.dtype = "bf16";
    s.batch = 8;
    s.heads = 32;
    s.kv_heads = 8;
    s.head_dim = 128;
    s.context = 4096;
    CHECK(shape_to_csv(s) == "attn_decode,bf16,,,,,8,32,8,128,,4096,");
}

}  // namespace clustersim
