// Helpers shared by the serving tests: temporary files, reading a file whole, and the text of every diagnostic.
#pragma once

#include "sim/input/diagnostics.hpp"
#include "sim/scenario/scenario.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace clustersim::serving_testing {

namespace fs = std::filesystem;

// A path under the system temporary folder unique to this process (tests may run in parallel).
inline fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / ("clustersim-serving-test-" + std::to_string(::getpid()) + "-" + name);
}

// A file under the system temporary folder with the given content; removed when destroyed.
class TempFile {
public:
    TempFile(const std::string& name, const std::string& content) : path_(temp_path(name)) {
        std::ofstream(path_) << content;
    }
    ~TempFile() {
        std::error_code ec;
        fs::remove(path_, ec);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    std::string path() const { return path_.string(); }

private:
    fs::path path_;
};

// A file's whole text.
inline std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Every diagnostic of loading a scenario file, one per line; empty if it loads.
inline std::string errors_of(const std::string& path) {
    try {
        load_scenario(path, std::nullopt);
    } catch (const InputError& e) {
        std::string out;
        for (const auto& d : e.diagnostics()) out += format(d) + "\n";
        return out;
    }
    return "";
}

inline std::string all_messages(const Diagnostics& d) {
    std::string out;
    for (const auto& e : d.errors()) out += format(e) + "\n";
    return out;
}

}  // namespace clustersim::serving_testing
