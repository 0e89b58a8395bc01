// Charts drawn by gnuplot: the data (<stem>.dat), a script that redraws the chart (<stem>.gp) and,
// when gnuplot is on PATH, the chart itself (<stem>.svg), all in one folder.
//
// The script is kept beside the SVG so that a chart can be restyled by editing it and running
// `gnuplot <stem>.gp` in that folder. Every text (titles, labels, legend entries) is written as a
// gnuplot string expression that runs no `backquoted` command and expands no @macro (see
// gnuplot_quoted), so any text is safe to chart; gnuplot itself is started without a shell.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clustersim {

// How a series is drawn. `steps`: each y holds from its x to the next point's x (a histogram's
// outline; end the series with a point at the last interval's end).
enum class ChartStyle { points, lines, linespoints, steps };

struct ChartSeries {
    std::string title;                              // the legend entry; any text
    std::vector<std::pair<double, double>> points;  // (x, y) in drawing order; NaN and infinities are left out
    ChartStyle style = ChartStyle::points;
    std::string color;  // "#rrggbb", or empty for gnuplot's own colour cycle
};

// A text at a point of the chart (drawn to its right).
struct ChartLabel {
    double x = 0;
    double y = 0;
    std::string text;
};

struct ChartSpec {
    std::string title;  // any text; a newline starts a second line
    std::string x_label;
    std::string y_label;
    bool log_x = false;
    bool log_y = false;
    std::optional<double> y_min;  // fixed ends of the y axis; unset: gnuplot fits the data
    std::optional<double> y_max;
    std::vector<ChartSeries> series;  // series without points are left out (the note says so)
    std::vector<ChartLabel> labels;   // texts right of their points; the axes then leave room for them
};

// What write_chart did.
struct ChartFiles {
    bool drawn = false;      // <stem>.svg was written
    std::size_t points = 0;  // points in the data file, over all series
    std::string note;        // a sentence for the user: what was written, or why the SVG was not
};

// Writes <stem>.dat (one block per series with points: gnuplot's `index`), <stem>.gp and, when
// gnuplot is on PATH, <stem>.svg into `dir`, which must exist; an older <stem>.svg is removed first.
// With no point in any series nothing is written (and older files of that stem are removed): the
// note says so. `stem` may hold letters, digits, '_', '-' and '.'; the colours must be "#rrggbb".
// Throws std::invalid_argument for a bad stem or colour, std::runtime_error when a file cannot be
// written. The .dat and .gp bytes depend on the spec only (not on the locale or the folder).
ChartFiles write_chart(const std::filesystem::path& dir, const std::string& stem, const ChartSpec& spec);

// The pieces write_chart is made of, for charts that write a script of their own.

// `text` as a gnuplot string expression that gnuplot reads back as `text`, whatever it holds:
// single-quoted runs, and the characters gnuplot acts on even inside quotes (', ", @, `) and
// newlines as double-quoted escapes ("\047", "\n"), joined with gnuplot's `.` operator. Other
// control characters become spaces.
std::string gnuplot_quoted(std::string_view text);

// What running gnuplot on a script did.
struct GnuplotRun {
    bool installed = true;  // false: gnuplot is not on PATH
    int exit_status = -1;   // its exit status; -1 when it did not start or was killed by a signal
    std::string error;      // why it failed: gnuplot's last line on stderr, or why it did not start
    bool ok() const { return installed && exit_status == 0; }
};

// Runs `gnuplot <script>` in `dir` (looked up on PATH, started without a shell, stdin and stdout on
// /dev/null) and waits for it. Safe to call from several threads at once.
GnuplotRun run_gnuplot(const std::filesystem::path& dir, const std::string& script);

}  // namespace clustersim
