// `clustersim kernels --gpu NAME --in SHAPES.csv --out PRED.csv`: predicts the time of every operator
// shape in a CSV with the kernel cost model, and says how much of the answer rests on each provenance.
#include "command.hpp"
#include "kernels/kernel_cost_model.hpp"
#include "sim/input/diagnostics.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace clustersim {
namespace {

struct KernelsArgs {
    std::string gpu;
    std::string in;
    std::string out;
    std::string kernels_dir = default_kernels_dir();
};

struct ProvenanceTally {
    int rows = 0;
    double time_us = 0;
};

// Reads back the predictions run_kernels_query wrote (its last two columns are time_us and
// provenance), so the summary describes exactly the file the user got.
std::map<std::string, ProvenanceTally> tally_provenance(const std::string& pred_csv) {
    std::ifstream in(pred_csv);
    if (!in) throw std::runtime_error("cannot read back " + pred_csv);
    std::map<std::string, ProvenanceTally> tally;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto last = line.rfind(',');
        const auto before = line.rfind(',', last - 1);
        if (last == std::string::npos || before == std::string::npos)
            throw std::runtime_error(fmt::format("unexpected row in {}: {}", pred_csv, line));
        ProvenanceTally& t = tally[line.substr(last + 1)];
        ++t.rows;
        t.time_us += std::stod(line.substr(before + 1, last - before - 1));
    }
    return tally;
}

// A file the command will write must be one it can create: else a user error naming the option and
// path (before any work, and leaving no file behind).
void check_writable(const std::string& path, const char* option) {
    std::error_code ec;
    const bool existed = std::filesystem::exists(path, ec);
    if (std::filesystem::is_directory(path, ec))
        throw option_error(path, option, "is a folder; expected a file to write");
    {
        std::ofstream probe(path, std::ios::app);
        if (!probe)
            throw option_error(path, option,
                               "cannot create or write this file; give a path in a folder you can write to");
    }
    if (!existed) std::filesystem::remove(path, ec);
}

int run_kernels(const KernelsArgs& args) {
    // Loaded here as well as inside run_kernels_query to say which tables the answers could rest on.
    const GpuProfile profile = load_gpu_profile(args.kernels_dir, args.gpu);
    check_writable(args.out, "--out");
    run_kernels_query(args.gpu, args.in, args.out, args.kernels_dir);

    const auto tally = tally_provenance(args.out);
    int rows = 0;
    double total_us = 0;
    for (const auto& [name, t] : tally) {
        rows += t.rows;
        total_us += t.time_us;
    }
    fmt::print("{}: {} shape{} predicted on {} ({}); written to {}\n", args.in, rows, rows == 1 ? "" : "s",
               profile.spec.name, profile.spec.description, args.out);
    for (const auto& [name, t] : tally)
        fmt::print("  provenance {:<12} {:>6} row{} {:>6.1f}% of the predicted time\n", name, t.rows,
                   t.rows == 1 ? " " : "s", total_us > 0 ? 100.0 * t.time_us / total_us : 0.0);
    if (profile.tables.empty()) {
        fmt::print(stderr,
                   "note: {} has no calibration tables yet (none under {}/calibration/{}), so every prediction is "
                   "the datasheet roofline at the spec's efficiency (compute {}, memory {}), provenance roofline; "
                   "it ignores launch latency and under-predicts small kernels.\n",
                   profile.spec.name, args.kernels_dir, profile.spec.name, profile.spec.compute_efficiency,
                   profile.spec.memory_efficiency);
    } else {
        std::size_t table_rows = 0;
        for (const auto& t : profile.tables) table_rows += t.rows.size();
        fmt::print("  {} table{} ({} rows){}\n", profile.tables.size(), profile.tables.size() == 1 ? "" : "s",
                   table_rows, profile.derived_from.empty() ? "" : ", derived from " + profile.derived_from);
    }
    return 0;
}

}  // namespace

Command add_kernels_command(CLI::App& app) {
    auto args = std::make_shared<KernelsArgs>();
    CLI::App* cmd = app.add_subcommand("kernels", "Predict operator times on a GPU for the shapes in a CSV "
                                                  "(columns: op,dtype,m,n,k,groups,batch,heads,kv_heads,"
                                                  "head_dim,seq,context,bytes)");
    cmd->add_option("--gpu", args->gpu, "GPU name (a file stem in kernels/gpus/, e.g. h100-sxm)")->required();
    cmd->add_option("--in", args->in, "Query CSV of operator shapes")->required();
    cmd->add_option("--out", args->out, "Where to write the predictions (input columns + time_us,provenance)")
        ->required();
    cmd->add_option("--kernels-dir", args->kernels_dir,
                    "Folder holding gpus/ and calibration/ (default: $CLUSTERSIM_KERNELS_DIR or the source tree's "
                    "kernels/)")
        ->capture_default_str();
    return {cmd, [args] { return run_kernels(*args); }};
}

}  // namespace clustersim
