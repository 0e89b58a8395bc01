// `clustersim layer`: the predicted time of one transformer layer on one GPU, operator by operator.
#include "command.hpp"
#include "kernels/kernel_cost_model.hpp"
#include "models/model_loader.hpp"
#include "sim/execution/layer_cost.hpp"
#include "sim/input/diagnostics.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace clustersim {
namespace {

struct LayerArgs {
    std::string model;
    std::string gpu;
    std::string phase;
    std::int64_t batch = 1;
    std::optional<std::int64_t> seq;
    std::optional<std::int64_t> context;
    std::optional<std::int64_t> query_tokens;
    int tp = 1;
    int ep = 1;
    std::optional<int> layer;
    std::string precision = "bf16";
    std::string kv_cache_dtype = "bf16";
    bool json = false;
    std::string kernels_dir = default_kernels_dir();
};

// A command-line problem, reported like an input-file problem (exit 2).
[[noreturn]] void fail(const std::string& option, const std::string& message) {
    Diagnostics d;
    d.error({"command line", 0, 0}, option, message);
    d.throw_if_any();
    throw std::logic_error("unreachable");
}

OperatorGraphOptions graph_options(const LayerArgs& a) {
    OperatorGraphOptions o;
    o.precision = a.precision == "fp8" ? Precision::fp8 : Precision::bf16;
    o.kv_dtype = a.kv_cache_dtype == "fp8" ? DType::fp8 : DType::bf16;
    o.layout.tp = a.tp;
    o.layout.ep = a.ep;
    if (a.phase == "prefill") {
        if (!a.seq) fail("--seq", "prefill needs --seq (new tokens per sequence)");
        if (a.context) fail("--context", "--context is for decode; prefill takes --seq");
        if (a.query_tokens) fail("--query-tokens", "--query-tokens is for decode; prefill takes --seq");
        o.phase = Phase::prefill;
        o.batch.sequences = a.batch;
        o.batch.seq = *a.seq;
    } else {
        if (!a.context) fail("--context", "decode needs --context (cached tokens per request)");
        if (a.seq) fail("--seq", "--seq is for prefill; decode takes --context");
        o.phase = Phase::decode;
        o.batch.kv_lengths.assign(static_cast<std::size_t>(a.batch), *a.context);
        o.batch.query_tokens = a.query_tokens.value_or(1);
    }
    return o;
}

int run_layer(const LayerArgs& args) {
    const ModelSpec m = load_model_or_throw(args.model);
    const OperatorGraphOptions options = graph_options(args);
    const int layer = args.layer.value_or(representative_layer(m));
    if (layer < 0 || layer >= m.layers)
        fail("--layer", fmt::format("layer {} is outside {}'s layers 0..{}", layer, m.name, m.layers - 1));
    try {
        validate_layout(m, options.layout);
    } catch (const std::invalid_argument& e) {
        fail(args.ep > 1 ? "--tp/--ep" : "--tp", e.what());
    }
    const KernelCostModel cost_model(load_gpu_profile(args.kernels_dir, args.gpu));
    // Everything the user chose is checked above, but for the size of the batch: the work grows with the
    // product of its options, and a large enough product has a time past the simulator's clock. What else
    // predict_layer_cost throws now is a bug (exit 1).
    const LayerCost cost = [&] {
        try {
            return predict_layer_cost(m, layer, options, cost_model);
        } catch (const TimeOverflow& e) {
            const bool prefill = options.phase == Phase::prefill;
            fail(prefill ? "--batch/--seq" : "--batch/--context/--query-tokens",
                 fmt::format("{} of {} is too much work for one layer on one GPU: {}",
                             prefill ? fmt::format("--batch {} x --seq {}", args.batch, *args.seq)
                                     : fmt::format("--batch {} x --context {} x --query-tokens {}", args.batch,
                                                   *args.context, args.query_tokens.value_or(1)),
                             m.name, e.what()));
        }
    }();
    if (args.json) {
        fmt::print("{}\n", layer_cost_json(cost).dump(2));
    } else {
        fmt::print("{}", layer_cost_text(cost));
        if (cost_model.profile().tables.empty())
            fmt::print("note: {} has no calibration tables yet, so every time above is the datasheet roofline at "
                       "the spec's efficiency (compute {}, memory {}); it ignores launch latency and under-predicts "
                       "small kernels.\n",
                       cost.gpu, cost_model.profile().spec.compute_efficiency,
                       cost_model.profile().spec.memory_efficiency);
    }
    return 0;
}

}  // namespace

Command add_layer_command(CLI::App& app) {
    auto args = std::make_shared<LayerArgs>();
    CLI::App* cmd = app.add_subcommand(
        "layer", "Predict the time of one transformer layer on one GPU, with a per-operator breakdown");
    cmd->add_option("--model", args->model, "Model: a bundled name, a model YAML or a Hugging Face config.json")
        ->required();
    cmd->add_option("--gpu", args->gpu, "GPU name (a file stem in kernels/gpus/, e.g. h100-sxm)")->required();
    cmd->add_option("--phase", args->phase, "prefill or decode")
        ->required()
        ->check(CLI::IsMember({"prefill", "decode"}));
    cmd->add_option("--batch", args->batch, "Sequences (prefill) or requests (decode) on this GPU")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
    cmd->add_option("--seq", args->seq, "Prefill: new tokens per sequence")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
    cmd->add_option("--context", args->context, "Decode: cached tokens per request")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 24));
    cmd->add_option("--query-tokens", args->query_tokens,
                    "Decode: tokens per request in one step (1 + speculative drafts, e.g. 2 with one MTP draft)")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{64}));
    cmd->add_option("--tp", args->tp, "Tensor parallelism (attention, dense FFN, shared experts)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--ep", args->ep, "Expert parallelism (routed experts per GPU = routed / ep)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--layer", args->layer,
                    "Layer index (default: the first MoE layer of an MoE model, else layer 0)");
    cmd->add_option("--precision", args->precision, "GEMM precision: bf16, or fp8 (adds quantize operators)")
        ->capture_default_str()
        ->check(CLI::IsMember({"bf16", "fp8"}));
    cmd->add_option("--kv-cache-dtype", args->kv_cache_dtype,
                    "KV cache element type: bf16, or fp8 (decode attention reads half the bytes)")
        ->capture_default_str()
        ->check(CLI::IsMember({"bf16", "fp8"}));
    cmd->add_option("--kernels-dir", args->kernels_dir,
                    "Folder holding gpus/ and calibration/ (default: $CLUSTERSIM_KERNELS_DIR or the source tree's "
                    "kernels/)")
        ->capture_default_str();
    cmd->add_flag("--json", args->json, "Print JSON for scripts instead of text");
    return {cmd, [args] { return run_layer(*args); }};
}

}  // namespace clustersim
