// Per-rank HBM of a training plan (see training_memory.hpp).
#include "sim/training/training_memory.hpp"

#include <algorithm>
#include <tuple>

namespace clustersim {

double part_parameters(const TrainingPlan& plan, int part) {
    return parameters_per_rank(plan.model, part_layout(plan, part));
}

double part_expert_parameters(const TrainingPlan& plan, int part) {
    const ParallelLayout l = part_layout(plan, part);
    const auto& m = plan.model;
    double experts = 0;
    for (int i = l.first_layer; i < l.end_layer(m); ++i) experts += layer_params(m, i).routed_experts;
    if (l.include_mtp && m.mtp_layers > 0) experts += m.mtp_layers * layer_params(m, m.layers - 1).routed_experts;
    return experts / l.ep / l.expert_tp;
}

ActivationOptions activation_options(const TrainingPlan& plan) {
    ActivationOptions o;
    o.weights_on_expert_output = plan.router_weights_on_output;
    if (plan.recompute == Recompute::selective) {
        o.recompute_norms = true;
        o.recompute_up_projections = true;
        o.recompute_swiglu = true;
    }
    if (plan.fp8_activation_cache) {
        o.linear_input_bytes = 1.0 + 4.0 / 128.0;  // FP8 with one FP32 scale per 1x128 tile (3.3.2)
        o.attention_output_bytes = 1.5;           // E5M6, 12 bits (3.3.4)
    }
    return o;
}

Bytes part_activation_bytes(const TrainingPlan& plan, int part) {
    const ParallelLayout l = part_layout(plan, part);
    const auto& m = plan.model;
    const ActivationOptions o = activation_options(plan);
    if (plan.recompute == Recompute::full) {
        // Only each layer's input is kept (sequence-parallel split with TP); one layer's full set is
        // rebuilt at a time during the backward.
        const double per_layer = 2.0 * plan.micro_batch_size * plan.seq * m.hidden / (l.sequence_parallel ? l.tp : 1);
        Bytes largest;
        for (int i = l.first_layer; i < l.end_layer(m); ++i)
            largest = std::max(largest, activation_bytes_per_layer(m, i, plan.micro_batch_size, plan.seq, l, o));
        return Bytes(per_layer * (l.end_layer(m) - l.first_layer)) + largest;
    }
    Bytes total = activation_bytes(m, plan.micro_batch_size, plan.seq, l, o);
    if (l.include_mtp && m.mtp_layers > 0)
        total += activation_bytes_per_layer(m, m.layers - 1, plan.micro_batch_size, plan.seq, l, o) * m.mtp_layers;
    return total;
}

Bytes MemoryReport::peak() const {
    Bytes p;
    for (const auto& r : ranks) p = std::max(p, r.total());
    return p;
}

int MemoryReport::peak_rank() const {
    int best = 0;
    for (std::size_t i = 1; i < ranks.size(); ++i)
        if (ranks[i].total() > ranks[static_cast<std::size_t>(best)].total()) best = static_cast<int>(i);
    return best;
}

std::vector<Bytes> peak_activation_bytes(const TrainingPlan& plan, const PipelineSchedule& schedule,
                                         const PipelineRun& run) {
    std::vector<Bytes> per_part;
    for (int part = 0; part < static_cast<int>(plan.layers_per_part.size()); ++part)
        per_part.push_back(part_activation_bytes(plan, part));
    // (time, 0 for an end / 1 for a start, bytes) per rank: ends before starts at the same instant.
    std::vector<std::vector<std::tuple<Time, int, double>>> events(static_cast<std::size_t>(schedule.ranks));
    for (const auto& e : run.timeline) {
        for (const auto& item : e.instruction.items) {
            const double bytes = per_part[static_cast<std::size_t>(schedule.stage_part[static_cast<std::size_t>(item.stage)])].bytes();
            if (item.kind == WorkKind::forward) events[static_cast<std::size_t>(e.rank)].emplace_back(e.start, 1, bytes);
            if (item.kind == WorkKind::backward || item.kind == WorkKind::backward_weight)
                events[static_cast<std::size_t>(e.rank)].emplace_back(e.end, 0, -bytes);
        }
    }
    std::vector<Bytes> peak;
    for (auto& list : events) {
        std::sort(list.begin(), list.end());
        double held = 0, most = 0;
        for (const auto& [t, order, delta] : list) most = std::max(most, held += delta);
        peak.emplace_back(most);
    }
    return peak;
}

MemoryReport training_memory(const TrainingPlan& plan, const std::vector<std::vector<int>>& parts_of_rank,
                             const std::vector<int>& peak_activations, const std::vector<Bytes>& peak_bytes,
                             Bytes capacity) {
    MemoryReport report;
    report.capacity = capacity;
    const auto& o = plan.optimizer;
    const int zero = plan.parallel.zero_stage;
    const double dp = plan.parallel.dp;
    const double edp = plan.parallel.expert_dp();
    for (std::size_t r = 0; r < parts_of_rank.size(); ++r) {
        RankMemory mem;
        mem.rank = static_cast<int>(r);
        for (int part : parts_of_rank[r]) {
            mem.parameters += part_parameters(plan, part);
            mem.expert_parameters += part_expert_parameters(plan, part);
            mem.activations_per_micro_batch = std::max(mem.activations_per_micro_batch, part_activation_bytes(plan, part));
        }
        const double dense = mem.parameters - mem.expert_parameters;
        // Elements of a tensor kind a rank keeps when that kind is sharded from `stage` on.
        auto kept = [&](int stage) { return zero >= stage ? dense / dp + mem.expert_parameters / edp : mem.parameters; };
        mem.weights = Bytes(kept(3) * o.param_bytes);
        if (zero >= 3) {
            // ZeRO-3's gathered-layer buffer: the layer computing and the next one being prefetched, whole
            // (as the time model gathers them: ChunkPricer::zero3_gather), of the rank's largest part.
            double layer = 0;
            for (int part : parts_of_rank[r])
                layer = std::max(layer, part_parameters(plan, part) /
                                            std::max(1, plan.layers_per_part[static_cast<std::size_t>(part)]));
            mem.weights += Bytes(2 * layer * o.param_bytes);
        }
        mem.gradients = Bytes(kept(2) * o.grad_bytes);
        mem.optimizer_states = Bytes(kept(1) * (o.master_bytes + 2 * o.state_bytes));
        mem.peak_micro_batches = peak_activations.at(r);
        mem.activations = peak_bytes.at(r);
        mem.reserve = plan.memory_reserve;
        report.ranks.push_back(mem);
    }
    return report;
}

}  // namespace clustersim
