// Charts drawn by gnuplot (see gnuplot_chart.hpp).
#include "sim/charts/gnuplot_chart.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace clustersim {
namespace {

namespace fs = std::filesystem;

bool is_control(char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

// `text` on one line, for comments in the data file: control characters become spaces.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (is_control(c)) c = ' ';
    return out;
}

void check_stem(const std::string& stem) {
    const bool ok = !stem.empty() && stem.front() != '.' &&
                    stem.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_-.") == std::string::npos;
    if (!ok)
        throw std::invalid_argument(
            fmt::format("chart file name \"{}\": expected letters, digits, '_', '-' and '.', not starting with '.'",
                        one_line(stem)));
}

void check_color(const std::string& color) {
    if (color.empty()) return;
    const bool ok = color.size() == 7 && color[0] == '#' &&
                    color.find_first_not_of("0123456789abcdefABCDEF", 1) == std::string::npos;
    if (!ok) throw std::invalid_argument(fmt::format("chart colour \"{}\": expected #rrggbb", one_line(color)));
}

// The gnuplot plot clause of a style (after "with").
std::string style_clause(const ChartSeries& s) {
    std::string out;
    switch (s.style) {
        case ChartStyle::points:
            out = "points pt 7 ps 0.8";
            break;
        case ChartStyle::lines:
            out = "lines lw 2";
            break;
        case ChartStyle::linespoints:
            out = "linespoints pt 7 ps 1 lw 2";
            break;
        case ChartStyle::steps:
            out = "steps lw 2";
            break;
    }
    if (!s.color.empty()) out += fmt::format(" lc rgb '{}'", s.color);
    return out;
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error(fmt::format("cannot write the chart file {}", path.string()));
}

// The last non-blank line of what gnuplot wrote to stderr (its error), at most 300 characters.
std::string last_line(const std::string& text) {
    std::string last;
    for (std::size_t begin = 0; begin < text.size();) {
        std::size_t end = text.find('\n', begin);
        if (end == std::string::npos) end = text.size();
        std::string line = one_line(std::string_view(text).substr(begin, end - begin));
        const std::size_t first = line.find_first_not_of(' ');
        if (first != std::string::npos) last = line.substr(first, line.find_last_not_of(' ') + 1 - first);
        begin = end + 1;
    }
    return last.size() > 300 ? last.substr(0, 300) + "..." : last;
}

}  // namespace

std::string gnuplot_quoted(std::string_view text) {
    // Plain runs go in single quotes. The characters gnuplot's line reader acts on, even inside
    // quotes, go in double quotes as octal escapes: its macro expander toggles its quote state on
    // every ' and " (so a " in a '...' string can expose an @name to expansion), `...` runs a
    // command inside "...", and its own '' escape fails at a string's start. So the script line
    // holds no ', ", @ or ` of the text.
    std::string out;
    bool in_single = false, in_double = false;
    const auto end_run = [&] {
        if (in_single || in_double) out += in_single ? '\'' : '"';
        in_single = in_double = false;
    };
    for (const char c : text) {
        const bool special = c == '\n' || c == '\'' || c == '"' || c == '@' || c == '`';
        if (special && !in_double) {
            end_run();
            out += out.empty() ? "\"" : ".\"";
            in_double = true;
        } else if (!special && !in_single) {
            end_run();
            out += out.empty() ? "'" : ".'";
            in_single = true;
        }
        if (c == '\n') {
            out += "\\n";
        } else if (special) {
            out += fmt::format("\\{:03o}", static_cast<unsigned char>(c));
        } else {
            out += is_control(c) ? ' ' : c;
        }
    }
    end_run();
    return out.empty() ? "''" : out;
}

GnuplotRun run_gnuplot(const fs::path& dir, const std::string& script) {
    GnuplotRun run;
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
        run.error = fmt::format("the folder {} does not exist", dir.string());
        return run;
    }
    // gnuplot's stderr goes to an unnamed temporary file, read back for the note when it fails.
    std::string name = (fs::temp_directory_path(error) / "clustersim-gnuplot-XXXXXX").string();
    const int errors = error ? -1 : ::mkostemp(name.data(), O_CLOEXEC);
    if (errors >= 0) ::unlink(name.c_str());

    std::vector<std::string> args = {"gnuplot", script};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (errors >= 0) {
        posix_spawn_file_actions_adddup2(&actions, errors, STDERR_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    }
    // The child changes folder, not this process: other threads may be drawing charts elsewhere.
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    pid_t pid = 0;
    const int started = ::posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (started != 0) {
        if (errors >= 0) ::close(errors);
        run.installed = started != ENOENT;  // the folder exists, so ENOENT is gnuplot's absence
        run.error = run.installed ? fmt::format("cannot start gnuplot: {}", std::generic_category().message(started))
                                  : "gnuplot is not on PATH";
        return run;
    }
    int status = 0;
    pid_t waited = 0;
    do {
        waited = ::waitpid(pid, &status, 0);
    } while (waited < 0 && errno == EINTR);
    if (waited < 0) {
        run.error = fmt::format("cannot wait for gnuplot: {}", std::generic_category().message(errno));
    } else {
        run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (errors >= 0) {
        if (!run.ok() && run.error.empty()) {
            std::string text;
            char buffer[4096];
            for (off_t at = 0; text.size() < 65536;) {
                const ssize_t n = ::pread(errors, buffer, sizeof buffer, at);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) break;
                text.append(buffer, static_cast<std::size_t>(n));
                at += n;
            }
            run.error = last_line(text);
        }
        ::close(errors);
    }
    if (!run.ok() && run.error.empty())
        run.error = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status)) : "no message on stderr";
    return run;
}

ChartFiles write_chart(const fs::path& dir, const std::string& stem, const ChartSpec& spec) {
    check_stem(stem);
    for (const auto& s : spec.series) check_color(s.color);
    const fs::path svg = dir / (stem + ".svg");
    const fs::path script = dir / (stem + ".gp");
    const fs::path data_file = dir / (stem + ".dat");
    std::error_code ignored;
    fs::remove(svg, ignored);

    ChartFiles files;
    std::string data = fmt::format(
        "# {}.dat: the data of {}.svg, drawn by {}.gp. One block per series (gnuplot's index), columns x, y.\n", stem,
        stem, stem);
    std::string plot;
    std::vector<std::string> left_out;
    std::size_t block = 0;
    for (const auto& s : spec.series) {
        std::string rows;
        std::size_t n = 0;
        for (const auto& [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            rows += fmt::format("{}\t{}\n", x, y);
            ++n;
        }
        if (n == 0) {
            left_out.push_back(one_line(s.title));
            continue;
        }
        data += fmt::format("{}# index {}: {}\n{}", block == 0 ? "" : "\n\n", block, one_line(s.title), rows);
        plot += fmt::format("{}{} index {} using 1:2 with {} title {}", block == 0 ? "plot " : ", \\\n     ",
                            block == 0 ? gnuplot_quoted(stem + ".dat") : "''", block, style_clause(s),
                            gnuplot_quoted(s.title));
        files.points += n;
        ++block;
    }
    if (files.points == 0) {
        fs::remove(script, ignored);
        fs::remove(data_file, ignored);
        files.note = fmt::format("no chart {}: {}", svg.string(),
                                 spec.series.empty() ? "it has no series" : "none of its series has a point to draw");
        return files;
    }

    std::string gp = fmt::format(
        "# {}.gp: written by clustersim. Redraw with `gnuplot {}.gp` in this folder (reads {}.dat, writes {}.svg).\n",
        stem, stem, stem, stem);
    gp += "set terminal svg size 960,640 dynamic noenhanced font 'sans,12' background rgb 'white'\n";
    gp += fmt::format("set output {}\n", gnuplot_quoted(stem + ".svg"));
    if (!spec.title.empty()) gp += fmt::format("set title {}\n", gnuplot_quoted(spec.title));
    if (!spec.x_label.empty()) gp += fmt::format("set xlabel {}\n", gnuplot_quoted(spec.x_label));
    if (!spec.y_label.empty()) gp += fmt::format("set ylabel {}\n", gnuplot_quoted(spec.y_label));
    if (spec.log_x) gp += "set logscale x\n";
    if (spec.log_y) gp += "set logscale y\n";
    if (spec.y_min || spec.y_max) {
        const auto end = [](const std::optional<double>& v) { return v ? fmt::format("{}", *v) : std::string("*"); };
        gp += fmt::format("set yrange [{}:{}]\n", end(spec.y_min), end(spec.y_max));
    }
    gp += "set grid\nset key outside right top vertical\nset datafile separator '\\t'\n";
    // Labelled points keep off the border, with room on the right for the texts (ignored where a
    // range end is fixed).
    if (!spec.labels.empty()) gp += "set offsets graph 0.05, graph 0.2, graph 0.08, graph 0.08\n";
    int label = 0;
    for (const auto& l : spec.labels) {
        if (!std::isfinite(l.x) || !std::isfinite(l.y)) continue;
        gp += fmt::format("set label {} {} at {}, {} left offset 0.8,0.5 font ',10' front\n", ++label,
                          gnuplot_quoted(l.text), l.x, l.y);
    }
    gp += plot + "\n";
    write_text(data_file, data);
    write_text(script, gp);

    const GnuplotRun run = run_gnuplot(dir, stem + ".gp");
    files.drawn = run.ok() && fs::exists(svg);
    if (!files.drawn) fs::remove(svg, ignored);  // a failed run may leave half a file
    std::string left;
    if (!left_out.empty()) {
        left = fmt::format("; left out {} series without points:", left_out.size());
        for (std::size_t i = 0; i < left_out.size(); ++i) left += (i == 0 ? " " : ", ") + gnuplot_quoted(left_out[i]);
    }
    if (files.drawn) {
        files.note = fmt::format("drew {} ({} points in {} series{})", svg.string(), files.points, block, left);
    } else if (!run.installed) {
        files.note = fmt::format(
            "gnuplot is not on PATH, so {} was not drawn (install gnuplot, Debian package gnuplot-nox, and run "
            "`gnuplot {}.gp` in {}){}",
            svg.string(), stem, dir.string(), left);
    } else {
        files.note = fmt::format("gnuplot failed on {} (exit status {}: {}), so {} was not drawn{}", script.string(),
                                 run.exit_status, run.error, svg.string(), left);
    }
    return files;
}

}  // namespace clustersim
