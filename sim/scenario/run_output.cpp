// Staged output folders for runs.
#include "run_output.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <system_error>

namespace clustersim {

namespace fs = std::filesystem;

RunOutput::RunOutput(fs::path final_dir) : final_(std::move(final_dir)) {
    staging_ = final_;
    staging_ += ".partial";
    std::error_code ec;
    fs::remove_all(staging_, ec);
    fs::create_directories(staging_, ec);
    if (ec) {
        throw std::runtime_error(
            fmt::format("cannot create the output folder {}: {}", staging_.string(), ec.message()));
    }
}

RunOutput::~RunOutput() {
    if (!committed_) {
        std::error_code ec;
        fs::remove_all(staging_, ec);  // a run that did not finish leaves nothing behind
    }
}

std::ofstream RunOutput::open(std::string_view name) const {
    std::ofstream out(file(name), std::ios::binary);
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", file(name).string()));
    return out;
}

void RunOutput::write_text(std::string_view name, const std::string& text) const {
    auto out = open(name);
    out << text;
}

void RunOutput::write_json(std::string_view name, const nlohmann::ordered_json& json) const {
    write_text(name, json.dump(2) + "\n");
}

void RunOutput::commit() {
    std::error_code ec;
    fs::remove_all(final_, ec);
    fs::rename(staging_, final_, ec);
    if (ec) {
        throw std::runtime_error(fmt::format("cannot move {} to {}: {}", staging_.string(), final_.string(), ec.message()));
    }
    committed_ = true;
}

}  // namespace clustersim
