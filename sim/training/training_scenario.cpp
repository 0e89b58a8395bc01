// The `training` scenario kind: reads a plan, simulates one step, writes the outputs.
#include "sim/training/training_scenario.hpp"

#include "kernels/kernel_cost_model.hpp"
#include "sim/core/trace_writer.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/pipeline/schedule_svg.hpp"
#include "sim/training/training_step.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace clustersim {
namespace {

double gib(Bytes b) { return b.gib(); }
double ms(Time t) { return t.ms(); }

std::string parts_text(const std::vector<int>& parts) {
    return fmt::format("{}", fmt::join(parts, " "));
}

nlohmann::ordered_json memory_json(const RankMemory& m, Bytes capacity) {
    return {{"rank", m.rank},
            {"weights_gib", gib(m.weights)},
            {"gradients_gib", gib(m.gradients)},
            {"optimizer_states_gib", gib(m.optimizer_states)},
            {"activations_gib", gib(m.activations)},
            {"activation_micro_batches", m.peak_micro_batches},
            {"activations_per_micro_batch_gib", gib(m.activations_per_micro_batch)},
            {"reserve_gib", gib(m.reserve)},
            {"total_gib", gib(m.total())},
            {"capacity_gib", gib(capacity)}};
}

class TrainingRunner : public ScenarioRunner {
public:
    explicit TrainingRunner(TrainingPlan plan) : plan_(std::move(plan)) {}

    nlohmann::ordered_json run(const RunOptions& options, RunOutput& out) override {
        const KernelCostModel cost_model(load_gpu_profile(default_kernels_dir(), plan_.gpu));
        TrainingStep step;
        try {
            step = simulate_training_step(plan_, cost_model, options.seed);
        } catch (const TimeOverflow& e) {
            // The step's work sets its times; the sequence length is what makes it that large.
            throw InputError({Diagnostic{plan_.sequence_length_at, "batch.sequence_length",
                                         fmt::format("the step cannot be simulated: {}; expected a shorter sequence "
                                                     "or a smaller batch",
                                                     e.what())}});
        }
        const auto& p = plan_.parallel;

        nlohmann::ordered_json s;
        s["kind"] = "training";
        s["model"] = plan_.model.name;
        s["gpu"] = cost_model.profile().spec.name;
        s["topology"] = plan_.topology->name();
        s["gpus"] = plan_.gpus;
        s["layout"] = {{"tp", p.tp}, {"pp", p.pp}, {"dp", p.dp}, {"ep", p.ep}, {"expert_dp", p.expert_dp()},
                       {"zero_stage", p.zero_stage}};
        s["schedule"] = to_string(plan_.schedule);
        s["algorithm"] = fmt::format("training_{}", to_string(plan_.schedule));
        s["micro_batches_per_pipeline"] = plan_.micro_batches;
        s["layers_per_part"] = plan_.layers_per_part;
        s["fits_in_memory"] = step.memory.fits();
        s["peak_memory_gib_per_gpu"] = gib(step.memory.peak());
        s["memory_capacity_gib"] = gib(step.memory.capacity);
        s["peak_memory_rank"] = memory_json(step.memory.ranks[static_cast<std::size_t>(step.memory.peak_rank())],
                                            step.memory.capacity);
        write_stage_csv(out, step);
        const RankMemory& m = step.memory.ranks[static_cast<std::size_t>(step.memory.peak_rank())];
        const std::string over = fmt::format(
            "rank {} needs {:.1f} GiB of the GPU's {:.1f} GiB (weights {:.1f}, gradients {:.1f}, optimizer states "
            "{:.1f}, activations {:.1f} = {} micro-batches x {:.2f}{})",
            m.rank, gib(m.total()), gib(step.memory.capacity), gib(m.weights), gib(m.gradients),
            gib(m.optimizer_states), gib(m.activations), m.peak_micro_batches, gib(m.activations_per_micro_batch),
            m.reserve > Bytes(0) ? fmt::format(", memory_reserve {:.1f}", gib(m.reserve)) : std::string());
        if (step.step_time == Time::zero()) {
            s["status"] = fmt::format("does not fit: {}; not simulated", over);
            out.write_json("summary.json", s);
            return s;
        }
        s["status"] = step.memory.fits() ? std::string("simulated")
                                         : fmt::format("simulated although it does not fit ({}): {}",
                                                       plan_.simulate_if_over_memory
                                                           ? "memory_check: report"
                                                           : "the estimate before the run fitted; the executed timeline's peak does not",
                                                       over);
        s["step_time_s"] = step.step_time.seconds();
        s["tokens_per_s_per_gpu"] = step.tokens_per_s_per_gpu;
        s["model_tflops_per_gpu"] = step.model_tflops_per_gpu;
        s["mfu"] = step.mfu;
        s["mfu_percent"] = step.mfu * 100;
        s["flops_convention"] = to_string(plan_.flops_convention);
        const std::string counted =
            plan_.flops_convention == FlopsConvention::megatron
                ? "Megatron-LM's num_floating_point_operations (megatron/training/training.py, r0.8.0): 12 x h x "
                  "(q (1 + kv_heads/heads) + ffn x routed experts x 3/2 if gated) + 12 x s x q per layer and token, "
                  "attention over the whole s x s square, plus 6 x h x vocabulary for the logits"
                : "3 x forward FLOPs per token (2 x active weights that multiply activations, LM head included, "
                  "plus causal attention; no recomputation, no MTP)";
        s["mfu_convention"] = fmt::format(
            "model FLOPs = {} x {} tokens per step; peak = the GPU's dense BF16 {:.1f} TFLOPS, whatever precision "
            "the GEMMs run in",
            counted, plan_.tokens_per_step(), cost_model.profile().spec.bf16_dense.value.value() / 1e12);
        s["bubble_fraction"] = step.bubble_fraction;
        s["exposed_comm_fraction"] = step.exposed_comm_fraction;
        s["exposed_comm_rank"] = step.exposed_comm_rank;
        s["gpu_hours_per_trillion_tokens"] = step.gpu_hours_per_trillion_tokens;
        s["pipeline_time_s"] = step.pipeline_time.seconds();
        s["p2p_send_ms"] = ms(step.p2p_transfer);
        s["shared_sm_slowdown"] = step.shared_sm_slowdown;
        if (step.pair) {
            const auto& pr = *step.pair;
            const double hidden = pr.pair.expert_communication > Time::zero()
                                      ? pr.pair.hidden_expert_communication / pr.pair.expert_communication
                                      : 0.0;
            s["overlapped_pair"] = {{"part", pr.part},
                                    {"layers", pr.layers},
                                    {"overlapped", pr.overlapped},
                                    {"span_ms", ms(pr.pair.span)},
                                    {"forward_alone_ms", ms(pr.forward_alone)},
                                    {"backward_alone_ms", ms(pr.backward_alone)},
                                    {"ep_comm_hidden_share", hidden},
                                    {"ep_comm_ms", ms(pr.pair.expert_communication)},
                                    {"dispatch_fp8_ms_per_call", ms(pr.dispatch_fp8)},
                                    {"dispatch_bf16_ms_per_call", ms(pr.dispatch_bf16)},
                                    {"combine_ms_per_call", ms(pr.combine)}};
            // Flat copies for the validation suite (rows T2a-T2d). A dispatch "per call" averages the
            // pair's calls: FP8 in the forward (when the GEMMs are FP8), BF16 gradients in the backward.
            s["pair_span_ms"] = ms(pr.pair.span);
            s["pair_ep_comm_hidden_percent"] = hidden * 100;
            s["dispatch_ms_per_call"] =
                plan_.precision == Precision::fp8 ? (ms(pr.dispatch_fp8) + ms(pr.dispatch_bf16)) / 2 : ms(pr.dispatch_bf16);
            s["combine_ms_per_call"] = ms(pr.combine);
        }
        Time kernel_total;
        for (const auto& [prov, t] : step.provenance) kernel_total += t;
        nlohmann::ordered_json prov = nlohmann::ordered_json::object();
        for (const auto& [kind, t] : step.provenance) prov[to_string(kind)] = t / kernel_total;
        s["provenance"] = prov;
        s["provenance_note"] =
            "shares of the priced kernel time by how each kernel time was obtained; communication is computed by "
            "the flow-level network model from the topology's link parameters";
        out.write_json("summary.json", s);
        write_parts_csv(out, step);
        out.write_text("schedule.svg",
                       pipeline_svg(step.schedule, step.run,
                                    fmt::format("{}: {} on {} ranks, {} micro-batches", plan_.name,
                                                to_string(plan_.schedule), p.pp, plan_.micro_batches)));
        if (options.trace) write_trace(out, step);
        return s;
    }

private:
    void write_stage_csv(RunOutput& out, const TrainingStep& step) const {
        auto csv = out.open("stages.csv");
        csv << "rank,parts,layers,busy_ms,compute_ms,bubble_ms,exposed_comm_ms,ep_comm_ms,ep_comm_hidden_ms,"
               "grads_ready_ms,dp_reduce_ms,optimizer_ms,param_gather_ms,param_gather_exposed_ms,step_end_ms,"
               "tflops,activation_micro_batches,weights_gib,gradients_gib,optimizer_gib,activations_gib,total_gib\n";
        for (std::size_t r = 0; r < step.memory.ranks.size(); ++r) {
            const RankMemory& m = step.memory.ranks[r];
            const RankStep rs = r < step.ranks.size() ? step.ranks[r] : RankStep{};
            const std::vector<int>& parts = step.parts_of_rank[r];
            int layers = 0;
            for (int part : parts) layers += plan_.layers_per_part[static_cast<std::size_t>(part)];
            const double bubble = step.pipeline_time > Time::zero() ? ms(step.pipeline_time - rs.busy) : 0.0;
            csv << fmt::format("{},{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},"
                               "{:.3f},{},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f}\n",
                               r, parts_text(parts), layers, ms(rs.busy), ms(rs.compute), bubble, ms(rs.exposed_comm),
                               ms(rs.expert_comm), ms(rs.hidden_expert_comm), ms(rs.grads_ready), ms(rs.dp_reduce),
                               ms(rs.optimizer), ms(rs.param_gather), ms(rs.param_gather_exposed), ms(rs.step_end),
                               rs.flops.value() / 1e12, m.peak_micro_batches, gib(m.weights), gib(m.gradients),
                               gib(m.optimizer_states), gib(m.activations), gib(m.total()));
        }
    }

    // One row per model part: its chunks alone, with their compute and communication.
    static void write_parts_csv(RunOutput& out, const TrainingStep& step) {
        auto csv = out.open("parts.csv");
        csv << "part,first_layer,layers,parameters,activations_gib_per_micro_batch,forward_ms,forward_comm_ms,"
               "backward_ms,backward_comm_ms,backward_input_ms,weight_ms,forward_tflop,backward_tflop\n";
        for (const auto& p : step.parts)
            csv << fmt::format("{},{},{},{:.0f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.3f},{:.3f}\n", p.part,
                               p.first_layer, p.layers, p.parameters, gib(p.activations_per_micro_batch),
                               ms(p.forward.span), ms(p.forward.communication), ms(p.backward.span),
                               ms(p.backward.communication), ms(p.backward_input.span), ms(p.backward_weight.span),
                               p.forward_flops.value() / 1e12, p.backward_flops.value() / 1e12);
    }

    void write_trace(RunOutput& out, const TrainingStep& step) const {
        auto file = out.open("trace.json");
        TraceWriter trace(file);
        for (const auto& e : step.run.timeline) {
            const TrackId track = trace.track(fmt::format("pipeline rank {}", e.rank), "compute");
            std::vector<std::string_view> kinds;
            for (const auto& item : e.instruction.items) kinds.emplace_back(to_string(item.kind));
            trace.slice(track, to_string(e.instruction), fmt::format("{}", fmt::join(kinds, "+")), e.start, e.end - e.start);
        }
        for (const auto& rs : step.ranks) {
            const TrackId track = trace.track(fmt::format("pipeline rank {}", rs.rank), "data parallel");
            const Time start = plan_.overlap.dp_grad_reduce ? rs.grads_ready : rs.pipeline_end;
            if (rs.dp_reduce > Time::zero()) trace.slice(track, "gradient reduce-scatter", "dp", start, rs.dp_reduce);
            const Time opt_start = std::max(rs.pipeline_end, rs.dp_reduce_end);
            trace.slice(track, "optimizer step", "optimizer", opt_start, rs.optimizer);
            if (rs.param_gather_exposed > Time::zero())
                trace.slice(track, "parameter all-gather (exposed)", "dp", opt_start + rs.optimizer, rs.param_gather_exposed);
        }
        trace.finish();
    }

    TrainingPlan plan_;
};

}  // namespace

std::unique_ptr<ScenarioRunner> load_training_scenario(MapReader& root, const ScenarioContext& context) {
    TrainingPlan plan = read_training_plan(root, context);
    plan.name = plan.model.name;
    auto& diagnostics = root.document()->diagnostics();
    if (diagnostics.empty()) {
        try {
            const GpuSpec spec = load_gpu_spec(default_kernels_dir() + "/gpus/" + plan.gpu + ".yaml");
            // Compute runs on the SMs communication leaves (sm_count / (sm_count - communication_sms)).
            if (spec.sm_count && plan.communication_sms >= spec.sm_count->value)
                root.error("communication_sms",
                           fmt::format("communication_sms {} must be below the GPU's {} SMs ({}): compute needs SMs "
                                       "to run on while communication kernels hold theirs",
                                       plan.communication_sms, spec.sm_count->value, plan.gpu));
        } catch (const InputError& e) {
            root.error("gpu", fmt::format("no GPU spec \"{}\" in {}/gpus ({})", plan.gpu, default_kernels_dir(),
                                          e.diagnostics().empty() ? "" : e.diagnostics().front().message));
        }
    }
    return std::make_unique<TrainingRunner>(std::move(plan));
}

}  // namespace clustersim
