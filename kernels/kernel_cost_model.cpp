// Predicting operator times from calibration tables: exact, interpolated, extrapolated, derived or roofline.
#include "kernels/kernel_cost_model.hpp"

#include "kernels/operator_work.hpp"
#include "sim/input/diagnostics.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

// The field a table's grid is densest along: tokens for GEMMs and the memory-bound ops, sequence
// length for prefill (and its backward), cached context for decode, size for copies. Interpolation runs along it first.
int primary_axis(const std::string& op) {
    if (op == "attn_prefill" || op == "attn_prefill_bwd") return 8;  // seq
    if (op == "attn_decode" || op == "mla_decode") return 9;  // context
    if (op == "copy") return 10;         // bytes
    return 0;                            // m
}

// How direct a table's provenance is; lower is better when several tables cover an op.
int rank_of(Provenance p) {
    switch (p) {
        case Provenance::measured:
            return 0;
        case Provenance::published:
            return 1;
        case Provenance::derived:
            return 2;
        default:
            return 3;
    }
}

// A copy moves bytes whatever their type, so its dtype is not part of its shape.
bool is_decode_attention(const std::string& op) {
    return op == "attn_decode" || op == "mla_decode";
}

// Attention ops whose `n` is an optional value head dim (mla_decode's is required: its latent's V part).
bool has_optional_value_head(const std::string& op) {
    return op == "attn_prefill" || op == "attn_prefill_bwd" || op == "attn_decode";
}

// One spelling per shape: a value head as wide as the key head is the default (n empty), one query
// token per decode request too (seq empty), so a row and a query that mean the same shape match.
KernelShape normalized(KernelShape s) {
    if (s.op == "copy") s.dtype.clear();
    if (has_optional_value_head(s.op) && s.n == s.head_dim) s.n = 0;
    if (is_decode_attention(s.op) && s.seq == 1) s.seq = 0;
    if (s.kv_dtype == s.dtype || !is_decode_attention(s.op)) s.kv_dtype.clear();
    return s;
}

// A field's value for the distance between shapes: an empty field that has a default meaning takes it
// (attention's value head dim is head_dim; a decode request has one query token), so a query with
// speculative tokens or a narrower value head borrows from the lines measured without them.
std::int64_t distance_field(const KernelShape& s, int i) {
    const std::int64_t v = s.numeric(i);
    if (v != 0) return v;
    if (i == 1 && has_optional_value_head(s.op)) return s.head_dim;
    if (i == 8 && is_decode_attention(s.op)) return 1;
    return 0;
}

double roof_us(const KernelShape& s, const GpuSpec& spec) {
    return roofline_time(s, spec, false).us();
}

KernelShape with_axis(KernelShape s, int axis, std::int64_t value) {
    s.numeric(axis) = value;
    return s;
}

using LinePoint = KernelGridLine::Point;

struct LineResult {
    double time_us;
    bool inside;
};

// Time on one line of the grid (all fields fixed but the primary axis) at coordinate x. Between
// points: linear in log(time) against log(x), which is monotone between monotone points and stays
// above a roofline that is convex in log-log. Above the last point: the last point's utilization
// (roofline time over measured time) carried forward, i.e. the kernel keeps its efficiency. Below
// the first point: the log-log slope of the first two points, clamped to [0, 1], so small kernels
// approach a latency floor instead of shrinking with the work. A line of one point gives no slope:
// its utilization is carried both ways (a floor at a large kernel's time would price a small one
// as the large one).
LineResult line_time(const std::vector<LinePoint>& pts, std::int64_t x, const KernelShape& line_shape, int axis,
                     const GpuSpec& spec) {
    const double lx = std::log(static_cast<double>(x));
    for (std::size_t i = 0; i < pts.size(); ++i) {
        if (pts[i].x == x) return {pts[i].time_us, true};
        if (i + 1 < pts.size() && pts[i].x < x && x < pts[i + 1].x) {
            const double l0 = std::log(static_cast<double>(pts[i].x)), l1 = std::log(static_cast<double>(pts[i + 1].x));
            const double f = (lx - l0) / (l1 - l0);
            return {std::exp((1.0 - f) * std::log(pts[i].time_us) + f * std::log(pts[i + 1].time_us)), true};
        }
    }
    if (x > pts.back().x || pts.size() == 1) {
        const LinePoint& e = pts.back();
        const double u = std::min(1.0, roof_us(with_axis(line_shape, axis, e.x), spec) / e.time_us);
        return {roof_us(with_axis(line_shape, axis, x), spec) / u, false};
    }
    const LinePoint& e = pts.front();
    const double slope = std::clamp(
        std::log(pts[1].time_us / e.time_us) / std::log(static_cast<double>(pts[1].x) / static_cast<double>(e.x)), 0.0,
        1.0);
    return {e.time_us * std::exp(slope * (lx - std::log(static_cast<double>(e.x)))), false};
}

std::vector<std::int64_t> line_key(const KernelShape& s, int axis) {
    std::vector<std::int64_t> key;
    for (int i = 0; i < KernelShape::kNumericFields; ++i) key.push_back(i == axis ? 0 : s.numeric(i));
    return key;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    // Linear interpolation between closest ranks (the common "type 7" definition).
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const auto hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

Time roofline_time(const KernelShape& shape, const GpuSpec& spec, bool with_efficiency) {
    const OperatorWork w = operator_work(shape);
    const double ce = with_efficiency ? spec.compute_efficiency : 1.0;
    const double me = with_efficiency ? spec.memory_efficiency : 1.0;
    const double t_mem = w.bytes.value() / (spec.hbm_bandwidth.value.value() * me);
    const double t_compute =
        w.uses_tensor_cores ? w.flops.value() / (spec.peak_flop_rate(shape.dtype).value() * ce) : 0.0;
    return Time::from_seconds(std::max(t_mem, t_compute));
}

namespace {

// Rows no kernel can have: a matmul faster than the GPU's datasheet peak FLOP rate (memory-bound rows are
// not checked against HBM bandwidth: a small operand may be served from L2), and one shape timed twice
// in a table with different times (which would make the answer depend on the row order).
void check_table_rows(const CalibrationTable& t, const GpuSpec& spec, std::vector<Diagnostic>& problems) {
    auto report = [&](const CalibrationRow& r, std::string message) {
        Diagnostic d;
        d.where.file = t.file;
        d.where.line = r.line;
        d.key_path = "time_us_p50";
        d.message = std::move(message);
        problems.push_back(std::move(d));
    };
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const CalibrationRow& r = t.rows[i];
        const OperatorWork w = operator_work(r.shape);
        if (w.uses_tensor_cores) {
            const double floor_us = w.flops.value() / spec.peak_flop_rate(r.shape.dtype).value() * 1e6;
            if (r.time_us_p50 < floor_us * (1.0 - 1e-9))
                report(r, fmt::format("{:.6g} us is faster than {}'s datasheet peak allows for this {} shape "
                                                "({:.6g} TFLOP at {} takes at least {:.6g} us): check the row",
                                                r.time_us_p50, spec.name, r.shape.op, w.flops.value() * 1e-12,
                                                to_string(spec.peak_flop_rate(r.shape.dtype)), floor_us));
        }
        for (std::size_t j = 0; j < i; ++j) {
            const CalibrationRow& earlier = t.rows[j];
            if (!normalized(earlier.shape).same_shape(normalized(r.shape)) || earlier.time_us_p50 == r.time_us_p50)
                continue;
            report(r, fmt::format("the same shape as line {} with another time ({:.6g} us against {:.6g} "
                                            "us): keep one row per shape (a table's median over its repetitions)",
                                            earlier.line, r.time_us_p50, earlier.time_us_p50));
            break;
        }
    }
}

}  // namespace

GpuProfile load_gpu_profile(GpuSpec spec, const std::string& calibration_dir) {
    GpuProfile profile;
    profile.spec = std::move(spec);
    std::vector<fs::path> files;
    if (fs::is_directory(calibration_dir))
        for (const auto& entry : fs::directory_iterator(calibration_dir))
            if (entry.is_regular_file() && entry.path().extension() == ".csv") files.push_back(entry.path());
    std::sort(files.begin(), files.end());  // deterministic order, whatever the file system returns
    std::vector<Diagnostic> problems;
    for (const auto& f : files) {
        try {
            profile.tables.push_back(read_calibration_table(f.string()));
        } catch (const InputError& e) {
            problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
            continue;
        }
        check_table_rows(profile.tables.back(), profile.spec, problems);
    }
    if (!problems.empty()) throw InputError(problems);
    return profile;
}

namespace {

// A GPU's spec and its own tables, found by name under `root` (no derivation).
GpuProfile load_own_profile(const fs::path& root, const std::string& gpu_name) {
    const fs::path spec_file = root / "gpus" / (gpu_name + ".yaml");
    if (!fs::exists(spec_file)) {
        std::vector<std::string> names;
        if (fs::is_directory(root / "gpus"))
            for (const auto& entry : fs::directory_iterator(root / "gpus"))
                if (entry.path().extension() == ".yaml") names.push_back(entry.path().stem().string());
        std::sort(names.begin(), names.end());
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        const std::string guess = closest_match(gpu_name, names);
        Diagnostics d;
        d.error({spec_file.string(), 0, 0}, "gpu",
                fmt::format("no GPU spec named \"{}\"; expected one of {}{}", gpu_name, list,
                            guess.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", guess)));
        d.throw_if_any();
    }
    return load_gpu_profile(load_gpu_spec(spec_file.string()), (root / "calibration" / gpu_name).string());
}

}  // namespace

GpuProfile load_gpu_profile(const std::string& kernels_dir, const std::string& gpu_name) {
    const fs::path root(kernels_dir);
    GpuProfile profile = load_own_profile(root, gpu_name);
    // Each source's measured and published tables, scaled, beside this GPU's own: for each op the model
    // uses the best provenance it has (measured over published over derived), so an op this GPU has
    // tables for keeps them and the others come from the sources (a shape in two sources' tables keeps
    // the first source's row).
    std::vector<std::string> sources;
    for (const std::string& source : profile.spec.derive_from) {
        GpuProfile derived = derive_profile(load_own_profile(root, source), profile.spec);
        if (derived.tables.empty()) continue;
        for (CalibrationTable& t : derived.tables) profile.tables.push_back(std::move(t));
        sources.push_back(source);
    }
    profile.derived_from = fmt::format("{}", fmt::join(sources, ", "));
    return profile;
}

GpuProfile derive_profile(const GpuProfile& source, const GpuSpec& target) {
    GpuProfile out;
    out.spec = target;
    out.derived_from = source.spec.name;
    for (const CalibrationTable& t : source.tables) {
        if (t.provenance == Provenance::derived) continue;
        CalibrationTable d;
        d.file = t.file;
        d.header = t.header;
        d.header["provenance"] = "derived";
        d.header["derived_from"] = source.spec.name + " (" + to_string(t.provenance) + ", " + t.file + ")";
        d.provenance = Provenance::derived;
        for (const CalibrationRow& r : t.rows) {
            const OperatorWork w = operator_work(r.shape);
            const double t_mem = w.bytes.value() / source.spec.hbm_bandwidth.value.value();
            const double t_compute =
                w.uses_tensor_cores ? w.flops.value() / source.spec.peak_flop_rate(r.shape.dtype).value() : 0.0;
            // Compute-bound rows scale with the tensor-core rate, memory-bound rows with HBM bandwidth.
            const double factor =
                t_compute >= t_mem
                    ? source.spec.peak_flop_rate(r.shape.dtype).value() / target.peak_flop_rate(r.shape.dtype).value()
                    : source.spec.hbm_bandwidth.value.value() / target.hbm_bandwidth.value.value();
            CalibrationRow s = r;
            s.time_us_p50 *= factor;
            s.time_us_p10 *= factor;
            s.time_us_p90 *= factor;
            d.rows.push_back(s);
        }
        out.tables.push_back(std::move(d));
    }
    return out;
}

KernelCostModel::KernelCostModel(GpuProfile profile) : profile_(std::move(profile)) {
    std::map<std::pair<std::string, std::string>, int> best;
    for (const CalibrationTable& t : profile_.tables)
        for (const CalibrationRow& r : t.rows) {
            const auto key = std::make_pair(r.shape.op, normalized(r.shape).dtype);
            const auto it = best.find(key);
            if (it == best.end() || rank_of(t.provenance) < it->second) best[key] = rank_of(t.provenance);
        }
    for (const CalibrationTable& t : profile_.tables)
        for (const CalibrationRow& r : t.rows) {
            const KernelShape shape = normalized(r.shape);
            const auto key = std::make_pair(shape.op, shape.dtype);
            if (rank_of(t.provenance) != best[key]) continue;
            auto& pts = points_[key];
            // A shape measured twice keeps its first row (tables are read in file-name order).
            const bool dup =
                std::any_of(pts.begin(), pts.end(), [&](const Point& p) { return p.shape.same_shape(shape); });
            if (!dup) pts.push_back({shape, r.time_us_p50, t.provenance, t.file});
        }
    for (const auto& [key, pts] : points_) {
        std::vector<const Point*> all;
        for (const Point& p : pts) all.push_back(&p);
        lines_[key] = make_lines(all);
    }
}

KernelCostModel::Lines KernelCostModel::make_lines(const std::vector<const Point*>& pts) {
    Lines lines;
    for (const Point* p : pts) {
        const int axis = primary_axis(p->shape.op);
        KernelGridLine& l = lines[line_key(p->shape, axis)];
        if (l.pts.empty()) {
            l.shape = p->shape;
            l.file = p->file;
        }
        l.pts.push_back({p->shape.numeric(axis), p->time_us, p->file});
    }
    for (auto& [key, l] : lines)
        std::sort(l.pts.begin(), l.pts.end(), [](const LinePoint& a, const LinePoint& b) { return a.x < b.x; });
    return lines;
}

KernelPrediction KernelCostModel::predict(const KernelShape& query) const {
    return predict_impl(normalized(query), nullptr);
}

KernelPrediction KernelCostModel::predict_excluding(const KernelShape& query, const KernelShape& excluded) const {
    const KernelShape e = normalized(excluded);
    return predict_impl(normalized(query), &e);
}

KernelPrediction KernelCostModel::predict_impl(const KernelShape& q, const KernelShape* excluded) const {
    const GpuSpec& spec = profile_.spec;
    KernelPrediction out;
    out.roofline_bound = roofline_time(q, spec, false);  // validates the shape (throws if a field is missing)
    const double roof = out.roofline_bound.us();

    auto roofline_answer = [&] {
        if (const PublishedKernelRates* rates = spec.published_rates(q.op, q.dtype)) {
            // The kernel's own published rates on this GPU (kernels/gpus/<gpu>.yaml, kernel_rates).
            const OperatorWork w = operator_work(q);
            out.time = Time::from_seconds(std::max(w.bytes.value() / rates->memory.value(),
                                                   w.uses_tensor_cores ? w.flops.value() / rates->compute.value() : 0.0));
            out.provenance = rates->derived ? Provenance::derived : Provenance::published;
            out.basis = (rates->derived ? "derived rates: " : "published rates: ") + rates->source;
            return out;
        }
        out.time = roofline_time(q, spec, true);
        out.provenance = Provenance::roofline;
        out.basis = "roofline";
        return out;
    };
    const auto op_key = std::make_pair(q.op, q.dtype);
    const auto found = points_.find(op_key);
    // The tables time kernels reading a cache of their own dtype: a query whose cache is narrower (an FP8
    // cache) is answered by the published rates or the roofline on its own bytes instead.
    if (found == points_.end() || !q.kv_dtype.empty()) return roofline_answer();
    // Leave-one-out rebuilds the lines without the excluded row; a plain query uses the ones built once.
    Lines without;
    const Lines* lines_of_op = &lines_.at(op_key);
    if (excluded) {
        std::vector<const Point*> pts;
        for (const Point& p : found->second)
            if (!p.shape.same_shape(*excluded)) pts.push_back(&p);
        without = make_lines(pts);
        lines_of_op = &without;
    }
    const Lines& lines = *lines_of_op;
    if (lines.empty()) return roofline_answer();

    const Provenance table_prov = found->second.front().table_provenance;
    auto finish = [&](double time_us, bool inside, const std::string& basis) {
        out.time = Time::from_us(std::max(time_us, roof));
        out.provenance = table_prov == Provenance::derived ? Provenance::derived
                         : inside                          ? Provenance::interpolated
                                                           : Provenance::extrapolated;
        out.basis = basis;
        return out;
    };

    // A row of the query's shape answers exactly: it lies on the query's own line at its coordinate.
    const int axis = primary_axis(q.op);
    const auto own = lines.find(line_key(q, axis));
    if (own != lines.end())
        for (const LinePoint& p : own->second.pts)
            if (p.x == q.numeric(axis)) {
                out.time = Time::from_us(p.time_us);
                out.provenance = table_prov;
                out.basis = p.file;
                return out;
            }

    if (q.numeric(axis) <= 0)
        throw std::invalid_argument(
            fmt::format("operator {} needs a positive \"{}\"", q.op, KernelShape::numeric_field_name(axis)));
    const std::int64_t x = q.numeric(axis);
    if (own != lines.end()) {
        const LineResult r = line_time(own->second.pts, x, own->second.shape, axis, spec);
        return finish(r.time_us, r.inside, own->second.file);
    }

    // No line through the query: borrow utilization from the nearest lines (log2 distance over the
    // other fields), each evaluated at the query's primary coordinate, weighted by inverse squared
    // distance in log space (a geometric mean of utilizations).
    struct Candidate {
        double distance;
        const KernelGridLine* line;
    };
    std::vector<Candidate> candidates;
    std::vector<std::pair<double, double>> box(KernelShape::kNumericFields, {1e300, -1e300});
    for (const auto& [key, l] : lines) {
        bool compatible = true;
        double d2 = 0.0;
        for (int i = 0; i < KernelShape::kNumericFields && compatible; ++i) {
            if (i == axis) continue;
            const std::int64_t a = distance_field(q, i), b = distance_field(l.shape, i);
            if ((a == 0) != (b == 0))
                compatible = false;
            else if (a != 0)
                d2 += std::pow(std::log2(static_cast<double>(a) / static_cast<double>(b)), 2);
        }
        if (!compatible) continue;
        candidates.push_back({std::sqrt(d2), &l});
        for (int i = 0; i < KernelShape::kNumericFields; ++i) {
            const double v = static_cast<double>(distance_field(l.shape, i));
            box[i] = {std::min(box[i].first, v), std::max(box[i].second, v)};
        }
    }
    if (candidates.empty()) return roofline_answer();
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.distance < b.distance; });
    constexpr std::size_t kNeighbours = 4;
    if (candidates.size() > kNeighbours) candidates.resize(kNeighbours);

    bool inside = true;
    for (int i = 0; i < KernelShape::kNumericFields; ++i) {
        if (i == axis) continue;
        const double v = static_cast<double>(distance_field(q, i));
        if (v < box[i].first || v > box[i].second) inside = false;
    }
    double weight_sum = 0.0, log_u = 0.0;
    for (const Candidate& c : candidates) {
        const KernelShape at = with_axis(c.line->shape, axis, x);
        const LineResult r = line_time(c.line->pts, x, c.line->shape, axis, spec);
        inside = inside && r.inside;
        const double u = std::min(1.0, roof_us(at, spec) / r.time_us);
        const double w = 1.0 / (c.distance * c.distance);
        weight_sum += w;
        log_u += w * std::log(u);
    }
    const double u = std::exp(log_u / weight_sum);
    return finish(roof / u, inside, candidates.front().line->file);
}

std::vector<LeaveOneOutRow> leave_one_out(const GpuProfile& profile) {
    const KernelCostModel model(profile);
    std::vector<LeaveOneOutRow> rows;
    for (const CalibrationTable& t : profile.tables) {
        if (t.provenance == Provenance::derived) continue;
        for (const CalibrationRow& r : t.rows) {
            LeaveOneOutRow row;
            row.shape = r.shape;
            row.measured_us = r.time_us_p50;
            const KernelPrediction p = model.predict_excluding(r.shape, r.shape);
            row.predicted_us = p.time.us();
            row.provenance = p.provenance;
            row.relative_error = (row.predicted_us - row.measured_us) / row.measured_us;
            rows.push_back(row);
        }
    }
    return rows;
}

std::vector<LeaveOneOutSummary> summarize_leave_one_out(const std::vector<LeaveOneOutRow>& rows) {
    std::map<std::string, std::vector<double>> errors;
    for (const LeaveOneOutRow& r : rows) errors[r.shape.op].push_back(std::abs(r.relative_error));
    std::vector<LeaveOneOutSummary> out;
    for (const auto& [op, e] : errors) out.push_back({op, e.size(), percentile(e, 0.5), percentile(e, 0.9)});
    return out;
}

std::string default_kernels_dir() {
    if (const char* env = std::getenv("CLUSTERSIM_KERNELS_DIR"); env && *env) return env;
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/kernels";
}

void run_kernels_query(const std::string& gpu_name, const std::string& in_csv, const std::string& out_csv,
                       const std::string& kernels_dir) {
    const KernelCostModel model(load_gpu_profile(kernels_dir, gpu_name));
    std::vector<int> lines;
    const std::vector<KernelShape> shapes = read_kernel_shapes(in_csv, &lines);
    std::string text = std::string(kShapeColumns) + ",time_us,provenance\n";
    Diagnostics too_large;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        const KernelShape& s = shapes[i];
        try {
            const KernelPrediction p = model.predict(s);
            text += fmt::format("{},{:.6g},{}\n", shape_to_csv(s), p.time.us(), to_string(p.provenance));
        } catch (const TimeOverflow& e) {
            // The work is the product of the shape's fields, so a large enough row has a time no clock holds.
            std::vector<std::string> fields;
            for (int f = 0; f < KernelShape::kNumericFields; ++f)
                if (s.numeric(f) != 0) fields.emplace_back(KernelShape::numeric_field_name(f));
            too_large.error({in_csv, lines[i], 0}, "",
                            fmt::format("the {} shape is too large to predict on {}: {}; reduce its columns {}",
                                        s.op, gpu_name, e.what(), fmt::join(fields, ", ")));
        }
    }
    too_large.throw_if_any();
    // Everything is computed before the file is opened, so a failure never leaves a partial result.
    std::ofstream out(out_csv);
    if (!out) throw std::runtime_error("cannot write " + out_csv);
    out << text;
    if (!out.flush()) throw std::runtime_error("error while writing " + out_csv);
}

}  // namespace clustersim
