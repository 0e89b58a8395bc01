// Reading a training plan from a scenario file (see training_plan.hpp).
#include "sim/training/training_plan.hpp"

#include "models/model_loader.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"
#include "sim/scenario/scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

// A model named like a shipped one ("deepseek-v3") is looked up in models/; anything that looks
// like a path is taken relative to the scenario file.
std::string model_reference(const std::string& written, const ScenarioContext& context) {
    const bool path_like = written.find('/') != std::string::npos || written.ends_with(".yaml") ||
                           written.ends_with(".json");
    if (!path_like) return written;
    const fs::path p(written);
    return p.is_absolute() ? written : (context.scenario_dir / p).string();
}

}  // namespace

const char* to_string(FlopsConvention c) { return c == FlopsConvention::megatron ? "megatron" : "causal"; }

std::vector<int> default_layer_split(int layers, int parts) {
    std::vector<int> split(static_cast<std::size_t>(parts), layers / parts);
    int extra = layers % parts;
    // Middle parts first (1, 2, ...), then the last, then the first: the ends carry the embedding,
    // the LM head and the MTP modules.
    for (int p = 1; p < parts - 1 && extra > 0; ++p, --extra) ++split[static_cast<std::size_t>(p)];
    if (extra > 0 && parts > 1) ++split.back(), --extra;
    if (extra > 0) ++split.front();
    return split;
}

ParallelLayout part_layout(const TrainingPlan& plan, int part) {
    ParallelLayout l;
    l.tp = plan.parallel.tp;
    l.ep = plan.parallel.ep;
    l.sequence_parallel = plan.parallel.sequence_parallel && plan.parallel.tp > 1;
    l.first_layer = std::accumulate(plan.layers_per_part.begin(), plan.layers_per_part.begin() + part, 0);
    l.last_layer = l.first_layer + plan.layers_per_part[static_cast<std::size_t>(part)];
    const bool last = part + 1 == static_cast<int>(plan.layers_per_part.size());
    l.include_mtp = last && plan.include_mtp && plan.model.mtp_layers > 0;
    return l;
}

TrainingPlan read_training_plan(MapReader& root, const ScenarioContext& context) {
    TrainingPlan plan;
    auto& diagnostics = root.document()->diagnostics();

    const std::string model_name =
        root.required<std::string>("model", "a shipped model name (models/<name>.yaml) or a path to a model YAML or config.json");
    if (!model_name.empty()) {
        // The model file's own problems keep their file, line and key; this line says who asked for it.
        const std::size_t before = diagnostics.size();
        plan.model = load_model(model_reference(model_name, context), diagnostics);
        if (diagnostics.size() != before) root.error("model", fmt::format("cannot load model \"{}\" (see above)", model_name));
    }
    plan.gpu = root.required<std::string>("gpu", "GPU spec and calibration name (kernels/gpus/<gpu>.yaml), e.g. h800-sxm");

    const std::size_t errors_before = diagnostics.size();
    TopologySpec topo = read_topology_spec(root, "topology");
    if (!topo.resolved_file.empty()) plan.topology = load_topology(topo, diagnostics);
    plan.topology_file = topo.file;
    const bool topology_ok = diagnostics.size() == errors_before && plan.topology;

    plan.gpus = root.required<int>("gpus", "GPUs in the whole job", at_least(1));

    MapReader par = root.child("parallel", "the parallel layout: tp, pp, ep, zero_stage", false);
    auto& p = plan.parallel;
    p.tp = par.optional<int>("tp", 1, "tensor parallelism (attention, dense FFN, shared experts)", at_least(1));
    p.pp = par.optional<int>("pp", 1, "pipeline-parallel ranks", at_least(1));
    p.ep = par.optional<int>("ep", 1, "expert parallelism (ranks the routed experts are spread over)", at_least(1));
    p.sequence_parallel = par.optional<bool>("sequence_parallel", true, "Megatron sequence parallelism with TP");
    p.zero_stage = par.optional<int>("zero_stage", 1, "ZeRO stage of the data-parallel optimizer (0-3)", in_range(0, 3));
    const std::vector<int> split = par.list<int>("layers_per_part", "decoder layers of each model part (default: even)", false);
    par.finish();

    MapReader sch = root.child("schedule", "the pipeline schedule", false);
    std::vector<std::string> kinds;
    for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved_1f1b,
                           ScheduleKind::zb1p, ScheduleKind::dualpipe, ScheduleKind::dualpipev})
        kinds.emplace_back(to_string(k));
    const std::string kind = sch.choice("kind", kinds, std::string("1f1b"), "pipeline schedule");
    plan.schedule = parse_schedule_kind(kind).value_or(ScheduleKind::one_f_one_b);
    plan.virtual_stages = sch.optional<int>("virtual_stages", 1, "model chunks per rank (interleaved 1F1B)", at_least(1));
    sch.finish();
    if (plan.virtual_stages > 1 && plan.schedule != ScheduleKind::interleaved_1f1b)
        root.error("schedule", "virtual_stages > 1 is only meaningful for interleaved-1f1b");

    MapReader batch = root.child("batch", "sequence length and batch sizes");
    plan.seq = batch.required<std::int64_t>("sequence_length", "tokens per sequence", at_least<std::int64_t>(1));
    plan.micro_batch_size = batch.optional<std::int64_t>("micro_batch_size", 1, "sequences per micro-batch", at_least<std::int64_t>(1));
    plan.global_batch = batch.required<std::int64_t>("global_batch", "sequences per optimizer step", at_least<std::int64_t>(1));
    plan.sequence_length_at = batch.key_location("sequence_length");
    batch.finish();
    // Token counts per GPU are ints in the network and operator models (2^31 - 1 tokens).
    if (plan.seq > 0 && plan.micro_batch_size > std::numeric_limits<int>::max() / plan.seq)
        batch.error("micro_batch_size", fmt::format("micro_batch_size {} x sequence_length {} is more than the {} tokens "
                                                    "a micro-batch can hold",
                                                    plan.micro_batch_size, plan.seq, std::numeric_limits<int>::max()));

    plan.precision = root.choice("precision", {"bf16", "fp8"}, std::string("bf16"),
                                 "GEMM precision (fp8 adds quantization kernels and FP8 dispatch)") == "fp8"
                         ? Precision::fp8
                         : Precision::bf16;
    const std::string recompute =
        root.choice("recompute", {"none", "selective", "full"}, std::string("none"),
                    "activation recomputation: none; selective (DeepSeek-V3: RMSNorm, MLA up-projections and the SwiGLU "
                    "output recomputed in the backward); full (each layer's forward again)");
    plan.recompute = recompute == "full" ? Recompute::full : recompute == "selective" ? Recompute::selective : Recompute::none;
    plan.fp8_activation_cache =
        root.choice("activation_cache", {"bf16", "fp8"}, std::string("bf16"),
                    "precision of the Linear inputs kept for the backward (fp8: DeepSeek-V3 section 3.3.4)") == "fp8";
    plan.router_weights_on_output =
        root.choice("router_weights", {"on_expert_output", "inside_expert"}, std::string("on_expert_output"),
                    "where the top-k router weights scale a routed expert: on its output (kept for the weights' "
                    "gradient) or on the SwiGLU output before the down projection (nothing more kept)") ==
        "on_expert_output";
    plan.communication_sms = root.optional<int>("communication_sms", 0,
                                                "SMs that expert-parallel communication kernels hold while they run "
                                                "(DeepSeek-V3: 20 of 132)", at_least(0));
    plan.node_limit = root.optional<int>("node_limit", 0, "hosts one token may be dispatched to (0: the model's topk_group)", at_least(0));
    plan.include_mtp = root.optional<bool>("mtp", true, "train the model's multi-token-prediction modules (DeepSeek)");
    plan.memory_reserve = root.optional<Bytes>("memory_reserve", Bytes(0), "HBM kept free for workspaces, the CUDA context and fragmentation");

    plan.simulate_if_over_memory =
        root.choice("memory_check", {"enforce", "report"}, std::string("enforce"),
                    "enforce: a plan over the GPU's memory is reported and not simulated; report: it is simulated "
                    "anyway and flagged (for comparing with a run whose memory savings the model does not capture)") ==
        "report";

    plan.flops_convention =
        root.choice("flops_convention", {"causal", "megatron"}, std::string("causal"),
                    "how model FLOPs are counted for model_tflops_per_gpu and mfu: causal (3 x forward FLOPs with "
                    "causal attention) or megatron (Megatron-LM's num_floating_point_operations: attention over the "
                    "whole s x s square)") == "megatron"
            ? FlopsConvention::megatron
            : FlopsConvention::causal;

    MapReader opt = root.child("optimizer", "byte widths of the AdamW state", false);
    plan.optimizer.master_bytes = opt.optional<double>("master_weight_bytes", 4, "bytes per master weight", in_range(0.0, 8.0));
    plan.optimizer.state_bytes = opt.optional<double>("moment_bytes", 4, "bytes per Adam moment (two moments)", in_range(0.0, 8.0));
    plan.optimizer.grad_bytes = opt.optional<double>("gradient_bytes", 4, "bytes per accumulated gradient", in_range(1.0, 8.0));
    plan.optimizer.param_bytes = opt.optional<double>("parameter_bytes", 2, "bytes per working parameter", in_range(1.0, 8.0));
    opt.finish();

    MapReader ov = root.child("overlap", "which communication is overlapped with compute", false);
    plan.overlap.ep_with_compute = ov.optional<bool>("ep_with_compute", true,
                                                     "hide EP dispatch/combine under the other chunk of an overlapped F&B pair");
    plan.overlap.dp_grad_reduce = ov.optional<bool>("dp_grad_reduce", true, "start gradient reduce-scatter as each stage finishes");
    plan.overlap.param_gather = ov.optional<bool>("param_gather", true, "overlap the parameter all-gather with the next step's warm-up");
    plan.overlap.tp_with_compute = ov.optional<bool>("tp_with_compute", false, "overlap TP collectives with GEMMs");
    plan.overlap.dp_grad_bucket = ov.optional<std::int64_t>(
        "dp_grad_bucket", 0,
        "parameters per gradient bucket, each reduced as soon as the first pipeline rank's last backward has "
        "filled it (Megatron-Core --overlap-grad-reduce); 0: the whole gradient after the last backward",
        at_least<std::int64_t>(0));
    ov.finish();

    // Cross-field checks, once the fields they combine have been read cleanly.
    if (!diagnostics.empty()) return plan;
    if (plan.overlap.dp_grad_bucket > 0 && !plan.overlap.dp_grad_reduce)
        ov.error("dp_grad_bucket", fmt::format("buckets of {} parameters are reduced during the backward, which "
                                               "needs overlap.dp_grad_reduce: true (or set dp_grad_bucket: 0)",
                                               plan.overlap.dp_grad_bucket));
    if (plan.overlap.dp_grad_bucket > 0 && plan.model.layers > 0) {
        // Each bucket is a collective and an entry of the fill timeline; a bucket of 1 parameter makes
        // billions of them (the run would not end). Megatron-Core's default bucket is max(40,000,000,
        // 1,000,000 x dp) parameters (distributed_data_parallel.py), far above the 1 in a million of a
        // model that kMaxGradBuckets allows.
        const double parameters = parameter_counts(plan.model).total_with_mtp;
        const double buckets = parameters / static_cast<double>(plan.overlap.dp_grad_bucket);
        if (buckets > static_cast<double>(kMaxGradBuckets))
            ov.error("dp_grad_bucket",
                     fmt::format("{} parameters per bucket split the model's {:.3g} parameters into about {:.3g} "
                                 "buckets; at most {} are simulated, so expected at least {:.0f} parameters per bucket",
                                 plan.overlap.dp_grad_bucket, parameters, buckets, kMaxGradBuckets,
                                 std::ceil(parameters / static_cast<double>(kMaxGradBuckets))));
    }
    if (plan.gpus % (p.pp * p.tp) != 0) {
        root.error("gpus", fmt::format("{} GPUs cannot be split into pp {} x tp {} groups", plan.gpus, p.pp, p.tp));
        return plan;
    }
    p.dp = plan.gpus / (p.pp * p.tp);
    if (topology_ok && plan.gpus > plan.topology->gpu_count())
        root.error("gpus", fmt::format("{} GPUs exceed the topology's {}", plan.gpus, plan.topology->gpu_count()));
    // TP collectives are priced as rings inside one NVLink domain (a host; an NVL72 rack), and the stages'
    // blocks of dp x tp GPUs are laid out in order, so every TP group stays inside a domain exactly when
    // tp divides the domain's GPUs.
    const int domain = topology_ok ? plan.topology->gpus_per_host() : 0;
    if (domain > 0 && domain % p.tp != 0)
        par.error("tp", fmt::format("tp {} does not divide the {} GPUs of an NVLink domain (a host of topology {}), so "
                                    "some TP groups would span two domains; expected a divisor of {}",
                                    p.tp, domain, plan.topology->name(), domain));
    if ((p.dp * p.tp) % p.ep != 0) {
        par.error("ep", fmt::format("ep {} does not divide the {} ranks of a stage (dp {} x tp {})", p.ep, p.dp * p.tp, p.dp, p.tp));
    } else if (domain > 0 && p.ep > 1 && domain % p.ep != 0 && p.ep % domain != 0) {
        // DeepEP's internode kernels pair each GPU with the same local rank on every other host.
        par.error("ep", fmt::format("ep {} puts a different number of EP ranks on the hosts of its group ({} GPUs per "
                                    "host of topology {}); expected a divisor or a multiple of {}",
                                    p.ep, domain, plan.topology->name(), domain));
    }
    if (plan.model.layers > 0) {
        if (p.ep > 1 && plan.model.moe.routed_experts == 0) par.error("ep", "the model has no routed experts");
        if (p.ep > 1 && plan.model.moe.routed_experts % p.ep != 0)
            par.error("ep", fmt::format("{} routed experts cannot be spread evenly over ep {}", plan.model.moe.routed_experts, p.ep));
        if (plan.model.attention.heads > 0 && plan.model.attention.heads % p.tp != 0)
            par.error("tp", fmt::format("tp {} does not divide the model's {} attention heads (attention is split by "
                                        "heads over the TP group)",
                                        p.tp, plan.model.attention.heads));
        // The token's hosts under the node limit must hold its top_k experts (DeepSeek-V3's node-limited
        // routing, section 2.1.2), as sim/network/expert_dispatch.cpp routes them.
        if (domain > 0 && p.ep > 1 && plan.model.moe.routed_experts % p.ep == 0 && diagnostics.empty()) {
            const int hosts = std::max(1, p.ep / domain);
            const int limit = plan.node_limit > 0 ? plan.node_limit
                              : plan.model.moe.n_group > 1 ? plan.model.moe.topk_group
                                                           : hosts;
            const int reachable = std::min(limit, hosts) * (plan.model.moe.routed_experts / hosts);
            if (plan.model.moe.top_k > reachable)
                root.error("node_limit",
                           fmt::format("a token may reach {} of ep {}'s {} hosts, which hold {} experts: fewer than the "
                                       "model's top_k {}",
                                       std::min(limit, hosts), p.ep, hosts, reachable, plan.model.moe.top_k));
        }
    }
    if (plan.flops_convention == FlopsConvention::megatron && plan.model.attention.kind == AttentionKind::mla)
        root.error("flops_convention",
                   fmt::format("megatron counts attention as Megatron-LM's num_floating_point_operations does, which "
                               "has no form for multi-head latent attention (model {}); expected causal",
                               plan.model.name));
    const std::int64_t per_step = static_cast<std::int64_t>(p.dp) * plan.micro_batch_size;
    if (plan.global_batch % per_step != 0) {
        root.error("batch", fmt::format("global_batch {} is not a multiple of dp {} x micro_batch_size {}", plan.global_batch,
                                        p.dp, plan.micro_batch_size));
    } else {
        plan.micro_batches = static_cast<int>(plan.global_batch / per_step);
    }
    const int parts = schedule_parts(plan.schedule, p.pp, plan.virtual_stages);
    if (plan.model.layers > 0) {
        if (split.empty()) {
            if (plan.model.layers < parts)
                par.error("pp", fmt::format("{} layers cannot fill {} model parts", plan.model.layers, parts));
            else
                plan.layers_per_part = default_layer_split(plan.model.layers, parts);
        } else if (static_cast<int>(split.size()) != parts) {
            par.error("layers_per_part", fmt::format("expected {} entries (one per model part of {} with pp {}); found {}",
                                                     parts, kind, p.pp, split.size()));
        } else if (std::accumulate(split.begin(), split.end(), 0) != plan.model.layers ||
                   *std::min_element(split.begin(), split.end()) < 1) {
            par.error("layers_per_part", fmt::format("entries must be at least 1 and add up to the model's {} layers",
                                                     plan.model.layers));
        } else {
            plan.layers_per_part = split;
        }
    }
    if (plan.micro_batches > 0) {
        try {
            (void)make_pipeline_schedule(plan.schedule, p.pp, plan.micro_batches, plan.virtual_stages);
        } catch (const std::invalid_argument& e) {
            root.error("schedule", fmt::format("{} with pp {} and {} micro-batches per pipeline: {}", kind, p.pp,
                                               plan.micro_batches, e.what()));
        }
    }
    return plan;
}

}  // namespace clustersim
