// `clustersim model MODEL [--json]`: parameters, FLOPs per token, KV bytes per token and a per-layer
// breakdown of a bundled model, a model YAML or a Hugging Face config.json.
#include "command.hpp"
#include "models/model_loader.hpp"
#include "models/model_report.hpp"

#include <fmt/format.h>

#include <memory>
#include <string>

namespace clustersim {
namespace {

struct ModelArgs {
    std::string model;
    bool json = false;
    ModelReportOptions report;
};

int run_model(const ModelArgs& args) {
    const ModelSpec m = load_model_or_throw(args.model);
    if (args.json) {
        fmt::print("{}\n", model_report_json(m, args.report).dump(2));
    } else {
        fmt::print("{}", model_report_text(m, args.report));
    }
    return 0;
}

}  // namespace

Command add_model_command(CLI::App& app) {
    auto args = std::make_shared<ModelArgs>();
    CLI::App* cmd = app.add_subcommand("model", "Print a model's parameters, FLOPs per token, KV cache bytes per "
                                                "token and per-layer breakdown");
    cmd->add_option("model", args->model,
                    "A bundled model name (e.g. deepseek-v3; see models/), a model YAML or a Hugging Face config.json")
        ->required();
    cmd->add_flag("--json", args->json, "Print JSON for scripts instead of text");
    cmd->add_option("--seq", args->report.seq, "Sequence length for the attention FLOPs per token")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--kv-bytes", args->report.kv_bytes_per_element,
                    "Bytes per KV-cache element (2 for BF16, 1 for FP8)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    return {cmd, [args] { return run_model(*args); }};
}

}  // namespace clustersim
