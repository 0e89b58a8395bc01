// Pricing a training step's chunks and communication calls (see training_costs.hpp).
#include "sim/training/training_costs.hpp"

#include "sim/core/simulator.hpp"
#include "sim/execution/layer_cost.hpp"
#include "sim/training/training_memory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace clustersim {
namespace {

// Backward operators with each weight-gradient GEMM placed right after the input-gradient GEMM of the
// same forward operator, the order a fused backward runs them in; W operators without a B partner
// (the embedding's scatter-add) go last.
std::vector<Operator> merge_backward(const std::vector<Operator>& b, const std::vector<Operator>& w) {
    std::map<std::string, std::vector<const Operator*>> by_base;
    for (const auto& op : w) by_base[op.name.substr(0, op.name.size() - std::string_view(".wgrad").size())].push_back(&op);
    std::vector<Operator> out;
    out.reserve(b.size() + w.size());
    for (const auto& op : b) {
        out.push_back(op);
        if (!op.name.ends_with(".dgrad")) continue;
        auto it = by_base.find(op.name.substr(0, op.name.size() - std::string_view(".dgrad").size()));
        if (it == by_base.end()) continue;
        for (const Operator* wop : it->second) out.push_back(*wop);
        by_base.erase(it);
    }
    for (const auto& op : w) {
        const std::string base = op.name.substr(0, op.name.size() - std::string_view(".wgrad").size());
        if (by_base.count(base)) out.push_back(op);
    }
    return out;
}

// What DeepSeek-V3's selective recomputation runs again in the backward (sections 3.2.3, 3.3.4).
bool recomputed_selectively(const Operator& op) {
    if (op.kind == OpKind::rmsnorm || op.kind == OpKind::silu_mul) return true;
    return op.name.find(".q_b_proj") != std::string::npos || op.name.find(".kv_b_proj") != std::string::npos;
}

CollectiveOp collective_of(CommKind k) {
    switch (k) {
        case CommKind::tp_all_reduce: return CollectiveOp::all_reduce;
        case CommKind::tp_all_gather: return CollectiveOp::all_gather;
        case CommKind::tp_reduce_scatter: return CollectiveOp::reduce_scatter;
        default: throw std::invalid_argument("not a TP collective");
    }
}

}  // namespace

// ---- communication -----------------------------------------------------------------------------------

CommunicationPricer::CommunicationPricer(const TrainingPlan& plan, std::uint64_t seed) : plan_(plan), seed_(seed) {
    const auto& m = plan.model;
    ep_spec_.mode = ExpertCommMode::normal;
    ep_spec_.experts = std::max(1, m.moe.routed_experts);
    ep_spec_.top_k = std::max(1, m.moe.top_k);
    ep_spec_.hidden = static_cast<int>(m.hidden);
    ep_spec_.sms = plan.communication_sms;
    for (int g = 0; g < plan.parallel.ep; ++g) ep_spec_.gpus.push_back(g);
    const int hosts = std::max(1, plan.parallel.ep / plan.topology->gpus_per_host());
    int limit = plan.node_limit;
    if (limit == 0) limit = m.moe.n_group > 1 ? m.moe.topk_group : hosts;
    ep_spec_.node_limit = std::min(limit, hosts);
}

int CommunicationPricer::pipeline_gpu(int rank) const { return rank * (plan_.gpus / plan_.parallel.pp); }

std::vector<int> CommunicationPricer::data_parallel_gpus(bool expert) const {
    // Stage 0's ranks, TP index 0: GPU j x tp for replica j; experts: the replicas holding EP rank 0,
    // which are ep ranks apart in the stage's (dp x tp) ranks.
    std::vector<int> gpus;
    const int stage_ranks = plan_.parallel.dp * plan_.parallel.tp;
    const int stride = expert ? plan_.parallel.ep : plan_.parallel.tp;
    for (int g = 0; g < stage_ranks; g += stride) gpus.push_back(g);
    return gpus;
}

Time CommunicationPricer::run_dag(const TransferDag& dag) const {
    Simulator sim(seed_);
    FlowNetwork network(sim, *plan_.topology);
    DagExecution execution(network, dag);
    execution.start();
    sim.run();
    if (!execution.finished()) throw std::logic_error("a communication call ended with transfers pending");
    return execution.finished_at() - execution.started_at();
}

Time CommunicationPricer::expert(ExpertCommPhase phase, bool fp8, std::int64_t tokens) {
    const auto key = std::make_tuple(static_cast<int>(phase), fp8, tokens);
    if (auto it = expert_.find(key); it != expert_.end()) return it->second;
    ExpertParallelSpec spec = ep_spec_;
    spec.phase = phase;
    spec.fp8_dispatch = fp8;
    spec.tokens_per_gpu = static_cast<int>(tokens);
    const TokenRouting routing = balanced_routing(spec, *plan_.topology, seed_);
    const ExpertCommPlan comm = build_expert_comm(spec, routing, *plan_.topology);
    return expert_[key] = run_dag(comm.dag);
}

Time CommunicationPricer::tensor_parallel(CollectiveOp op, Bytes size) {
    const auto key = std::make_pair(static_cast<int>(op), size.value());
    if (auto it = tp_.find(key); it != tp_.end()) return it->second;
    CollectiveSpec spec;
    spec.op = op;
    spec.algorithm = CollectiveAlgorithm::ring;
    spec.size = size;
    for (int g = 0; g < plan_.parallel.tp; ++g) spec.gpus.push_back(g);
    return tp_[key] = plan_.parallel.tp > 1 ? run_dag(build_collective(spec, *plan_.topology)) : Time::zero();
}

Time CommunicationPricer::data_parallel(CollectiveOp op, Bytes size, bool expert) {
    const auto key = std::make_tuple(static_cast<int>(op), size.value(), expert);
    if (auto it = dp_.find(key); it != dp_.end()) return it->second;
    CollectiveSpec spec;
    spec.op = op;
    spec.size = size;
    spec.gpus = data_parallel_gpus(expert);
    if (spec.gpus.size() < 2 || size.value() <= 0) return dp_[key] = Time::zero();
    // NCCL's hierarchical pattern when the group fills whole hosts evenly, a ring otherwise.
    const Topology& t = *plan_.topology;
    std::map<int, int> per_host;
    for (int g : spec.gpus) ++per_host[t.host_of(g)];
    bool even = per_host.size() > 1;
    for (const auto& [host, n] : per_host) even = even && n == per_host.begin()->second && n > 1;
    spec.algorithm = even ? CollectiveAlgorithm::hierarchical : CollectiveAlgorithm::ring;
    return dp_[key] = run_dag(build_collective(spec, t));
}

// ---- chunks ------------------------------------------------------------------------------------------

ChunkPricer::ChunkPricer(const TrainingPlan& plan, const KernelCostModel& cost_model, CommunicationPricer& comm)
    : plan_(plan), cost_model_(cost_model), comm_(comm) {
    const auto& spec = cost_model.profile().spec;
    if (plan.communication_sms > 0 && spec.sm_count && spec.sm_count->value > plan.communication_sms)
        slowdown_ = static_cast<double>(spec.sm_count->value) / (spec.sm_count->value - plan.communication_sms);
}

const ChunkProgram& ChunkPricer::chunk(int part, WorkKind kind, bool shared_sms) {
    const auto key = std::make_tuple(part, static_cast<int>(kind), shared_sms && slowdown_ > 1.0);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, build(part, kind, std::get<2>(key))).first;
    return it->second;
}

Flops ChunkPricer::flops(int part, WorkKind kind) {
    const auto key = std::make_pair(part, static_cast<int>(kind));
    if (auto it = flops_.find(key); it != flops_.end()) return it->second;
    OperatorGraphOptions o;
    o.precision = plan_.precision;
    o.layout = part_layout(plan_, part);
    o.batch.sequences = plan_.micro_batch_size;
    o.batch.seq = plan_.seq;
    Flops total;
    auto add = [&](Phase phase) {
        o.phase = phase;
        total += total_flops(stage_operators(plan_.model, o));
    };
    if (kind == WorkKind::forward) add(Phase::train_forward);
    if (kind == WorkKind::backward || kind == WorkKind::backward_input) add(Phase::train_backward_input);
    if (kind == WorkKind::backward || kind == WorkKind::backward_weight) add(Phase::train_backward_weight);
    return flops_[key] = total;
}

Time ChunkPricer::communication(const Operator& op) {
    const std::int64_t tokens =
        plan_.tokens_per_micro_batch() / (plan_.parallel.sequence_parallel ? plan_.parallel.tp : 1);
    switch (op.comm) {
        case CommKind::ep_dispatch:
        case CommKind::ep_combine: {
            // The graph's FP8 dispatch payload marks the FP8 forward dispatch; gradients travel in BF16.
            const bool fp8 = op.comm == CommKind::ep_dispatch && plan_.precision == Precision::fp8 &&
                             !op.name.ends_with(".bwd");
            const auto phase = op.comm == CommKind::ep_dispatch ? ExpertCommPhase::dispatch : ExpertCommPhase::combine;
            return comm_.expert(phase, fp8, tokens);
        }
        case CommKind::tp_all_reduce:
        case CommKind::tp_all_gather:
        case CommKind::tp_reduce_scatter: return comm_.tensor_parallel(collective_of(op.comm), op.comm_bytes);
        case CommKind::none: break;
    }
    throw std::logic_error("communication() called for a compute operator");
}

ChunkProgram ChunkPricer::price(const std::vector<Operator>& ops, bool shared_sms, bool count_provenance) {
    ChunkProgram program;
    const GpuSpec& spec = cost_model_.profile().spec;
    ChunkStep segment;
    auto flush = [&] {
        if (segment.time > Time::zero() || !segment.label.empty()) program.steps.push_back(segment);
        segment = ChunkStep{};
    };
    Time pending_tp;  // TP collective time folded into the next segment when TP overlaps with GEMMs
    for (const Operator& op : ops) {
        if (op.is_communication()) {
            const Time t = communication(op);
            const bool tp = op.comm != CommKind::ep_dispatch && op.comm != CommKind::ep_combine;
            if (tp && plan_.overlap.tp_with_compute) {
                pending_tp += t;
                continue;
            }
            flush();
            program.steps.push_back({true, t, op.comm, op.name});
            continue;
        }
        const KernelPrediction p = predict_operator(op, cost_model_);
        // A negative kernel time is an integer overflow in the operator's work count (sequence lengths
        // near 2^31): report it as out of range rather than add it to the step.
        if (p.time < Time::zero())
            throw TimeOverflow(fmt::format("operator {} is priced at a negative time ({:.6g} s): its work count "
                                           "overflows the 64-bit integers it is counted in",
                                           op.name, p.time.seconds()));
        Time t = p.time;
        if (shared_sms && compute_bound(op, spec)) t = t * slowdown_;
        if (count_provenance) provenance_[p.provenance] += p.time;
        if (segment.label.empty()) segment.label = op.name;
        segment.time += t;
        if (pending_tp > Time::zero()) {
            // The collective runs under this kernel (Megatron's userbuffer overlap): the longer of the two.
            segment.time += std::max(Time::zero(), pending_tp - t);
            pending_tp = Time::zero();
        }
    }
    segment.time += pending_tp;
    flush();
    return program;
}

ChunkPricer::ParameterGather ChunkPricer::zero3_gather(int part) {
    // ZeRO-3 keeps only each data-parallel rank's shard of the parameters and all-gathers a layer's
    // parameters before its forward and again before its backward (Rajbhandari et al. 2020, "ZeRO: Memory
    // Optimizations Toward Training Trillion Parameter Models", section 7.2.2: with the gradients'
    // reduce-scatter, 3 x the parameters move per step, 1.5 x data parallelism's all-reduce; here per
    // micro-batch, as DeepSpeed regathers for every forward and backward). Dense parameters over the
    // data-parallel group, routed experts over the expert-data-parallel group; the part's parameters in
    // one all-gather per layer of equal size (the embedding and the head spread over the layers).
    const int layers = std::max(1, plan_.layers_per_part[static_cast<std::size_t>(part)]);
    const double expert = part_expert_parameters(plan_, part);
    const double dense = part_parameters(plan_, part) - expert;
    const double bytes = plan_.optimizer.param_bytes / layers;
    const Time per_layer = comm_.data_parallel(CollectiveOp::all_gather, Bytes(dense * bytes), false) +
                           comm_.data_parallel(CollectiveOp::all_gather, Bytes(expert * bytes), true);
    return {per_layer, per_layer * layers};
}

ChunkProgram ChunkPricer::with_parameter_gather(int part, const ChunkProgram& program) {
    if (plan_.parallel.zero_stage < 3) return program;
    const ParameterGather g = zero3_gather(part);
    if (g.total <= Time::zero()) return program;
    // The first layer's gather is exposed; each next layer's is prefetched under the compute before it
    // (DeepSpeed's stage-3 prefetch), so only what the chunk's compute cannot cover is exposed after it.
    ChunkProgram out;
    out.steps.push_back({true, g.first_layer, CommKind::none, "zero3.param_all_gather"});
    out.steps.insert(out.steps.end(), program.steps.begin(), program.steps.end());
    const Time rest = g.total - g.first_layer - program.compute_time();
    if (rest > Time::zero()) out.steps.push_back({true, rest, CommKind::none, "zero3.param_all_gather.rest"});
    return out;
}

ChunkProgram ChunkPricer::build(int part, WorkKind kind, bool shared_sms) {
    OperatorGraphOptions o;
    o.precision = plan_.precision;
    o.layout = part_layout(plan_, part);
    o.batch.sequences = plan_.micro_batch_size;
    o.batch.seq = plan_.seq;
    auto ops = [&](Phase phase) {
        o.phase = phase;
        return stage_operators(plan_.model, o);
    };
    const bool count = !shared_sms;
    switch (kind) {
        case WorkKind::forward: return with_parameter_gather(part, price(ops(Phase::train_forward), shared_sms, count));
        case WorkKind::backward_weight: return price(ops(Phase::train_backward_weight), shared_sms, count);
        case WorkKind::backward_input:
        case WorkKind::backward: {
            std::vector<Operator> b = ops(Phase::train_backward_input);
            if (kind == WorkKind::backward) b = merge_backward(b, ops(Phase::train_backward_weight));
            ChunkProgram program = price(b, shared_sms, count);
            // Full recomputation runs the stage's forward again, communication included, first; selective
            // recomputation reruns the norms, MLA's up-projections and the SwiGLU products.
            if (plan_.recompute == Recompute::full) {
                program = concatenate(price(ops(Phase::train_forward), shared_sms, false), program);
            } else if (plan_.recompute == Recompute::selective) {
                std::vector<Operator> again;
                for (Operator& op : ops(Phase::train_forward))
                    if (recomputed_selectively(op)) again.push_back(std::move(op));
                if (!again.empty()) program = concatenate(price(again, shared_sms, false), program);
            }
            // The weight-gradient chunk (W) needs no weights; B and the full backward do.
            return with_parameter_gather(part, program);
        }
    }
    throw std::logic_error("unknown work kind");
}

}  // namespace clustersim
