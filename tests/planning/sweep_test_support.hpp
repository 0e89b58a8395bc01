// Helpers shared by the sweep tests: sweep files written into scratch folders, errors as text, CSV rows.
#pragma once

#include "sim/input/diagnostics.hpp"
#include "sim/planning/sweep_runner.hpp"
#include "sim/planning/sweep_spec.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace clustersim::testing {

namespace fs = std::filesystem;

// The base scenario of the tests: GPT 1.7B on 48 H100 (one run takes milliseconds).
inline std::string base_scenario() {
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/tests/planning/fixtures/gpt-1700m-base.yaml";
}

// A fresh folder under the system's temporary directory, removed when the test ends.
struct SweepScratch {
    fs::path path;
    explicit SweepScratch(const std::string& name)
        : path(fs::temp_directory_path() / fmt::format("clustersim-planning-{}-{}", name, ::getpid())) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~SweepScratch() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    SweepScratch(const SweepScratch&) = delete;
    SweepScratch& operator=(const SweepScratch&) = delete;

    // Writes a sweep file whose first line names the test base scenario; returns its path.
    fs::path sweep(const std::string& name, const std::string& rest) const {
        const fs::path file = path / (name + ".yaml");
        std::ofstream(file) << "base: " << base_scenario() << "\n" << rest;
        return file;
    }
};

inline std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Cells of one CSV line without quoted commas (the tests' rows have none where it matters).
inline std::vector<std::string> cells_of(const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    return cells;
}

// The text of the InputError that reading (and, with `run`, checking the plans of) a sweep throws,
// or "" when there is none.
inline std::string sweep_errors(const fs::path& file, const fs::path& out_dir = {}) {
    try {
        const SweepSpec spec = read_sweep_spec(file);
        if (!out_dir.empty()) {
            SweepOptions options;
            options.out_dir = out_dir;
            options.jobs = 2;
            options.progress = ProgressStyle::none;
            (void)run_sweep(spec, options);
        }
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

inline SweepReport run_quietly(const fs::path& file, const fs::path& out_dir, int jobs) {
    SweepOptions options;
    options.out_dir = out_dir;
    options.jobs = jobs;
    options.progress = ProgressStyle::none;
    return run_sweep(read_sweep_spec(file), options);
}

}  // namespace clustersim::testing
