// Tests of the gnuplot chart writer: the data and script it writes, quoting of any text, the SVG
// when gnuplot is installed, and the notes when it is not or when there is nothing to draw.
#include "sim/charts/gnuplot_chart.hpp"
#include "tests/charts/chart_test_support.hpp"

#include <catch2/catch.hpp>

#include <clocale>
#include <cmath>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

ChartSpec small_spec() {
    ChartSpec spec;
    spec.title = "Two series";
    spec.x_label = "x (us)";
    spec.y_label = "y";
    spec.log_x = true;
    spec.y_min = 0;
    spec.series = {{"rising", {{1, 0.5}, {2, 1.25}, {4, 2}}, ChartStyle::linespoints, "#d62728"},
                   {"flat", {{1, 1}, {4, 1}, {std::nan(""), 3}, {5, INFINITY}}, ChartStyle::steps, ""}};
    spec.labels = {{2, 1.25, "peak"}, {std::nan(""), 1, "nowhere"}};
    return spec;
}

const char* const kSmallData =
    "# small.dat: the data of small.svg, drawn by small.gp. One block per series (gnuplot's index), columns x, y.\n"
    "# index 0: rising\n"
    "1\t0.5\n"
    "2\t1.25\n"
    "4\t2\n"
    "\n\n"
    "# index 1: flat\n"
    "1\t1\n"
    "4\t1\n";

const char* const kSmallScript =
    "# small.gp: written by clustersim. Redraw with `gnuplot small.gp` in this folder (reads small.dat, writes "
    "small.svg).\n"
    "set terminal svg size 960,640 dynamic noenhanced font 'sans,12' background rgb 'white'\n"
    "set output 'small.svg'\n"
    "set title 'Two series'\n"
    "set xlabel 'x (us)'\n"
    "set ylabel 'y'\n"
    "set logscale x\n"
    "set yrange [0:*]\n"
    "set grid\n"
    "set key outside right top vertical\n"
    "set datafile separator '\\t'\n"
    "set offsets graph 0.05, graph 0.2, graph 0.08, graph 0.08\n"
    "set label 1 'peak' at 2, 1.25 left offset 0.8,0.5 font ',10' front\n"
    "plot 'small.dat' index 0 using 1:2 with linespoints pt 7 ps 1 lw 2 lc rgb '#d62728' title 'rising', \\\n"
    "     '' index 1 using 1:2 with steps lw 2 title 'flat'\n";

}  // namespace

TEST_CASE("a chart's data has one block per series and its script plots each block in its style", "[charts]") {
    ChartScratch dir("small");
    PathWithoutGnuplot no_gnuplot;  // the files must not depend on whether gnuplot runs
    const ChartFiles files = write_chart(dir.path, "small", small_spec());
    CHECK(read_text(dir.path / "small.dat") == kSmallData);  // NaN and infinite points are left out
    CHECK(read_text(dir.path / "small.gp") == kSmallScript);
    CHECK(files.points == 5);
    CHECK_FALSE(files.drawn);
}

TEST_CASE("without gnuplot on PATH the script and data are written and the note says how to draw them", "[charts]") {
    ChartScratch dir("missing");
    std::ofstream(dir.path / "small.svg") << "an old chart";
    PathWithoutGnuplot no_gnuplot;
    const ChartFiles files = write_chart(dir.path, "small", small_spec());
    CHECK_FALSE(files.drawn);
    CHECK_FALSE(fs::exists(dir.path / "small.svg"));  // the old chart does not pass for a new one
    CHECK(fs::exists(dir.path / "small.gp"));
    CHECK(fs::exists(dir.path / "small.dat"));
    CHECK(files.note == fmt::format("gnuplot is not on PATH, so {} was not drawn (install gnuplot, Debian package "
                                    "gnuplot-nox, and run `gnuplot small.gp` in {})",
                                    (dir.path / "small.svg").string(), dir.path.string()));
    const GnuplotRun run = run_gnuplot(dir.path, "small.gp");
    CHECK_FALSE(run.installed);
    CHECK_FALSE(run.ok());
}

TEST_CASE("the SVG is drawn when gnuplot is on PATH, and the script redraws it", "[charts]") {
    ChartScratch dir("drawn");
    const ChartFiles files = write_chart(dir.path, "small", small_spec());
    if (!gnuplot_on_path()) {
        WARN("gnuplot is not on PATH: only the note is checked");
        CHECK_THAT(files.note, StartsWith("gnuplot is not on PATH"));
        CHECK(read_text(dir.path / "small.gp") == kSmallScript);
        CHECK(read_text(dir.path / "small.dat") == kSmallData);
        return;
    }
    REQUIRE(files.drawn);
    CHECK(files.note == fmt::format("drew {} (5 points in 2 series)", (dir.path / "small.svg").string()));
    const std::string svg = read_text(dir.path / "small.svg");
    CHECK_THAT(svg, Contains("<svg") && Contains("Two series") && Contains("rising") && Contains("flat") &&
                        Contains("peak") && Contains("</svg>"));
    // `gnuplot small.gp` in the folder gives the same bytes again.
    fs::remove(dir.path / "small.svg");
    CHECK(run_gnuplot(dir.path, "small.gp").ok());
    CHECK(read_text(dir.path / "small.svg") == svg);
}

TEST_CASE("any text is quoted as a gnuplot string that keeps it on one line and runs nothing", "[charts]") {
    CHECK(gnuplot_quoted("plain, with a \\ backslash") == "'plain, with a \\ backslash'");
    // ' " @ ` and newlines go in double quotes as escapes: gnuplot's line reader acts on them even
    // inside quotes (its '' escape fails at a string's start; @name expands when a " in '...'
    // upsets its count of quotes; `command` runs inside "...").
    CHECK(gnuplot_quoted("it's") == "'it'.\"\\047\".'s'");
    CHECK(gnuplot_quoted("''x") == "\"\\047\\047\".'x'");
    CHECK(gnuplot_quoted("a \"b\"") == "'a '.\"\\042\".'b'.\"\\042\"");
    CHECK(gnuplot_quoted("`touch x` @m") == "\"\\140\".'touch x'.\"\\140\".' '.\"\\100\".'m'");
    CHECK(gnuplot_quoted("one\ntwo") == "'one'.\"\\n\".'two'");
    CHECK(gnuplot_quoted("tab\there\r\x01") == "'tab here  '");
    CHECK(gnuplot_quoted("") == "''");

    ChartScratch dir("hostile");
    const std::string hostile = "it's \"quoted\", back\\slash\\\nsecond line `touch pwned` @GPVAL_PWD $1 ; # { \\";
    ChartSpec spec;
    spec.title = hostile;
    spec.x_label = hostile;
    spec.y_label = "'";
    spec.series = {{hostile, {{1, 1}, {2, 3}}, ChartStyle::lines, ""}, {"\\", {{1, 2}}, ChartStyle::points, ""}};
    spec.labels = {{1, 1, hostile}};
    const ChartFiles files = write_chart(dir.path, "hostile", spec);
    const std::string gp = read_text(dir.path / "hostile.gp");
    // One command per line: the newline is written as "\n", never as a line break.
    const auto lines = text_lines(gp);
    REQUIRE(lines.size() == 13);
    CHECK(lines[3] ==
          "set title 'it'.\"\\047\".'s '.\"\\042\".'quoted'.\"\\042\".', back\\slash\\'.\"\\n\".'second line '."
          "\"\\140\".'touch pwned'.\"\\140\".' '.\"\\100\".'GPVAL_PWD $1 ; # { \\'");
    CHECK(lines[5] == "set ylabel \"\\047\"");
    // The data file's comments hold the titles on one line: a trailing backslash continues nothing.
    CHECK_THAT(read_text(dir.path / "hostile.dat"), Contains("# index 0: it's \"quoted\", back\\slash\\ second line "
                                                             "`touch pwned` @GPVAL_PWD $1 ; # { \\\n1\t1\n2\t3\n"));
    if (gnuplot_on_path()) {
        INFO(files.note);
        REQUIRE(files.drawn);
        CHECK_FALSE(fs::exists(dir.path / "pwned"));
        const std::string svg = read_text(dir.path / "hostile.svg");
        CHECK_THAT(svg, Contains("second line `touch pwned` @GPVAL_PWD $1 ; # { \\"));
        CHECK_THAT(svg,
                   Contains("it's &quot;quoted&quot;, back\\slash\\") || Contains("it's \"quoted\", back\\slash\\"));
    } else {
        CHECK_THAT(files.note, StartsWith("gnuplot is not on PATH"));
    }
}

TEST_CASE("series without points are left out, and a chart without any point writes nothing", "[charts]") {
    ChartScratch dir("empty");
    PathWithoutGnuplot no_gnuplot;
    ChartSpec spec;
    spec.series = {{"empty", {}, ChartStyle::lines, ""},
                   {"one", {{1, 2}}, ChartStyle::points, ""},
                   {"all NaN", {{std::nan(""), 1}}, ChartStyle::lines, ""}};
    const ChartFiles some = write_chart(dir.path, "some", spec);
    CHECK(some.points == 1);
    CHECK_THAT(some.note, Contains("; left out 2 series without points: 'empty', 'all NaN'"));
    CHECK_THAT(read_text(dir.path / "some.gp"),
               Contains("plot 'some.dat' index 0 using 1:2 with points pt 7 ps 0.8 title 'one'\n"));

    // An earlier chart of the same stem is removed: it would describe another run.
    for (const char* ext : {".dat", ".gp", ".svg"}) std::ofstream(dir.path / (std::string("none") + ext)) << "old";
    spec.series = {{"empty", {}, ChartStyle::lines, ""}};
    const ChartFiles none = write_chart(dir.path, "none", spec);
    CHECK_FALSE(none.drawn);
    CHECK(none.points == 0);
    CHECK(none.note ==
          fmt::format("no chart {}: none of its series has a point to draw", (dir.path / "none.svg").string()));
    for (const char* ext : {".dat", ".gp", ".svg"}) CHECK_FALSE(fs::exists(dir.path / (std::string("none") + ext)));

    spec.series.clear();
    CHECK_THAT(write_chart(dir.path, "none", spec).note, Contains("it has no series"));
}

TEST_CASE("a chart's file name and colours are checked", "[charts][errors]") {
    ChartScratch dir("names");
    ChartSpec spec;
    spec.series = {{"s", {{1, 1}}, ChartStyle::points, ""}};
    for (const char* bad : {"", "../up", "with space", "quote'", ".hidden", "semi;colon"})
        CHECK_THROWS_AS(write_chart(dir.path, bad, spec), std::invalid_argument);
    spec.series[0].color = "red";
    CHECK_THROWS_WITH(write_chart(dir.path, "ok", spec), "chart colour \"red\": expected #rrggbb");
    spec.series[0].color = "#12345g";
    CHECK_THROWS_AS(write_chart(dir.path, "ok", spec), std::invalid_argument);
    spec.series[0].color = "#12AB9f";
    PathWithoutGnuplot no_gnuplot;
    CHECK_NOTHROW(write_chart(dir.path, "ok-1.2_x", spec));
    CHECK_THROWS_AS(write_chart(dir.path / "no-such-folder", "ok", spec), std::runtime_error);
}

TEST_CASE("a script gnuplot rejects is reported with gnuplot's own message", "[charts][errors]") {
    if (!gnuplot_on_path()) {
        WARN("gnuplot is not on PATH: skipped");
        return;
    }
    ChartScratch dir("failing");
    std::ofstream(dir.path / "bad.gp") << "set terminal svg\nset output 'bad.svg'\nplot no_such_function(x)\n";
    const GnuplotRun run = run_gnuplot(dir.path, "bad.gp");
    CHECK(run.installed);
    CHECK_FALSE(run.ok());
    CHECK(run.exit_status != 0);
    CHECK_THAT(run.error, Contains("bad.gp\" line 3") && Contains("undefined function"));
    const GnuplotRun missing = run_gnuplot(dir.path / "nowhere", "bad.gp");
    CHECK_FALSE(missing.ok());
    CHECK_THAT(missing.error, Contains("does not exist"));
}

TEST_CASE("the data and script do not depend on the locale", "[charts][determinism]") {
    ChartScratch dir("locale");
    PathWithoutGnuplot no_gnuplot;
    // A locale with a decimal comma, where one is installed; C.UTF-8 otherwise (the check still holds).
    const std::string saved = std::setlocale(LC_ALL, nullptr);
    for (const char* name : {"de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8"})
        if (std::setlocale(LC_ALL, name)) break;
    try {
        std::locale::global(std::locale(""));
    } catch (const std::runtime_error&) {
    }
    (void)write_chart(dir.path, "small", small_spec());
    std::setlocale(LC_ALL, saved.c_str());
    std::locale::global(std::locale::classic());
    CHECK(read_text(dir.path / "small.dat") == kSmallData);
    CHECK(read_text(dir.path / "small.gp") == kSmallScript);
}
