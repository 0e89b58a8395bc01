// Reading query and calibration CSVs with fast-cpp-csv-parser, every malformed row reported by line.
#include "kernels/calibration_table.hpp"

#include "kernels/operator_work.hpp"
#include "sim/input/diagnostics.hpp"

#include <libfccp/csv.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <stdexcept>
#include <tuple>

namespace clustersim {
namespace {

using CsvPolicy = io::single_and_empty_line_comment<'#'>;
template <unsigned N>
using Reader = io::CSVReader<N, io::trim_chars<' ', '\t'>, io::no_quote_escape<','>, io::throw_on_overflow, CsvPolicy>;

// Parses an optional non-negative integer field; "" is 0. Returns an error message or "".
std::string parse_count(const std::string& text, const char* name, std::int64_t& out) {
    out = 0;
    if (text.empty()) return {};
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, out);
    if (ec != std::errc() || p != end)
        return fmt::format("column {}: expected a non-negative integer or nothing; found \"{}\"", name, text);
    if (out < 0) return fmt::format("column {}: expected a non-negative integer; found {}", name, out);
    return {};
}

std::string parse_real(const std::string& text, const char* name, double& out) {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, out);
    if (text.empty() || ec != std::errc() || p != end)
        return fmt::format("column {}: expected a number; found \"{}\"", name, text);
    if (!(out > 0)) return fmt::format("column {}: expected a positive time; found {}", name, text);
    return {};
}

// Validates op and dtype; returns an error message or "".
std::string check_op(const KernelShape& s) {
    const auto& ops = known_ops();
    if (std::find(ops.begin(), ops.end(), s.op) == ops.end()) {
        std::string list;
        for (const auto& o : ops) list += (list.empty() ? "" : ", ") + o;
        const std::string guess = closest_match(s.op, ops);
        return fmt::format("column op: unknown operator \"{}\"; expected one of {}{}", s.op, list,
                           guess.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", guess));
    }
    if (!op_accepts_dtype(s.op, s.dtype))
        return fmt::format("column dtype: \"{}\" is not a dtype of {}; expected {}", s.dtype, s.op, accepted_dtypes(s.op));
    return {};
}

// Checks what the fields mean together once each is present; returns an error message or "".
std::string check_fields(const KernelShape& s) {
    // Grouped-query attention: each key/value head serves heads / kv_heads query heads.
    const bool gqa = s.op == "attn_prefill" || s.op == "attn_prefill_bwd" || s.op == "attn_decode";
    if (gqa && s.heads % s.kv_heads != 0)
        return fmt::format("column kv_heads: {} key/value heads must divide the {} query heads (column heads)",
                           s.kv_heads, s.heads);
    return {};
}

// Reads the '# key: value' lines at the top of a file.
std::map<std::string, std::string> read_comment_header(const std::string& path) {
    std::map<std::string, std::string> header;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line[0] != '#') break;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto trim = [](std::string s) {
            const auto b = s.find_first_not_of(" \t\r");
            const auto e = s.find_last_not_of(" \t\r");
            return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
        };
        const std::string key = trim(line.substr(1, colon - 1));
        if (!key.empty() && key.find(' ') == std::string::npos) header[key] = trim(line.substr(colon + 1));
    }
    return header;
}

// Reads rows of N columns: the 13 shape columns, then N-13 extra (number) columns into `extra`.
template <unsigned N, typename Emit, typename... Names>
void read_rows(const std::string& path, Diagnostics& diagnostics, Emit emit, Names... names) {
    std::ifstream probe(path);
    if (!probe) {
        diagnostics.error({path, 0, 0}, "", "cannot open the file (does it exist, and is it readable?)");
        return;
    }
    probe.close();
    try {
        Reader<N> in(path);
        try {
            in.read_header(io::ignore_no_column, names...);
        } catch (const io::error::base& e) {
            diagnostics.error({path, static_cast<int>(in.get_file_line()), 0}, "",
                              fmt::format("expected the CSV header \"{}\" ({})",
                                          N == 13 ? kShapeColumns : kCalibrationColumns, e.what()));
            return;
        }
        while (true) {
            std::array<std::string, N> f;
            bool got = false;
            try {
                got = std::apply([&](auto&... cols) { return in.read_row(cols...); }, f);
            } catch (const io::error::base& e) {
                diagnostics.error({path, static_cast<int>(in.get_file_line()), 0}, "",
                                  fmt::format("malformed row: {}", e.what()));
                continue;
            }
            if (!got) break;
            const int line = static_cast<int>(in.get_file_line());
            KernelShape s;
            s.op = f[0];
            s.dtype = f[1];
            std::string problem = check_op(s);
            for (int i = 0; i < KernelShape::kNumericFields && problem.empty(); ++i)
                problem = parse_count(f[2 + i], KernelShape::numeric_field_name(i), s.numeric(i));
            if (problem.empty()) {
                try {
                    (void)operator_work(s);  // every field the op needs is present
                } catch (const std::invalid_argument& e) {
                    problem = e.what();
                }
            }
            if (problem.empty()) problem = check_fields(s);
            if (problem.empty()) problem = emit(s, f, line);
            if (!problem.empty()) diagnostics.error({path, line, 0}, "", problem);
        }
    } catch (const io::error::base& e) {
        diagnostics.error({path, 0, 0}, "", e.what());
    }
}

}  // namespace

std::string to_string(Provenance p) {
    switch (p) {
        case Provenance::measured: return "measured";
        case Provenance::interpolated: return "interpolated";
        case Provenance::extrapolated: return "extrapolated";
        case Provenance::derived: return "derived";
        case Provenance::published: return "published";
        case Provenance::roofline: return "roofline";
    }
    return "unknown";
}

Provenance parse_provenance(const std::string& word) {
    for (Provenance p : {Provenance::measured, Provenance::interpolated, Provenance::extrapolated, Provenance::derived,
                         Provenance::published, Provenance::roofline})
        if (to_string(p) == word) return p;
    throw std::invalid_argument("unknown provenance \"" + word +
                                "\"; expected measured, interpolated, extrapolated, derived, published or roofline");
}

const char* KernelShape::numeric_field_name(int i) {
    static constexpr const char* names[kNumericFields] = {"m",        "n",        "k",   "groups",  "batch", "heads",
                                                          "kv_heads", "head_dim", "seq", "context", "bytes"};
    return names[i];
}

namespace {
// The numeric fields in CSV column order (numeric_field_name's order).
constexpr std::int64_t KernelShape::* kNumeric[KernelShape::kNumericFields] = {
    &KernelShape::m,     &KernelShape::n,        &KernelShape::k,        &KernelShape::groups,
    &KernelShape::batch, &KernelShape::heads,    &KernelShape::kv_heads, &KernelShape::head_dim,
    &KernelShape::seq,   &KernelShape::context,  &KernelShape::bytes};
}  // namespace

std::int64_t& KernelShape::numeric(int i) {
    if (i < 0 || i >= kNumericFields) throw std::out_of_range("KernelShape field index");
    return this->*kNumeric[i];
}

std::int64_t KernelShape::numeric(int i) const {
    if (i < 0 || i >= kNumericFields) throw std::out_of_range("KernelShape field index");
    return this->*kNumeric[i];
}

bool KernelShape::same_shape(const KernelShape& o) const {
    if (op != o.op || dtype != o.dtype || kv_dtype != o.kv_dtype) return false;
    for (int i = 0; i < kNumericFields; ++i)
        if (numeric(i) != o.numeric(i)) return false;
    return true;
}

const std::vector<std::string>& known_ops() {
    static const std::vector<std::string> ops = {
        "gemm",         "grouped_gemm", "grouped_gemm_skewed", "attn_prefill", "attn_prefill_bwd",
        "attn_decode",  "copy",         "rmsnorm",             "silu_mul",     "rope",
        "residual_add", "fp8_quant",    "moe_gate",            "moe_topk",     "moe_permute",
        "moe_unpermute", "mla_decode"};
    return ops;
}

std::string accepted_dtypes(const std::string& op) {
    std::vector<std::string> names;
    for (const char* d : {"bf16", "fp8", "fp32"})
        if (op_accepts_dtype(op, d)) names.emplace_back(d);
    return fmt::format("{}", fmt::join(names, " or "));
}

bool op_accepts_dtype(const std::string& op, const std::string& dtype) {
    if (op == "copy") return dtype.empty() || dtype == "bf16" || dtype == "fp8";
    if (op == "moe_topk") return dtype == "fp32" || dtype == "bf16";
    if (op == "fp8_quant") return dtype == "fp8";
    if (op == "mla_decode") return dtype == "bf16";  // FlashMLA's dense decoding reads a BF16 cache
    return dtype == "bf16" || dtype == "fp8";
}

CalibrationTable read_calibration_table(const std::string& path) {
    Diagnostics diagnostics;
    CalibrationTable table;
    table.file = path;
    table.header = read_comment_header(path);
    read_rows<17>(
        path, diagnostics,
        [&](const KernelShape& s, const std::array<std::string, 17>& f, int line) -> std::string {
            CalibrationRow row;
            row.shape = s;
            row.line = line;
            std::string problem = parse_real(f[13], "time_us_p50", row.time_us_p50);
            if (problem.empty()) problem = parse_real(f[14], "time_us_p10", row.time_us_p10);
            if (problem.empty()) problem = parse_real(f[15], "time_us_p90", row.time_us_p90);
            if (problem.empty()) problem = parse_count(f[16], "reps", row.reps);
            if (problem.empty() && !(row.time_us_p10 <= row.time_us_p50 && row.time_us_p50 <= row.time_us_p90))
                problem = "expected time_us_p10 <= time_us_p50 <= time_us_p90";
            if (problem.empty()) table.rows.push_back(row);
            return problem;
        },
        "op", "dtype", "m", "n", "k", "groups", "batch", "heads", "kv_heads", "head_dim", "seq", "context", "bytes",
        "time_us_p50", "time_us_p10", "time_us_p90", "reps");
    const auto it = table.header.find("provenance");
    if (it == table.header.end()) {
        diagnostics.error({path, 1, 0}, "provenance",
                          "missing the '# provenance: measured|derived|published' header line");
    } else if (it->second != "measured" && it->second != "derived" && it->second != "published") {
        diagnostics.error({path, 1, 0}, "provenance",
                          "expected measured, derived or published; found \"" + it->second + "\"");
    } else {
        table.provenance = parse_provenance(it->second);
        if (table.provenance == Provenance::published && !table.header.count("source"))
            diagnostics.error({path, 1, 0}, "source", "a published table needs a '# source: ...' line naming it");
    }
    diagnostics.throw_if_any();
    return table;
}

std::vector<KernelShape> read_kernel_shapes(const std::string& path, std::vector<int>* lines) {
    Diagnostics diagnostics;
    std::vector<KernelShape> shapes;
    read_rows<13>(
        path, diagnostics,
        [&](const KernelShape& s, const std::array<std::string, 13>&, int line) -> std::string {
            shapes.push_back(s);
            if (lines) lines->push_back(line);
            return {};
        },
        "op", "dtype", "m", "n", "k", "groups", "batch", "heads", "kv_heads", "head_dim", "seq", "context", "bytes");
    diagnostics.throw_if_any();
    return shapes;
}

std::string shape_to_csv(const KernelShape& s) {
    std::string out = s.op + "," + s.dtype;
    for (int i = 0; i < KernelShape::kNumericFields; ++i) {
        out += ",";
        if (s.numeric(i) != 0) out += std::to_string(s.numeric(i));
    }
    return out;
}

}  // namespace clustersim
