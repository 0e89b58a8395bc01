// Progress bar and periodic progress lines (see progress_meter.hpp).
#include "sim/planning/progress_meter.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace clustersim {

ProgressStyle progress_style(const std::string& name) {
    if (name == "bar") return ProgressStyle::bar;
    if (name == "lines") return ProgressStyle::lines;
    if (name == "none") return ProgressStyle::none;
    return ProgressStyle::automatic;
}

ProgressMeter::ProgressMeter(std::FILE* out, ProgressStyle style, std::size_t total, std::string label, bool milestones)
    : out_(out), style_(style), total_(total), label_(std::move(label)), milestones_(milestones) {
    if (style_ == ProgressStyle::automatic)
        style_ = ::isatty(::fileno(out_)) ? ProgressStyle::bar : ProgressStyle::lines;
    started_ = std::chrono::steady_clock::now();
    last_draw_ = started_;
    if (style_ == ProgressStyle::bar && total_ > 0) draw(false);
}

std::string ProgressMeter::clock(double seconds) {
    const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

void ProgressMeter::advance(std::size_t n) {
    done_ = std::min(total_, done_ + n);
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_draw_).count();
    if (style_ == ProgressStyle::bar) {
        if (since >= 0.1 || done_ == total_) draw(false);
    } else if (style_ == ProgressStyle::lines) {
        const std::size_t quarter = total_ > 0 ? done_ * 4 / total_ : 0;
        if (since >= 10 || (milestones_ && quarter > last_quarter_)) {
            last_quarter_ = quarter;
            if (done_ < total_) draw(false);  // the last line is finish()'s
        }
    }
}

void ProgressMeter::finish() {
    if (finished_) return;
    finished_ = true;
    if (style_ == ProgressStyle::none || total_ == 0) return;
    if (style_ == ProgressStyle::lines && !milestones_ && !drawn_) return;
    draw(true);
}

void ProgressMeter::draw(bool final) {
    last_draw_ = std::chrono::steady_clock::now();
    drawn_ = true;
    const double elapsed = std::chrono::duration<double>(last_draw_ - started_).count();
    const double percent = total_ > 0 ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
    std::string eta = "ETA --:--";
    if (done_ == total_) {
        eta = "done";
    } else if (done_ > 0) {
        eta = "ETA " + clock(elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_));
    }
    if (style_ == ProgressStyle::bar) {
        constexpr std::size_t kWidth = 30;
        const std::size_t filled = total_ > 0 ? done_ * kWidth / total_ : kWidth;
        const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
        fmt::print(out_, "\r{} [{}] {}/{} {:3.0f}%  {} elapsed  {}   ", label_, bar, done_, total_, percent,
                   clock(elapsed), eta);
        if (final) fmt::print(out_, "\n");
    } else {
        fmt::print(out_, "{}: {}/{} done ({:.0f}%), {} elapsed, {}\n", label_, done_, total_, percent, clock(elapsed),
                   eta);
    }
    std::fflush(out_);
}

}  // namespace clustersim
