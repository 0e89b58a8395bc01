// Writing the validation report: CSV, Markdown and the gnuplot chart.
#include "sim/validation/validation_report.hpp"

#include "kernels/kernel_cost_model.hpp"

#include "sim/validation/external_process.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

constexpr const char* kChartScript = "predicted_vs_published.gp";
constexpr const char* kChartImage = "predicted_vs_published.svg";

// What is known to be missing from the model behind a family of rows, keyed by the "algorithm" its
// scenarios' summaries report, so a failing row's explanation names causes, not guesses.
struct KnownGaps {
    std::string_view algorithm_prefix;
    std::string_view rows_of;  // what the rows exercise
    std::vector<std::string_view> gaps;
    bool gaps_make_model_faster = true;  // whether filling the gaps would slow the model's predictions
    // What is known to push particular rows the other way (row id -> why), for rows whose error goes
    // against the gaps' direction; a row without an entry is reported as not explained.
    std::vector<std::pair<std::string_view, std::string_view>> other_way = {};
};
const std::vector<KnownGaps>& known_gaps() {
    static const std::vector<KnownGaps> table = {
        {"deepep_",
         "DeepEP expert dispatch and combine",
         {"NVLink carries the topology's 160 GB/s per direction (DeepSeek's H800 figure for NVLink in general), "
          "while DeepEP's intranode figures imply about 125-135 GB/s actually moved under its all-to-all; no "
          "independent measurement of that rate is in the model",
          "low-latency kernels: the combine's reduction after its grid sync and the launch gaps inside the tests' "
          "CUDA-event timing are not modelled"},
         true},
        {"training_",
         "a simulated training step",
         {"no kernel time has been measured on a GPU: the GEMMs are published tables (DeepGEMM's H800 FP8, OpenXLA's "
          "H100 BF16) read as the rate, the attention forward FlashAttention-3's published \"up to\" rate, and the "
          "attention backward, norms, activations, casts and the loss datasheet rooflines at the GPU spec's "
          "efficiency; launch gaps, clock throttling under sustained load and the slowdown of kernels sharing the "
          "GPU with communication (beyond the SMs DeepEP holds) are not modelled",
          "each communication call is priced alone on the fabric: EP all-to-all, pipeline sends and data-parallel "
          "collectives do not contend with each other or with other EP groups"},
         true,
         {{"T2b",
           "the chunk pair's compute is priced faster than the kernels run (the first gap), which leaves less compute "
           "for the EP all-to-all to hide under, so more of it shows"}}},
        {"serving_",
         "a simulated serving deployment",
         {"no kernel time has been measured on a GPU: the FP8 GEMMs are DeepGEMM's published H800 rates (extrapolated "
          "below its smallest shapes for decode batches), MLA decode attention FlashMLA's published \"up to\" rates "
          "and the attention forward FlashAttention-3's, taken as the rate; the other kernels are datasheet "
          "rooflines, with no launch gaps or per-kernel floors, which matter most for small decode batches",
          "TP communication is an estimate from link bandwidths; EP dispatch and combine are DeepEP calls on the "
          "network model (where the topology holds the EP group), each simulated alone on the fabric",
          "the S1 workloads have fixed lengths, so the attention-DP ranks carry equal work; production's spread of "
          "lengths loads the busiest rank more",
          "S1a and S1b compare a saturated unit's capacity with a 24-hour production average per node, which a unit "
          "kept below capacity for latency (as DeepSeek's is) falls short of"},
         true},
    };
    return table;
}

const KnownGaps* gaps_for(const RowResult& r) {
    if (!r.summary.is_object() || !r.summary.contains("algorithm") || !r.summary["algorithm"].is_string())
        return nullptr;
    const std::string algorithm = r.summary["algorithm"].get<std::string>();
    for (const auto& g : known_gaps())
        if (algorithm.starts_with(g.algorithm_prefix)) return &g;
    return nullptr;
}

// At least four significant digits and never an exponent: 180.5, 55.11, 46.94, 1543.
std::string format_number(double x) {
    if (x == 0 || !std::isfinite(x)) return fmt::format("{}", x);
    const int magnitude = static_cast<int>(std::floor(std::log10(std::abs(x))));
    return fmt::format("{:.{}f}", x, std::clamp(3 - magnitude, 0, 6));
}

// A relative error in percent to one decimal, with no "-0.0".
std::string format_percent(double fraction, bool sign) {
    double pct = std::round(fraction * 1000) / 10;
    if (pct == 0) pct = 0;
    return sign ? fmt::format("{:+.1f}", pct) : fmt::format("{:.1f}", pct);
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos && (s.empty() || (s.front() != ' ' && s.back() != ' ')))
        return s;
    std::string quoted = "\"";
    for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

std::string markdown_cell(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
    return out;
}

// "deepep_normal_intranode on 8 GPUs", from the summary; the scenario file when the summary says less.
std::string how_predicted(const RowResult& r) {
    const auto& s = r.summary;
    if (s.is_object() && s.contains("algorithm") && s["algorithm"].is_string() && s.contains("gpus"))
        return fmt::format("{} on {} GPUs", s["algorithm"].get<std::string>(), s["gpus"].dump());
    return r.scenario;
}

std::string interval_text(const RowResult& r) {
    const AcceptedInterval a = accepted_interval(r.row.value, r.row.tolerance);
    return fmt::format("{} to {}", format_number(a.low), format_number(a.high));
}

std::string failing_section(const ValidationResult& result) {
    std::vector<const RowResult*> failing;
    for (const auto& r : result.rows)
        if (r.status == RowStatus::fail) failing.push_back(&r);
    std::string md = "## Rows that fail and why\n\n";
    if (failing.empty()) return md + "No predicted row falls outside its tolerance.\n\n";
    const auto faster =
        std::count_if(failing.begin(), failing.end(), [](auto* r) { return r->faster_than_published(); });
    const std::size_t slower = failing.size() - static_cast<std::size_t>(faster);
    md += fmt::format("{} of the {} predicted rows fall outside their tolerance; ", failing.size(), result.predicted());
    if (slower == 0 || faster == 0)
        md += fmt::format("{} out {} than published.\n\n", failing.size() == 1 ? "it comes" : "all of them come",
                          slower == 0 ? "faster" : "slower");
    else
        md += fmt::format("{} come out faster than published and {} slower.\n\n", faster, slower);
    for (const auto* r : failing) {
        md += fmt::format(
            "- **{}** {} ({}): predicted {} {} against {} published ({}%), outside the {} tolerance "
            "({}). The model is {} than the measurement.\n",
            r->row.id, r->row.figure, how_predicted(*r), format_number(*r->predicted), r->row.unit, r->row.value.text,
            format_percent(*r->error, true), r->row.tolerance.text, interval_text(*r),
            r->faster_than_published() ? "faster" : "slower");
    }
    // The known gaps, once per family of rows, with the direction they push the prediction.
    std::vector<const KnownGaps*> families;
    for (const auto* r : failing)
        if (const auto* g = gaps_for(*r); g && std::find(families.begin(), families.end(), g) == families.end())
            families.push_back(g);
    std::vector<std::string> unexplained;
    for (const auto* r : failing)
        if (!gaps_for(*r)) unexplained.push_back(r->row.id);
    if (!families.empty()) md += "\nKnown gaps of the model behind these rows:\n\n";
    for (const auto* g : families) {
        std::vector<std::string> along;
        std::vector<std::string> against;
        for (const auto* r : failing) {
            if (gaps_for(*r) != g) continue;
            (r->faster_than_published() == g->gaps_make_model_faster ? along : against).push_back(r->row.id);
        }
        md += fmt::format("- {} ({}): {}.", g->rows_of,
                          join(along, ", ") + (along.empty() || against.empty() ? "" : ", ") + join(against, ", "),
                          join(std::vector<std::string>(g->gaps.begin(), g->gaps.end()), "; "));
        const char* direction = g->gaps_make_model_faster ? "faster" : "slower";
        if (!along.empty())
            md += fmt::format(
                " Each gap makes the model {} than the real kernels, which is the direction of the error "
                "of {}.",
                direction, join(along, ", "));
        std::vector<std::string> unknown;
        for (const auto& id : against) {
            const auto why = std::find_if(g->other_way.begin(), g->other_way.end(),
                                          [&](const auto& entry) { return entry.first == id; });
            if (why == g->other_way.end()) {
                unknown.push_back(id);
                continue;
            }
            md += fmt::format(" {} comes out {} than published: {}.", id,
                              g->gaps_make_model_faster ? "slower" : "faster", why->second);
        }
        if (!unknown.empty())
            md += fmt::format(
                " They do not explain {}, which come{} out {} than published; the cause is not known yet.",
                join(unknown, ", "), unknown.size() == 1 ? "s" : "", g->gaps_make_model_faster ? "slower" : "faster");
        md += "\n";
    }
    if (!unexplained.empty())
        md += fmt::format("- {}: no known gap of the model is recorded for these rows yet.\n", join(unexplained, ", "));
    return md + "\n";
}

std::string pending_section(const ValidationResult& result) {
    // Rows grouped by what they wait for, in the order first met.
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    for (const auto& r : result.rows) {
        if (r.status != RowStatus::not_yet_predictable) continue;
        auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == r.note; });
        if (it == groups.end()) it = groups.insert(groups.end(), {r.note, {}});
        it->second.push_back(r.row.id);
    }
    std::string md = "## Rows not predictable yet\n\n";
    if (groups.empty()) return md + "Every selected row has a prediction.\n\n";
    for (const auto& [why, ids] : groups) md += fmt::format("- {}: {}.\n", join(ids, ", "), why);
    return md + "\n";
}

std::string provenance_section(const ValidationResult& result) {
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    for (const auto& r : result.rows) {
        if (!r.predicted) continue;
        const std::string what = r.provenance.empty() ? "not stated by the scenario's summary" : r.provenance;
        auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == what; });
        if (it == groups.end()) it = groups.insert(groups.end(), {what, {}});
        it->second.push_back(r.row.id);
    }
    if (groups.empty()) return {};
    std::string md = "## What the predictions rest on\n\n";
    for (const auto& [what, ids] : groups) md += fmt::format("- {}: {}.\n", join(ids, ", "), what);
    return md + "\n";
}

std::string method_section() {
    std::string md = "## How rows are compared\n\n";
    md +=
        "Each row runs `scenarios/validation/<id>.yaml`. The row's unit says which number of the scenario's "
        "summary is compared with the published value:\n\n"
        "| published unit | summary field | a higher value means |\n|---|---|---|\n";
    for (const auto& m : summary_metrics())
        md += fmt::format(
            "| {} | `{}`{} | {} |\n", m.unit, m.key,
            m.required_key.empty() ? "" : fmt::format(" (with `{}` = {})", m.required_key, m.required_value),
            m.higher_is_faster ? "faster" : "slower");
    md +=
        "\n- error = (predicted - published) / published. For a published range LOW-HIGH the error is taken "
        "against the nearer end, and is 0 inside the range.\n"
        "- A tolerance of N% accepts predictions from LOW x (1 - N%) to HIGH x (1 + N%); N points accepts LOW - N to "
        "HIGH + N (in the row's unit, percentage points for a %); exact accepts the published value only, up to "
        "floating-point rounding.\n"
        "- The median absolute error is over the predicted rows only.\n"
        "- `clustersim validate` exits with 0 when every predicted row passes, 3 when some predicted row fails, 2 "
        "on a user error (bad published set, unknown row id, bad scenario) and 1 on an internal error.\n";
    return md;
}

std::vector<const RowResult*> drawable(const ValidationResult& result) {
    std::vector<const RowResult*> rows;
    for (const auto& r : result.rows)
        if (r.predicted && *r.predicted > 0 && *r.row.value.low > 0) rows.push_back(&r);
    return rows;
}

}  // namespace

std::string source_commit(const fs::path& source_dir) {
    if (!find_on_path("git") || !fs::is_directory(source_dir)) return "unknown";
    const ProcessResult head = run_process({"git", "rev-parse", "--short", "HEAD"}, source_dir);
    std::string hash = head.output.substr(0, head.output.find_first_of("\r\n"));
    if (head.exit_code != 0 || hash.empty()) return "unknown";
    // Generated results (results/) are left out: the report itself is one of them.
    const ProcessResult status =
        run_process({"git", "status", "--porcelain", "--", ".", ":(exclude)results"}, source_dir);
    if (status.exit_code == 0 && !status.output.empty()) hash += ", with uncommitted changes";
    return hash;
}

std::string validation_headline(const ValidationResult& result) {
    const std::size_t predicted = result.predicted();
    std::string text = fmt::format("{} of {} predicted rows pass; {} rows in all, {} not predictable yet.",
                                   result.count(RowStatus::pass), predicted, result.rows.size(),
                                   result.count(RowStatus::not_yet_predictable));
    if (const auto median = result.median_absolute_error()) {
        // Exact rows (a placement map, a closed form) match or not; they have no relative error.
        const auto measured = static_cast<std::size_t>(std::count_if(
            result.rows.begin(), result.rows.end(), [](const RowResult& r) { return r.error.has_value(); }));
        text += fmt::format(" Median absolute error over the {} rows compared with a measurement: {}%.", measured,
                            format_percent(*median, false));
    }
    return text;
}

std::string validation_csv(const ValidationResult& result) {
    std::string csv = "id,kind,figure,published,unit,predicted,error_pct,tolerance,status,note,provenance\n";
    for (const auto& r : result.rows) {
        const std::vector<std::string> fields = {r.row.id,
                                                 r.row.kind,
                                                 r.row.figure,
                                                 r.row.value.text,
                                                 r.row.unit,
                                                 r.predicted ? format_number(*r.predicted) : "",
                                                 r.error ? format_percent(*r.error, false) : "",
                                                 r.row.tolerance.text,
                                                 std::string(to_string(r.status)),
                                                 r.note,
                                                 r.provenance};
        std::vector<std::string> quoted;
        for (const auto& f : fields) quoted.push_back(csv_field(f));
        csv += join(quoted, ",") + "\n";
    }
    return csv;
}

std::string validation_gnuplot_script(const ValidationResult& result) {
    const auto rows = drawable(result);
    if (rows.empty()) return {};
    // One square log-log frame holding every published value, prediction and accepted interval.
    double lo = INFINITY;
    double hi = 0;
    std::vector<double> relative_tolerances;
    std::string data;
    std::string pass;
    std::string fail;
    for (const auto* r : rows) {
        const double published = std::sqrt(*r->row.value.low * *r->row.value.high);  // a range's middle on log axes
        const AcceptedInterval a = accepted_interval(r->row.value, r->row.tolerance);
        for (double v : {*r->row.value.low, *r->row.value.high, *r->predicted, a.low, a.high})
            if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
        // Labels alternate above and below their point (last column), so rows with close values stay legible.
        const int label_side = (std::count(data.begin(), data.end(), '\n') % 2 == 0) ? 1 : -1;
        const std::string line = fmt::format("{} {:.6g} {:.6g} {:.6g} {:.6g} {}\n", r->row.id, published, *r->predicted,
                                             std::max(a.low, published * 1e-3), a.high, label_side);
        data += line;
        (r->status == RowStatus::pass ? pass : fail) += line;
        if (r->row.tolerance.kind == Tolerance::Kind::relative &&
            std::find(relative_tolerances.begin(), relative_tolerances.end(), r->row.tolerance.amount) ==
                relative_tolerances.end())
            relative_tolerances.push_back(r->row.tolerance.amount);
    }
    std::sort(relative_tolerances.begin(), relative_tolerances.end());
    lo /= 1.5;
    hi *= 1.5;

    std::string gp;
    gp +=
        "# Predicted against published for each predicted row of the validation set; written by `clustersim "
        "validate`.\n";
    gp += fmt::format("# Draw it with `gnuplot {}` in this folder (writes {}).\n", kChartScript, kChartImage);
    gp += "set terminal svg size 760,760 font 'sans,12' noenhanced background rgb 'white'\n";
    gp += fmt::format("set output '{}'\n", kChartImage);
    gp += "set title 'clustersim validate: predicted against published (each row in its own unit)'\n";
    gp += "set xlabel 'published'\nset ylabel 'predicted'\nset logscale xy\nset size square\nset grid\n";
    gp += fmt::format("set xrange [{:.4g}:{:.4g}]\nset yrange [{:.4g}:{:.4g}]\n", lo, hi, lo, hi);
    gp += "set key top left box opaque\nset samples 200\n";
    // Log axes tick only at powers of ten by default; a 1-2-5 series keeps a value readable off the chart.
    std::vector<std::string> tics;
    for (double decade = std::pow(10.0, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
        for (double m : {1.0, 2.0, 5.0})
            if (m * decade >= lo && m * decade <= hi) tics.push_back(fmt::format("{:g}", m * decade));
    gp += fmt::format("set xtics ({})\nset ytics ({})\n", join(tics, ", "), join(tics, ", "));
    gp += "# id published predicted accepted_low accepted_high label_side\n";
    gp += "$rows << EOD\n" + data + "EOD\n";
    if (!pass.empty()) gp += "$pass << EOD\n" + pass + "EOD\n";
    if (!fail.empty()) gp += "$fail << EOD\n" + fail + "EOD\n";
    std::vector<std::string> plots = {"x with lines lc rgb 'black' lw 1.5 title 'predicted = published'"};
    int dash = 2;
    for (double t : relative_tolerances) {
        const std::string pct = fmt::format("{:g}", t * 100);
        plots.push_back(fmt::format("x*{:.6g} with lines dt {} lc rgb '#777777' title '+/- {}%'", 1 + t, dash, pct));
        plots.push_back(fmt::format("x*{:.6g} with lines dt {} lc rgb '#777777' notitle", 1 - t, dash));
        ++dash;
    }
    plots.push_back("$rows using 2:2:4:5 with yerrorbars pt 0 lc rgb '#9ecae1' lw 2 title 'accepted interval'");
    if (!pass.empty()) plots.push_back("$pass using 2:3 with points pt 7 ps 1.3 lc rgb '#1a9850' title 'pass'");
    if (!fail.empty()) plots.push_back("$fail using 2:3 with points pt 5 ps 1.3 lc rgb '#d73027' title 'fail'");
    plots.push_back("$rows using 2:($3*(1+0.05*$6)):1 with labels left offset 1,0 notitle");
    gp += "plot " + join(plots, ", \\\n     ") + "\n";
    return gp;
}

std::string validation_markdown(const ValidationResult& result, const ReportContext& context,
                                const std::string& chart_note) {
    std::string md = "# clustersim validation report\n\n";
    md += fmt::format("Regenerate with `{}` from the repository root. Made at commit {}.\n\n", context.command,
                      context.commit);
    md += fmt::format(
        "Predictions against the published measurements in `{}` ({} rows; its README says what each "
        "figure means and how it was measured).\n\n",
        context.published_display, result.published.rows.size());
    md += fmt::format("**{}**\n\n", validation_headline(result));
    md += "| id | kind | figure | published | unit | predicted | error | tolerance | status | note |\n";
    md += "|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& r : result.rows) {
        md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.row.id, r.row.kind,
                          markdown_cell(r.row.figure), markdown_cell(r.row.value.text), markdown_cell(r.row.unit),
                          r.predicted ? format_number(*r.predicted) : "",
                          r.error ? format_percent(*r.error, true) + "%" : "", markdown_cell(r.row.tolerance.text),
                          to_string(r.status), markdown_cell(r.note));
    }
    md += "\n";
    md += failing_section(result);
    md += pending_section(result);
    md += provenance_section(result);
    md += "## Chart\n\n" + chart_note + "\n\n";
    md += method_section();
    return md;
}

std::string write_kernel_calibration_section(const std::string& kernels_dir, const fs::path& dir) {
    std::string md = "## Kernel calibration (leave-one-out)\n\n";
    std::vector<std::string> gpus;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path(kernels_dir) / "gpus", ec))
        if (entry.path().extension() == ".yaml") gpus.push_back(entry.path().stem().string());
    std::sort(gpus.begin(), gpus.end());
    std::string csv = "gpu,op,dtype,shape,measured_us,predicted_us,relative_error_pct,provenance\n";
    std::string data;  // gnuplot: measured predicted, one block per GPU
    std::string table;
    std::vector<std::string> titles;
    for (const auto& gpu : gpus) {
        const GpuProfile profile = load_gpu_profile(kernels_dir, gpu);
        const auto rows =
            leave_one_out(profile);  // measured and published rows; derived ones have nothing to leave out
        if (rows.empty()) continue;
        std::string block;
        for (const auto& r : rows) {
            std::string shape;
            for (int i = 0; i < KernelShape::kNumericFields; ++i)
                if (r.shape.numeric(i) != 0)
                    shape += fmt::format("{}{}={}", shape.empty() ? "" : " ", KernelShape::numeric_field_name(i),
                                         r.shape.numeric(i));
            csv += fmt::format("{},{},{},{},{:.6g},{:.6g},{:.2f},{}\n", gpu, r.shape.op, r.shape.dtype, shape,
                               r.measured_us, r.predicted_us, r.relative_error * 100, to_string(r.provenance));
            block += fmt::format("{:.6g} {:.6g}\n", r.measured_us, r.predicted_us);
        }
        data += fmt::format("$gpu{} << EOD\n{}EOD\n", titles.size(), block);
        titles.push_back(gpu);
        for (const auto& sum : summarize_leave_one_out(rows))
            table += fmt::format("| {} | {} | {} | {}% | {}% |\n", gpu, sum.op, sum.count,
                                 format_percent(sum.median_abs_error, false), format_percent(sum.p90_abs_error, false));
    }
    if (titles.empty()) {
        return md + fmt::format(
                        "No GPU profile under `{}/` has measured or published calibration tables yet (no GPU has been "
                        "lent to measure them), so there is no kernel-level chart: every kernel time above is a "
                        "datasheet roofline. Once tables exist, this section lists each operator's leave-one-out "
                        "error (each measured row predicted from the others) and draws them.\n\n",
                        fs::path(kernels_dir).filename().generic_string());
    }
    auto write = [&](const char* name, const std::string& text) {
        std::ofstream out(dir / name, std::ios::binary);
        out << text;
        if (!out) throw std::runtime_error(fmt::format("cannot write {}", (dir / name).string()));
    };
    write("kernel_leave_one_out.csv", csv);
    std::string gp =
        "set terminal svg size 800,640 dynamic background rgb 'white'\n"
        "set output 'kernel_leave_one_out.svg'\n"
        "set title 'Kernel times: each calibration row predicted from the others (leave-one-out)'\n"
        "set logscale xy\nset xlabel 'measured (us)'\nset ylabel 'predicted (us)'\nset key top left\n"
        "set grid\n";
    gp += data;
    std::vector<std::string> plots = {"x with lines lc rgb 'black' title 'predicted = measured'"};
    for (std::size_t i = 0; i < titles.size(); ++i)
        plots.push_back(fmt::format("$gpu{} using 1:2 with points pt 7 title '{}'", i, titles[i]));
    gp += "plot " + join(plots, ", \\\n     ") + "\n";
    write("kernel_leave_one_out.gp", gp);
    md += "| gpu | op | rows | median abs error | p90 abs error |\n|---|---|---|---|---|\n" + table + "\n";
    md += "Every row: `kernel_leave_one_out.csv`. ";
    if (find_on_path("gnuplot") && run_process({"gnuplot", "kernel_leave_one_out.gp"}, dir).exit_code == 0 &&
        fs::exists(dir / "kernel_leave_one_out.svg")) {
        md += "\n\n![leave-one-out kernel times](kernel_leave_one_out.svg)\n\n";
    } else {
        md += "The chart was not drawn (gnuplot missing or failed); run `gnuplot kernel_leave_one_out.gp` here.\n\n";
    }
    return md;
}

std::string write_validation_report(const ValidationResult& result, const ReportContext& context, const fs::path& dir) {
    auto write = [&](const char* name, const std::string& text) {
        std::ofstream out(dir / name, std::ios::binary);
        out << text;
        if (!out) throw std::runtime_error(fmt::format("cannot write {}", (dir / name).string()));
    };
    write("validation.csv", validation_csv(result));
    std::string chart_note;
    const std::string script = validation_gnuplot_script(result);
    if (script.empty()) {
        chart_note = "No row has a prediction yet, so there is no chart.";
    } else {
        write(kChartScript, script);
        const std::string description = fmt::format(
            "Each predicted row at (published, predicted) on log axes, in its own unit, with the line predicted = "
            "published, the band of each relative tolerance and each row's accepted interval as a vertical bar. "
            "Drawn by gnuplot from `{}`.",
            kChartScript);
        if (!find_on_path("gnuplot")) {
            chart_note = fmt::format(
                "gnuplot is not on PATH, so `{}` was not drawn; run `gnuplot {}` in this folder "
                "to draw it (Debian package gnuplot-nox). {}",
                kChartImage, kChartScript, description);
        } else {
            const ProcessResult drawn = run_process({"gnuplot", kChartScript}, dir);
            if (drawn.exit_code == 0 && fs::exists(dir / kChartImage)) {
                chart_note = fmt::format("![predicted against published]({})\n\n{}", kChartImage, description);
            } else {
                std::error_code ignored;
                fs::remove(dir / kChartImage, ignored);
                chart_note = fmt::format("gnuplot failed (exit status {}) on `{}`, so the chart was not drawn. {}",
                                         drawn.exit_code, kChartScript, description);
            }
        }
    }
    std::string markdown = validation_markdown(result, context, chart_note);
    if (!context.kernels_dir.empty()) {
        // Before the method notes, after the chart.
        const std::string section = write_kernel_calibration_section(context.kernels_dir, dir);
        const std::size_t method = markdown.find("## How rows are compared");
        markdown.insert(method == std::string::npos ? markdown.size() : method, section);
    }
    write("README.md", markdown);
    return chart_note;
}

}  // namespace clustersim
