// Staged output folders for runs.
#include "run_output.hpp"

#include "sim/input/diagnostics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

namespace clustersim {

namespace fs = std::filesystem;

namespace {

// Files that mark a folder as an earlier result of this program (a run's summary, the validation report),
// which a new result may replace.
constexpr const char* kResultMarkers[] = {"summary.json", "validation.csv"};

[[noreturn]] void refuse(const fs::path& dir, const std::string& why) {
    Diagnostics d;
    d.error(SourceLocation{"--out", 0, 0}, "", fmt::format("{}: {}", dir.string(), why));
    d.throw_if_any();
    throw std::logic_error("unreachable");
}

// A result replaces what is at `dir` once written, so `dir` must be new, empty, or an earlier result; never
// a file, the working folder or a folder above it.
void check_replaceable(const fs::path& dir) {
    std::error_code ec;
    const fs::file_status status = fs::symlink_status(dir, ec);
    if (ec || !fs::exists(status)) return;
    if (!fs::is_directory(status))
        refuse(dir, "exists and is not a folder; the results are a folder (choose another --out)");
    const fs::path target = fs::weakly_canonical(dir, ec);
    const fs::path here = fs::weakly_canonical(fs::current_path(ec), ec);
    if (!ec) {
        const auto [t, h] = std::mismatch(target.begin(), target.end(), here.begin(), here.end());
        if (t == target.end())
            refuse(dir, "is the working folder or a folder above it, which the results would replace (choose a new "
                        "folder for --out)");
    }
    if (fs::is_empty(dir, ec)) return;
    for (const char* marker : kResultMarkers)
        if (fs::exists(dir / marker, ec)) return;
    refuse(dir, "holds files that are not an earlier clustersim result (no summary.json), which the results would "
                "replace (choose a new folder for --out, or empty this one)");
}

}  // namespace

RunOutput::RunOutput(fs::path final_dir) : final_(std::move(final_dir)) {
    check_replaceable(final_);
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
