// One simulated training step (see training_step.hpp).
#include "sim/training/training_step.hpp"

#include "sim/network/flow_network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace clustersim {
namespace {

bool is_backward(WorkKind k) { return k != WorkKind::forward; }

// Chunk times for the executor, memoized by the parts and kinds of an instruction's items; pipeline
// sends as flows on the fabric.
class StepEnvironment : public PipelineEnvironment {
public:
    StepEnvironment(const TrainingPlan& plan, const PipelineSchedule& schedule, ChunkPricer& chunks,
                    CommunicationPricer& comm, FlowNetwork& network)
        : plan_(plan), schedule_(schedule), chunks_(chunks), comm_(comm), network_(network) {
        const double tokens = static_cast<double>(plan.tokens_per_micro_batch()) /
                              (plan.parallel.sequence_parallel ? plan.parallel.tp : 1);
        p2p_bytes_ = Bytes(tokens * static_cast<double>(plan.model.hidden) * 2.0);  // BF16 hidden states
    }

    Time duration(int /*rank*/, const Instruction& instruction) override { return execute(instruction).span; }

    // The chunk chains of an instruction run on the two streams.
    const OverlapResult& execute(const Instruction& instruction) {
        std::vector<std::pair<int, int>> key;
        for (const auto& item : instruction.items)
            key.emplace_back(schedule_.stage_part[static_cast<std::size_t>(item.stage)], static_cast<int>(item.kind));
        auto it = memo_.find(key);
        if (it != memo_.end()) return it->second;
        const bool pair = instruction.items.size() > 1;
        OverlapResult result;
        if (pair && plan_.overlap.ep_with_compute) {
            std::vector<const ChunkProgram*> chains;
            for (const auto& [part, kind] : key) chains.push_back(&chunks_.chunk(part, static_cast<WorkKind>(kind), true));
            result = run_chains(chains);
        } else {
            // One after the other: the pair's chains concatenated, on all SMs.
            ChunkProgram all;
            for (const auto& [part, kind] : key) all = concatenate(all, chunks_.chunk(part, static_cast<WorkKind>(kind), false));
            result = run_chains({&all});
        }
        return memo_.emplace(key, std::move(result)).first->second;
    }

    void transfer(Simulator& /*sim*/, const P2pTransfer& t, std::function<void()> arrived) override {
        const int src = comm_.pipeline_gpu(t.from_rank);
        const int dst = comm_.pipeline_gpu(t.to_rank);
        network_.start(src, dst, p2p_bytes_, std::move(arrived),
                       static_cast<std::uint64_t>(t.micro_batch) * 2 + (t.gradient ? 1 : 0));
    }

    Bytes p2p_bytes() const { return p2p_bytes_; }

private:
    const TrainingPlan& plan_;
    const PipelineSchedule& schedule_;
    ChunkPricer& chunks_;
    CommunicationPricer& comm_;
    FlowNetwork& network_;
    Bytes p2p_bytes_;
    std::map<std::vector<std::pair<int, int>>, OverlapResult> memo_;
};

// The AdamW update of `elements` parameters is memory-bound: it reads the gradient, master weight and
// both moments and writes the master weight, the moments and the working copy.
Time optimizer_time(const TrainingPlan& plan, const GpuSpec& spec, double elements) {
    const auto& o = plan.optimizer;
    const double bytes_per = o.grad_bytes + 2 * o.master_bytes + 4 * o.state_bytes + o.param_bytes;
    return Bytes(elements * bytes_per) / (spec.hbm_bandwidth.value * spec.memory_efficiency);
}

}  // namespace

std::vector<double> bucket_shares(double parameters, std::int64_t bucket) {
    const double b = static_cast<double>(bucket);
    if (bucket <= 0 || parameters <= b) return {1.0};
    std::vector<double> shares;
    for (double done = 0; done < parameters; done += b) shares.push_back(std::min(b, parameters - done) / parameters);
    return shares;
}

Time bucketed_reduce_end(Time backward_start, Time backward_end, const std::vector<GradientBucket>& buckets) {
    const Time backward = std::max(Time::zero(), backward_end - backward_start);
    Time t = backward_start;
    double filled = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        filled += buckets[i].share;
        const Time full = i + 1 == buckets.size() ? backward_end : backward_start + backward * std::min(1.0, filled);
        t = std::max(t, full) + buckets[i].reduce;
    }
    return t;
}

int first_all_moe_part(const TrainingPlan& plan) {
    for (int part = 0; part < static_cast<int>(plan.layers_per_part.size()); ++part) {
        const ParallelLayout l = part_layout(plan, part);
        bool all = l.end_layer(plan.model) > l.first_layer && !l.has_embedding() && !l.has_lm_head(plan.model);
        for (int i = l.first_layer; all && i < l.end_layer(plan.model); ++i) all = plan.model.is_moe_layer(i);
        if (all) return part;
    }
    return -1;
}

TrainingStep simulate_training_step(const TrainingPlan& plan, const KernelCostModel& cost_model, std::uint64_t seed) {
    TrainingStep step;
    const auto& p = plan.parallel;
    const GpuSpec& spec = cost_model.profile().spec;
    step.schedule = make_pipeline_schedule(plan.schedule, p.pp, plan.micro_batches, plan.virtual_stages);
    const auto& schedule = step.schedule;

    auto& parts_of_rank = step.parts_of_rank;
    parts_of_rank.resize(static_cast<std::size_t>(p.pp));
    for (int s = 0; s < schedule.stages(); ++s) {
        auto& parts = parts_of_rank[static_cast<std::size_t>(schedule.stage_rank[static_cast<std::size_t>(s)])];
        const int part = schedule.stage_part[static_cast<std::size_t>(s)];
        if (std::find(parts.begin(), parts.end(), part) == parts.end()) parts.push_back(part);
    }

    // Memory first: the peak activations come from the schedule alone (unit chunk times).
    {
        Simulator sim(seed);
        struct Unit : PipelineEnvironment {
            Time duration(int, const Instruction& i) override { return Time::from_ps(static_cast<std::int64_t>(i.items.size())); }
        } unit;
        const PipelineRun shape = run_pipeline(sim, schedule, unit);
        step.memory = training_memory(plan, parts_of_rank, shape.peak_activations,
                                      peak_activation_bytes(plan, schedule, shape), spec.hbm_capacity.value);
    }
    if (!step.memory.fits() && !plan.simulate_if_over_memory) return step;

    CommunicationPricer comm(plan, seed);
    ChunkPricer chunks(plan, cost_model, comm);
    step.shared_sm_slowdown = chunks.shared_sm_slowdown();

    Simulator sim(seed);
    FlowNetwork network(sim, *plan.topology);
    StepEnvironment env(plan, schedule, chunks, comm, network);
    step.run = run_pipeline(sim, schedule, env);
    step.pipeline_time = step.run.makespan;
    // The executed timeline's own peak: real chunk times can order frees and allocations differently.
    step.memory = training_memory(plan, parts_of_rank, step.run.peak_activations,
                                  peak_activation_bytes(plan, schedule, step.run), spec.hbm_capacity.value);
    if (p.pp > 1) {
        Simulator probe(seed);
        FlowNetwork probe_network(probe, *plan.topology);
        Time arrived;
        probe_network.start(comm.pipeline_gpu(0), comm.pipeline_gpu(1), env.p2p_bytes(), [&] { arrived = probe.now(); });
        probe.run();
        step.p2p_transfer = arrived;
    }

    // Per-rank accounting from the timeline.
    step.ranks.resize(static_cast<std::size_t>(p.pp));
    std::vector<Time> first_backward(static_cast<std::size_t>(p.pp), Time::max());
    for (int r = 0; r < p.pp; ++r) step.ranks[static_cast<std::size_t>(r)].rank = r;
    for (const auto& e : step.run.timeline) {
        RankStep& rs = step.ranks[static_cast<std::size_t>(e.rank)];
        const OverlapResult& o = env.execute(e.instruction);
        const Time span = e.end - e.start;
        rs.busy += span;
        rs.compute += o.compute;
        rs.exposed_comm += span - o.compute;
        rs.expert_comm += o.expert_communication;
        rs.hidden_expert_comm += o.hidden_expert_communication;
        rs.pipeline_end = std::max(rs.pipeline_end, e.end - step.run.start);
        for (const auto& item : e.instruction.items) {
            const int part = schedule.stage_part[static_cast<std::size_t>(item.stage)];
            rs.flops += chunks.flops(part, item.kind);
            if (is_backward(item.kind)) {
                if (e.end - step.run.start > rs.grads_ready) {
                    rs.grads_ready = e.end - step.run.start;
                    rs.last_backward_start = e.start - step.run.start;
                }
                first_backward[static_cast<std::size_t>(e.rank)] =
                    std::min(first_backward[static_cast<std::size_t>(e.rank)], e.start - step.run.start);
            }
        }
    }

    // Data parallelism: gradient reduce-scatter, optimizer, parameter all-gather (ZeRO >= 1).
    const double grad_bytes = plan.optimizer.grad_bytes;
    for (auto& rs : step.ranks) {
        const RankMemory& mem = step.memory.ranks[static_cast<std::size_t>(rs.rank)];
        const double dense = mem.parameters - mem.expert_parameters;
        const CollectiveOp reduce = p.zero_stage >= 1 ? CollectiveOp::reduce_scatter : CollectiveOp::all_reduce;
        auto reduce_time = [&](double share) {
            return comm.data_parallel(reduce, Bytes(dense * share * grad_bytes), false) +
                   comm.data_parallel(reduce, Bytes(mem.expert_parameters * share * grad_bytes), true);
        };
        // Megatron-Core buckets the gradient only on the first pipeline rank: "data-parallel
        // communication on these stages is not on the critical path" (distributed_data_parallel.py,
        // bucket_size = None when the pipeline rank > 0); the others reduce it whole.
        const std::int64_t bucket = rs.rank == 0 ? plan.overlap.dp_grad_bucket : 0;
        std::vector<GradientBucket> buckets;
        for (double share : bucket_shares(mem.parameters, bucket)) buckets.push_back({share, reduce_time(share)});
        rs.dp_buckets = static_cast<int>(buckets.size());
        rs.dp_reduce = Time::zero();
        for (const auto& b : buckets) rs.dp_reduce += b.reduce;
        if (plan.overlap.dp_grad_reduce) {
            // Each bucket is a collective of its own, priced on the fabric (its latency included), started
            // as the rank's last backward fills it. A DualPipe pair's instruction also holds a forward,
            // so there the fill is spread over the whole pair (a bucketed plan's approximation).
            rs.dp_reduce_end = bucketed_reduce_end(rs.last_backward_start, rs.grads_ready, buckets);
        } else {
            rs.dp_reduce_end = rs.pipeline_end + rs.dp_reduce;
        }
        const double shard = p.zero_stage >= 1 ? dense / p.dp + mem.expert_parameters / p.expert_dp() : mem.parameters;
        rs.optimizer = optimizer_time(plan, spec, shard);
        // ZeRO-3 gathers the parameters inside every forward and backward chunk (ChunkPricer), not once
        // after the optimizer.
        if (p.zero_stage >= 1 && p.zero_stage < 3) {
            rs.param_gather = comm.data_parallel(CollectiveOp::all_gather, Bytes(dense * plan.optimizer.param_bytes), false) +
                              comm.data_parallel(CollectiveOp::all_gather,
                                                 Bytes(mem.expert_parameters * plan.optimizer.param_bytes), true);
            // Overlapped, the gather can hide under the rank's warm-up forwards of the next step.
            const Time window = plan.overlap.param_gather ? first_backward[static_cast<std::size_t>(rs.rank)] : Time::zero();
            rs.param_gather_exposed = std::max(Time::zero(), rs.param_gather - window);
        }
        rs.step_end = std::max(rs.pipeline_end, rs.dp_reduce_end) + rs.optimizer + rs.param_gather_exposed;
        step.step_time = std::max(step.step_time, rs.step_end);
    }

    // Headline metrics.
    const double seconds = step.step_time.seconds();
    const double tokens = static_cast<double>(plan.tokens_per_step());
    step.tokens_per_s_per_gpu = tokens / seconds / plan.gpus;
    const Flops per_token = plan.flops_convention == FlopsConvention::megatron
                                ? megatron_training_flops_per_token(plan.model, plan.seq)
                                : flops_per_token(plan.model, plan.seq).training();
    step.model_flops_per_step = per_token * tokens;
    step.model_tflops_per_gpu = step.model_flops_per_step.value() / seconds / plan.gpus / 1e12;
    step.mfu = step.model_tflops_per_gpu * 1e12 / spec.bf16_dense.value.value();
    double bubble = 0;
    for (const auto& rs : step.ranks) {
        bubble += (step.pipeline_time - rs.busy) / step.pipeline_time;
        // The most any rank exposes (the first such rank): a mean over ranks would hide one rank's exposed
        // gradient reduction that sets the step time while the others wait for it.
        const double exposed =
            (rs.exposed_comm + rs.param_gather_exposed + std::max(Time::zero(), rs.dp_reduce_end - rs.pipeline_end)) /
            step.step_time;
        if (step.exposed_comm_rank < 0 || exposed > step.exposed_comm_fraction) {
            step.exposed_comm_fraction = exposed;
            step.exposed_comm_rank = rs.rank;
        }
    }
    step.bubble_fraction = bubble / p.pp;
    step.gpu_hours_per_trillion_tokens = 1e12 / step.tokens_per_s_per_gpu / 3600.0;
    step.provenance = chunks.provenance_time();

    for (int part = 0; part < static_cast<int>(plan.layers_per_part.size()); ++part) {
        PartReport pr;
        pr.part = part;
        pr.first_layer = part_layout(plan, part).first_layer;
        pr.layers = plan.layers_per_part[static_cast<std::size_t>(part)];
        pr.forward = run_chains({&chunks.chunk(part, WorkKind::forward, false)});
        pr.backward = run_chains({&chunks.chunk(part, WorkKind::backward, false)});
        pr.backward_input = run_chains({&chunks.chunk(part, WorkKind::backward_input, false)});
        pr.backward_weight = run_chains({&chunks.chunk(part, WorkKind::backward_weight, false)});
        pr.forward_flops = chunks.flops(part, WorkKind::forward);
        pr.backward_flops = chunks.flops(part, WorkKind::backward);
        pr.parameters = part_parameters(plan, part);
        pr.activations_per_micro_batch = part_activation_bytes(plan, part);
        step.parts.push_back(pr);
    }

    // The overlapped pair of one all-MoE part, as deepseek-ai/profile-data's train.json shows it.
    const int part = first_all_moe_part(plan);
    if (part >= 0 && p.ep > 1) {
        PairReport pr;
        pr.part = part;
        pr.layers = plan.layers_per_part[static_cast<std::size_t>(part)];
        // Only schedules with F&B pair instructions (DualPipe, DualPipeV) run them overlapped.
        bool pairs = false;
        for (const auto& instructions : schedule.rank_instructions)
            for (const auto& instruction : instructions) pairs = pairs || instruction.items.size() > 1;
        if (pairs && plan.overlap.ep_with_compute) {
            pr.pair = run_chains({&chunks.chunk(part, WorkKind::forward, true), &chunks.chunk(part, WorkKind::backward, true)});
        } else {
            // What the step simulated for a pair without overlap (or would run, in a schedule without
            // pairs): the forward, then the backward, on all SMs.
            const ChunkProgram both =
                concatenate(chunks.chunk(part, WorkKind::forward, false), chunks.chunk(part, WorkKind::backward, false));
            pr.pair = run_chains({&both});
        }
        pr.overlapped = pairs && plan.overlap.ep_with_compute;
        pr.forward_alone = run_chains({&chunks.chunk(part, WorkKind::forward, false)}).span;
        pr.backward_alone = run_chains({&chunks.chunk(part, WorkKind::backward, false)}).span;
        const std::int64_t t = plan.tokens_per_micro_batch() / (p.sequence_parallel ? p.tp : 1);
        pr.dispatch_fp8 = comm.expert(ExpertCommPhase::dispatch, true, t);
        pr.dispatch_bf16 = comm.expert(ExpertCommPhase::dispatch, false, t);
        pr.combine = comm.expert(ExpertCommPhase::combine, false, t);
        step.pair = pr;
    }
    return step;
}

}  // namespace clustersim
