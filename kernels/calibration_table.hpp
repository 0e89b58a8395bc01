// Operator shapes (the query columns) and calibration tables: CSV rows of measured kernel times with
// a provenance header, read with fast-cpp-csv-parser. The format is documented in kernels/README.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clustersim {

// Where a time comes from; ordered from most to least direct for a table's rows.
enum class Provenance { measured, interpolated, extrapolated, derived, published, roofline };
std::string to_string(Provenance p);
// Throws std::invalid_argument naming the accepted words.
Provenance parse_provenance(const std::string& word);

// One operator instance. Integer fields are 0 where the CSV field was empty (unused by the op).
// Field meanings per op are in kernels/README.md; e.g. gemm: m tokens, n output features, k input
// features (y = x W^T); attn_decode: batch requests, each `seq` query tokens (empty: one) over `context`
// cached tokens; mla_decode: the same over shared MLA latents of head_dim, V their first n columns.
struct KernelShape {
    std::string op;
    std::string dtype;
    std::int64_t m = 0, n = 0, k = 0, groups = 0, batch = 0, heads = 0, kv_heads = 0, head_dim = 0, seq = 0,
                 context = 0, bytes = 0;
    // Decode attention: the KV cache's element type where it differs from dtype (an FP8 cache read by a
    // BF16 kernel); empty otherwise. Not a table column: the tables' rows read a cache of their dtype.
    std::string kv_dtype;

    // The numeric fields in CSV column order, for generic comparisons and distances.
    static constexpr int kNumericFields = 11;
    static const char* numeric_field_name(int i);
    std::int64_t numeric(int i) const;
    std::int64_t& numeric(int i);
    bool same_shape(const KernelShape& o) const;  // op, dtype and every numeric field equal
};

// The operators the cost model and the microbenchmarks know, with the dtypes each accepts.
const std::vector<std::string>& known_ops();
bool op_accepts_dtype(const std::string& op, const std::string& dtype);
std::string accepted_dtypes(const std::string& op);  // e.g. "bf16 or fp8", for messages

// One measured (or published/derived) row of a calibration table.
struct CalibrationRow {
    KernelShape shape;
    double time_us_p50 = 0;
    double time_us_p10 = 0;
    double time_us_p90 = 0;
    std::int64_t reps = 0;
    int line = 0;  // line in the CSV file, for messages
};

struct CalibrationTable {
    std::string file;
    // The '# key: value' header lines (gpu, driver, cuda, clocks, date, commit, method, provenance, source).
    std::map<std::string, std::string> header;
    Provenance provenance = Provenance::measured;  // from '# provenance:'; measured, derived or published
    std::vector<CalibrationRow> rows;
};

// The query CSV columns, in order; the calibration CSV adds time_us_p50,time_us_p10,time_us_p90,reps.
inline constexpr const char* kShapeColumns = "op,dtype,m,n,k,groups,batch,heads,kv_heads,head_dim,seq,context,bytes";
inline constexpr const char* kCalibrationColumns =
    "op,dtype,m,n,k,groups,batch,heads,kv_heads,head_dim,seq,context,bytes,time_us_p50,time_us_p10,time_us_p90,reps";

// Both readers throw InputError whose diagnostics name the file and line of every malformed row
// (wrong column count, non-integer or negative field, unknown op or dtype, a field the op needs left
// empty, kv_heads not dividing heads, missing provenance). read_kernel_shapes appends each shape's
// line in the file to `lines` when given.
CalibrationTable read_calibration_table(const std::string& path);
std::vector<KernelShape> read_kernel_shapes(const std::string& path, std::vector<int>* lines = nullptr);

// Writes a shape's 13 fields as CSV (empty for 0), without a newline.
std::string shape_to_csv(const KernelShape& s);

}  // namespace clustersim
