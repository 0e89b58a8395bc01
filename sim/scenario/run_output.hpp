// RunOutput: the folder a run writes its results to, staged so that a failed run leaves nothing
// that looks like a result.
//
// Files are written into "<dir>.partial" and the folder is renamed to "<dir>" by commit() once the
// run has finished; an earlier result in "<dir>" is replaced only then.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace clustersim {

class RunOutput {
public:
    explicit RunOutput(std::filesystem::path final_dir);
    ~RunOutput();
    RunOutput(const RunOutput&) = delete;
    RunOutput& operator=(const RunOutput&) = delete;

    // The path a file of this run is written to (inside the staging folder until commit()).
    std::filesystem::path file(std::string_view name) const { return staging_ / std::string(name); }
    std::ofstream open(std::string_view name) const;
    void write_text(std::string_view name, const std::string& text) const;
    // JSON with two-space indentation and a final newline; key order as inserted.
    void write_json(std::string_view name, const nlohmann::ordered_json& json) const;

    // Publishes the staged folder as the final one.
    void commit();
    const std::filesystem::path& final_dir() const { return final_; }

private:
    std::filesystem::path final_;
    std::filesystem::path staging_;
    bool committed_ = false;
};

}  // namespace clustersim
