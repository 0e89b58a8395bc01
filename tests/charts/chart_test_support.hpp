// Helpers shared by the chart tests: scratch folders, reading files, and whether gnuplot is installed.
#pragma once

#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace clustersim::testing {

namespace fs = std::filesystem;

// A fresh folder under the system's temporary directory, removed when the test ends.
struct ChartScratch {
    fs::path path;
    explicit ChartScratch(const std::string& name)
        : path(fs::temp_directory_path() / fmt::format("clustersim-charts-{}-{}", name, ::getpid())) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~ChartScratch() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    ChartScratch(const ChartScratch&) = delete;
    ChartScratch& operator=(const ChartScratch&) = delete;
};

inline std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

inline std::vector<std::string> text_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Whether an executable gnuplot is on PATH (CI installs gnuplot-nox).
inline bool gnuplot_on_path() {
    const char* path = std::getenv("PATH");
    if (!path) return false;
    std::string_view rest(path);
    while (true) {
        const auto colon = rest.find(':');
        const std::string dir(rest.substr(0, colon));
        if (!dir.empty() && ::access((fs::path(dir) / "gnuplot").c_str(), X_OK) == 0) return true;
        if (colon == std::string_view::npos) return false;
        rest.remove_prefix(colon + 1);
    }
}

// Sets PATH to an empty folder while it lives, so that no gnuplot is found.
struct PathWithoutGnuplot {
    ChartScratch empty{"empty-path"};
    std::string saved;
    bool had = false;
    PathWithoutGnuplot() {
        if (const char* p = std::getenv("PATH")) {
            saved = p;
            had = true;
        }
        ::setenv("PATH", empty.path.c_str(), 1);
    }
    ~PathWithoutGnuplot() {
        if (had) {
            ::setenv("PATH", saved.c_str(), 1);
        } else {
            ::unsetenv("PATH");
        }
    }
    PathWithoutGnuplot(const PathWithoutGnuplot&) = delete;
    PathWithoutGnuplot& operator=(const PathWithoutGnuplot&) = delete;
};

}  // namespace clustersim::testing
