// The kernel cost model: how long one operator takes on one GPU, and how that answer was obtained.
//
// A GpuProfile is a GPU's datasheet spec (kernels/gpus/<gpu>.yaml) plus its calibration tables
// (kernels/calibration/<gpu>/*.csv). KernelCostModel::predict answers exactly at a table's points,
// interpolates between them, extrapolates outside them against the roofline, and falls back to a
// pure roofline when no table covers the operator; every answer carries its Provenance. The method
// is described in kernels/README.md.
#pragma once

#include "kernels/calibration_table.hpp"
#include "kernels/gpu_spec.hpp"
#include "sim/core/units.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace clustersim {

struct GpuProfile {
    GpuSpec spec;
    std::vector<CalibrationTable> tables;
    std::string derived_from;  // names of the GPUs whose tables were scaled for this one (", "-joined); empty if none
};

// Loads kernels_dir/gpus/<gpu_name>.yaml and every CSV in kernels_dir/calibration/<gpu_name>/ (in
// file-name order), then, for each GPU its spec names in `derive_from` (in that order), that GPU's own
// measured and published tables scaled by datasheet ratios (derive_profile; the source's own derived
// tables are not passed on, so two GPUs may derive from each other). Throws InputError on bad files.
GpuProfile load_gpu_profile(const std::string& kernels_dir, const std::string& gpu_name);
// The same with the spec given and the tables read from one folder (which may be absent: no tables).
GpuProfile load_gpu_profile(GpuSpec spec, const std::string& calibration_dir);

// Scales every row of `source` to `target` by datasheet ratios: rows whose roofline on the source GPU
// is compute-bound by the dtype's peak FLOP-rate ratio, memory-bound rows by the HBM-bandwidth ratio.
// The resulting tables are marked derived.
GpuProfile derive_profile(const GpuProfile& source, const GpuSpec& target);

// The roofline time of a shape: max(FLOPs / peak rate, bytes / HBM bandwidth). With efficiencies, the
// peaks are multiplied by the spec's roofline_efficiency first. FLOPs count only for tensor-core ops.
Time roofline_time(const KernelShape& shape, const GpuSpec& spec, bool with_efficiency);

struct KernelPrediction {
    Time time;
    Provenance provenance = Provenance::roofline;
    Time roofline_bound;  // datasheet-peak roofline: no prediction is below it
    std::string basis;    // the table file the answer rests on, or "roofline"
};

// One line of a table's grid: the rows that differ only along the op's primary axis, sorted along it.
struct KernelGridLine {
    struct Point {
        std::int64_t x;  // the primary-axis coordinate
        double time_us;
        std::string file;  // the table the row came from
    };
    KernelShape shape;  // the first row's shape (its primary-axis field is that row's)
    std::string file;   // the first row's table
    std::vector<Point> pts;
};

class KernelCostModel {
public:
    explicit KernelCostModel(GpuProfile profile);

    // Throws std::invalid_argument when the shape lacks a field its op needs, TimeOverflow when its
    // time does not fit the simulator's clock (2^63 ps, about 106.7 days).
    KernelPrediction predict(const KernelShape& query) const;
    // As predict, ignoring table rows of the same shape as `excluded` (for leave-one-out).
    KernelPrediction predict_excluding(const KernelShape& query, const KernelShape& excluded) const;

    const GpuProfile& profile() const { return profile_; }

private:
    struct Point {
        KernelShape shape;
        double time_us = 0;
        Provenance table_provenance = Provenance::measured;
        std::string file;
    };
    // The lines of the grid along the op's primary axis, keyed (sorted, for determinism) by the other fields.
    using Lines = std::map<std::vector<std::int64_t>, KernelGridLine>;
    static Lines make_lines(const std::vector<const Point*>& pts);
    KernelPrediction predict_impl(const KernelShape& query, const KernelShape* excluded) const;

    GpuProfile profile_;
    // (op, dtype) -> rows of the most direct provenance class present (measured, then published, then derived).
    std::map<std::pair<std::string, std::string>, std::vector<Point>> points_;
    // (op, dtype) -> the same rows as grid lines, built once (leave-one-out builds its own without a row).
    std::map<std::pair<std::string, std::string>, Lines> lines_;
};

// Leave-one-out: each row of the profile's measured (and published) tables predicted from the others.
struct LeaveOneOutRow {
    KernelShape shape;
    double measured_us = 0;
    double predicted_us = 0;
    double relative_error = 0;  // (predicted - measured) / measured
    Provenance provenance = Provenance::roofline;
};
struct LeaveOneOutSummary {
    std::string op;
    std::size_t count = 0;
    double median_abs_error = 0;  // of |relative_error|
    double p90_abs_error = 0;
};
std::vector<LeaveOneOutRow> leave_one_out(const GpuProfile& profile);
// One summary per op (sorted by op name), from leave_one_out's rows.
std::vector<LeaveOneOutSummary> summarize_leave_one_out(const std::vector<LeaveOneOutRow>& rows);

// The folder holding gpus/ and calibration/: $CLUSTERSIM_KERNELS_DIR if set, else <source tree>/kernels.
std::string default_kernels_dir();

// `clustersim kernels --gpu NAME --in SHAPES.csv --out PRED.csv`: reads the query CSV, predicts every
// row and writes the input columns plus time_us and provenance. Throws InputError (file and line of
// every bad row, including a shape whose predicted time is past the simulator's clock) before writing
// anything.
void run_kernels_query(const std::string& gpu_name, const std::string& in_csv, const std::string& out_csv,
                       const std::string& kernels_dir = default_kernels_dir());

}  // namespace clustersim
