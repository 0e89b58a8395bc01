// The validation report: validation.csv, a Markdown README and a gnuplot chart of predicted against
// published, all deterministic (the commit line is the only thing that changes between commits).
#pragma once

#include "sim/validation/validation_suite.hpp"

#include <filesystem>
#include <string>

namespace clustersim {

struct ReportContext {
    std::string command;            // the command line that regenerates the report
    std::string commit;             // source_commit(), or "unknown"
    std::string published_display;  // published.csv as the report names it
    std::string kernels_dir;        // gpus/ and calibration/ for the kernel-level section ("" to leave it out)
};

// The kernel-level check: every measured (and published) calibration row of every GPU profile under
// `kernels_dir` predicted from the others (leave-one-out, kernels/kernel_cost_model.hpp). Writes
// kernel_leave_one_out.csv, and the chart kernel_leave_one_out.gp / .svg (when gnuplot is on PATH),
// into `dir`; returns the report's Markdown section, which says plainly when no profile has tables.
std::string write_kernel_calibration_section(const std::string& kernels_dir, const std::filesystem::path& dir);

// The short commit of the source tree, "<hash>, with uncommitted changes" when sources outside
// results/ differ from it, or "unknown" where git or the repository is missing.
std::string source_commit(const std::filesystem::path& source_dir);

// "5 of 11 predicted rows pass ..." with the median absolute error.
std::string validation_headline(const ValidationResult& result);

// One line per selected row: id, kind, figure, published, unit, predicted, error_pct, tolerance,
// status, note, provenance (RFC 4180 quoting).
std::string validation_csv(const ValidationResult& result);

// The gnuplot script that draws predicted_vs_published.svg in the folder it runs in; "" when no row
// has a positive prediction to draw on log axes.
std::string validation_gnuplot_script(const ValidationResult& result);

// The Markdown report; `chart_note` says whether the chart was drawn and, if not, why.
std::string validation_markdown(const ValidationResult& result, const ReportContext& context,
                                const std::string& chart_note);

// Writes validation.csv, predicted_vs_published.gp, predicted_vs_published.svg (when gnuplot is on
// PATH) and README.md into `dir`. Returns the chart note (also in the README).
std::string write_validation_report(const ValidationResult& result, const ReportContext& context,
                                    const std::filesystem::path& dir);

}  // namespace clustersim
