// Progress of a long job on stderr: a bar redrawn in place on a terminal, plain periodic lines
// otherwise (logs, CI), nothing when asked for quiet.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace clustersim {

enum class ProgressStyle { automatic, bar, lines, none };

// The style the command-line option names: "auto", "bar", "lines" or "none" (anything else: auto).
ProgressStyle progress_style(const std::string& name);

class ProgressMeter {
public:
    // `automatic` is a bar when `out` is a terminal and lines otherwise. Without `milestones`, lines
    // come only every 10 s (a short preliminary phase then prints nothing).
    ProgressMeter(std::FILE* out, ProgressStyle style, std::size_t total, std::string label, bool milestones = true);
    // Counts `n` more items done; redraws at most ten times a second (a line every 10 s or each quarter).
    void advance(std::size_t n = 1);
    // The last state, and a newline after a bar.
    void finish();

    // "1:05" or "2:03:04".
    static std::string clock(double seconds);

private:
    void draw(bool final);

    std::FILE* out_;
    ProgressStyle style_;
    std::size_t total_;
    std::size_t done_ = 0;
    std::string label_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point last_draw_;
    std::size_t last_quarter_ = 0;
    bool milestones_ = true;
    bool drawn_ = false;
    bool finished_ = false;
};

}  // namespace clustersim
