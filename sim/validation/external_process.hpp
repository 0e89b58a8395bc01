// Running the optional helper programs the validation report uses (git for the commit line, gnuplot for
// the chart) without a shell, so that paths need no quoting.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

// The full path of `program` on PATH, or nullopt when it is not installed.
std::optional<std::filesystem::path> find_on_path(const std::string& program);

struct ProcessResult {
    int exit_code = -1;  // -1 when the program could not be started or was killed by a signal
    std::string output;  // what it wrote to stdout (stderr goes to /dev/null)
};

// Runs argv[0] (looked up on PATH) with the given arguments in `working_dir` and waits for it.
// Throws std::runtime_error only when no process can be created at all.
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& working_dir);

}  // namespace clustersim
