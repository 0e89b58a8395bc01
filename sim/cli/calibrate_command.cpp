// `clustersim calibrate --gpu NAME`: checks that a GPU profile loads and reports the leave-one-out error
// of its calibration tables per operator (each measured row predicted from the others).
#include "command.hpp"
#include "kernels/kernel_cost_model.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <string>

namespace clustersim {
namespace {

struct CalibrateArgs {
    std::string gpu;
    std::string kernels_dir = default_kernels_dir();
};

int run_calibrate(const CalibrateArgs& args) {
    // Loading checks the spec and every table (format, provenance header, known ops); problems are InputErrors.
    const GpuProfile profile = load_gpu_profile(args.kernels_dir, args.gpu);
    const GpuSpec& spec = profile.spec;
    fmt::print("{} ({}): profile loads\n", spec.name, spec.description);
    fmt::print("  datasheet: BF16 {:.1f} TFLOP/s, FP8 {:.1f} TFLOP/s dense, HBM {:.0f} GB/s; roofline efficiency "
               "compute {}, memory {}\n",
               spec.bf16_dense.value.tflops(), spec.fp8_dense.value.tflops(), spec.hbm_bandwidth.value.gb_per_second(),
               spec.compute_efficiency, spec.memory_efficiency);
    for (const PublishedKernelRates& r : spec.kernel_rates)
        fmt::print("  kernel rates ({}): {} {} at {:.0f} TFLOP/s compute-bound, {:.0f} GB/s memory-bound{} where no "
                   "table covers it; {}\n",
                   r.derived ? "derived" : "published", r.op, r.dtype, r.compute.tflops(), r.memory.gb_per_second(),
                   r.memory_from_roofline ? " (no published figure: the roofline's)" : "", r.source);
    const std::string calibration_dir = args.kernels_dir + "/calibration/" + spec.name;
    if (profile.tables.empty()) {
        fmt::print("no calibration tables for {} (none under {}{}): nothing to check. Until a GPU session "
                   "measures them, every prediction for this GPU is the datasheet roofline at the efficiencies "
                   "above (provenance roofline), or the kernel rates above where listed.\n",
                   spec.name, calibration_dir,
                   spec.derive_from.empty() ? "" : fmt::format(", and none to derive from {}", fmt::join(spec.derive_from, ", ")));
        return 0;
    }
    if (!profile.derived_from.empty())
        fmt::print("  tables derived from {} by datasheet ratios (leave-one-out below checks only the measured and "
                   "published rows)\n",
                   profile.derived_from);
    for (const CalibrationTable& t : profile.tables) {
        const auto commit = t.header.find("commit");
        fmt::print("  {}: {} row{}, {}{}\n", t.file, t.rows.size(), t.rows.size() == 1 ? "" : "s", to_string(t.provenance),
                   commit == t.header.end() ? "" : ", commit " + commit->second);
    }
    const auto rows = leave_one_out(profile);
    const auto summaries = summarize_leave_one_out(rows);
    if (summaries.empty()) {
        fmt::print("no measured or published rows to leave out: nothing to check\n");
        return 0;
    }
    fmt::print("\nleave-one-out error (each row predicted from the others; |predicted - measured| / measured)\n");
    fmt::print("  {:<22} {:>6} {:>9} {:>9}\n", "op", "rows", "median", "p90");
    for (const LeaveOneOutSummary& s : summaries)
        fmt::print("  {:<22} {:>6} {:>8.2f}% {:>8.2f}%\n", s.op, s.count, 100.0 * s.median_abs_error,
                   100.0 * s.p90_abs_error);
    return 0;
}

}  // namespace

Command add_calibrate_command(CLI::App& app) {
    auto args = std::make_shared<CalibrateArgs>();
    CLI::App* cmd = app.add_subcommand(
        "calibrate", "Check a GPU profile (spec and calibration tables) and report leave-one-out error per operator");
    cmd->add_option("--gpu", args->gpu, "GPU name (a file stem in kernels/gpus/, e.g. h100-sxm)")->required();
    cmd->add_option("--kernels-dir", args->kernels_dir,
                    "Folder holding gpus/ and calibration/ (default: $CLUSTERSIM_KERNELS_DIR or the source tree's "
                    "kernels/)")
        ->capture_default_str();
    return {cmd, [args] { return run_calibrate(*args); }};
}

}  // namespace clustersim
