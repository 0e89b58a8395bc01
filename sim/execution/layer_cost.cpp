// Prices one decoder layer's operator graph with the kernel cost model (see layer_cost.hpp).
#include "sim/execution/layer_cost.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <stdexcept>

namespace clustersim {
namespace {

// A number with an SI prefix and three significant digits ("23.5G"), for the text table.
std::string si(double v) {
    constexpr std::array<std::pair<double, const char*>, 5> prefixes = {
        {{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}};
    for (const auto& [scale, name] : prefixes)
        if (std::abs(v) >= scale) return fmt::format("{:.3g}{}", v / scale, name);
    return fmt::format("{:.3g}", v);
}

// The operator's shape fields by name, in the kernel query's column order.
std::array<std::pair<const char*, std::int64_t>, 10> shape_fields(const Operator& op) {
    return {{{"m", op.m},
             {"n", op.n},
             {"k", op.k},
             {"groups", op.groups},
             {"batch", op.batch},
             {"heads", op.heads},
             {"kv_heads", op.kv_heads},
             {"head_dim", op.head_dim},
             {"seq", op.seq},
             {"context", op.context}}};
}

// The fields the operator graph filled (non-zero), "m=256 n=7168 k=2048".
std::string shape_text(const Operator& op) {
    std::string out;
    for (const auto& [name, value] : shape_fields(op))
        if (value != 0) out += fmt::format("{}{}={}", out.empty() ? "" : " ", name, value);
    return out;
}

nlohmann::ordered_json shape_json(const Operator& op) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [name, value] : shape_fields(op))
        if (value != 0) j[name] = value;
    return j;
}

// Operators the cost model has no table for (layernorm, gelu, cross_entropy) are element-wise and memory-bound: the
// graph's own bytes at the spec's HBM bandwidth, derated by its measured memory efficiency, as the
// cost model's roofline fallback does for ops it knows (kernels/README.md, step 4).
KernelPrediction memory_roofline(const Operator& op, const GpuSpec& spec) {
    const Bytes moved = op.bytes_read + op.bytes_written;
    KernelPrediction p;
    p.roofline_bound = moved / spec.hbm_bandwidth.value;
    p.time = moved / (spec.hbm_bandwidth.value * spec.memory_efficiency);
    p.provenance = Provenance::roofline;
    p.basis = fmt::format("roofline (no kernel table for {}: the operator graph's bytes at HBM bandwidth)",
                          to_string(op.kind));
    return p;
}

// a + b for the non-negative times of operators: Time's own + would wrap past 2^63 ps to a negative total.
Time add_within_clock(Time a, Time b) {
    std::int64_t ps = 0;
    if (__builtin_add_overflow(a.ps(), b.ps(), &ps)) throw TimeOverflow(a.seconds() + b.seconds());
    return Time::from_ps(ps);
}

std::string phase_batch_text(const OperatorGraphOptions& o) {
    if (o.phase == Phase::decode) {
        const auto& kv = o.batch.kv_lengths;
        const auto [lo, hi] = std::minmax_element(kv.begin(), kv.end());
        const std::string context = *lo == *hi ? fmt::format("{}", *lo) : fmt::format("{}..{}", *lo, *hi);
        if (o.batch.query_tokens > 1)
            return fmt::format("{} requests, {} query tokens each (speculative drafts) over {} cached tokens", kv.size(),
                               o.batch.query_tokens, context);
        return fmt::format("{} requests, one new token each over {} cached tokens", kv.size(), context);
    }
    std::string text = fmt::format("{} sequences x {} new tokens", o.batch.sequences, o.batch.seq);
    if (o.batch.cached_prefix > 0) text += fmt::format(" after {} cached", o.batch.cached_prefix);
    return text;
}

std::string layout_text(const ParallelLayout& l) {
    std::string text = fmt::format("tp {}", l.tp);
    if (l.attn_dp > 1) text += fmt::format(", attn_dp {}", l.attn_dp);
    if (l.ep > 1) text += fmt::format(", ep {}", l.ep);
    if (l.expert_tp > 1) text += fmt::format(", expert_tp {}", l.expert_tp);
    return text;
}

}  // namespace

int representative_layer(const ModelSpec& m) {
    for (int i = 0; i < m.layers; ++i)
        if (m.is_moe_layer(i)) return i;
    return 0;
}

KernelShape kernel_shape(const Operator& op) {
    KernelShape s;
    s.op = kernel_op(op);
    if (s.op.empty())
        throw std::invalid_argument(
            fmt::format("operator {} ({}) has no kernel table to price it", op.name, to_string(op.kind)));
    s.dtype = to_string(op.dtype);
    // Only the fields the op's tables fill (kernels/README.md): the cost model treats a field set on one
    // side and empty on the other as a different kind of shape, so an extra field (the graph's seq = 1
    // of a decode step, its n_group of top-k, n = heads x dim of RoPE) would push the query off the grid.
    if (s.op == "grouped_gemm") {
        s.m = op.m; s.n = op.n; s.k = op.k; s.groups = op.groups;
    } else if (s.op == "attn_prefill" || s.op == "attn_prefill_bwd" || s.op == "attn_decode" || s.op == "mla_decode") {
        s.batch = op.batch; s.heads = op.heads; s.kv_heads = op.kv_heads; s.head_dim = op.head_dim;
        s.n = op.n;  // the value head dim where it differs from head_dim (MLA), else empty
        // Decode: query tokens per request only when more than one (speculative drafts), as the tables' rows.
        const bool decode = s.op == "attn_decode" || s.op == "mla_decode";
        if (!decode || op.seq > 1) s.seq = op.seq;
        if (decode && op.kv_dtype != op.dtype) s.kv_dtype = to_string(op.kv_dtype);
        // Decode: the cached tokens. Prefill: the cached prefix, which the tables' prefill rows do not have;
        // such a query is answered off the measured lines (or by the roofline), whose work counts the new
        // tokens' causal square and their pairs with every cached token (kernels/operator_work.cpp).
        s.context = op.context;
    } else if (s.op == "rope") {
        s.m = op.m; s.heads = op.heads; s.head_dim = op.head_dim;
    } else if (s.op == "rmsnorm" || s.op == "residual_add" || s.op == "silu_mul" || s.op == "fp8_quant") {
        s.m = op.m; s.n = op.n;
    } else {  // gemm, moe_gate, moe_topk, moe_permute, moe_unpermute: m, n, k
        s.m = op.m; s.n = op.n; s.k = op.k;
    }
    // The graph labels a quantize operator by its BF16 input; the tables name the kernel by its FP8 output.
    if (s.op == "fp8_quant") s.dtype = "fp8";
    return s;
}

bool compute_bound(const Operator& op, const GpuSpec& spec) {
    if (op.flops.value() <= 0) return false;
    const Time flop_time = op.flops / spec.peak_flop_rate(to_string(op.dtype));
    const Time byte_time = (op.bytes_read + op.bytes_written) / spec.hbm_bandwidth.value;
    return flop_time > byte_time;
}

KernelPrediction predict_operator(const Operator& op, const KernelCostModel& cost_model) {
    if (op.is_communication())
        throw std::invalid_argument(fmt::format("operator {} is communication: the network model prices it", op.name));
    if (kernel_op(op).empty()) return memory_roofline(op, cost_model.profile().spec);
    KernelPrediction p = cost_model.predict(kernel_shape(op));
    if (op.kernel_scale != 1.0) {
        // The backward of an element-wise operator: its forward kernel's answer, scaled by the bytes.
        p.time = p.time * op.kernel_scale;
        p.roofline_bound = p.roofline_bound * op.kernel_scale;
        p.basis = fmt::format("{} x {:.3g} (backward bytes over the forward kernel's)", p.basis, op.kernel_scale);
    }
    return p;
}

LayerCost predict_layer_cost(const ModelSpec& m, int layer, const OperatorGraphOptions& options,
                             const KernelCostModel& cost_model) {
    LayerCost cost;
    cost.model = m.name;
    cost.gpu = cost_model.profile().spec.name;
    cost.layer = layer;
    cost.moe_layer = m.is_moe_layer(layer);
    cost.options = options;
    std::map<Provenance, ProvenanceShare> shares;  // ordered by enum value: deterministic output
    for (Operator& op : layer_operators(m, layer, options)) {
        OperatorCost c;
        if (op.is_communication()) {
            c.priced = false;
            cost.communication_bytes += op.comm_bytes;
            ++cost.communication_operators;
        } else {
            c.kernel_op = kernel_op(op);
            c.prediction = predict_operator(op, cost_model);
            cost.compute_time = add_within_clock(cost.compute_time, c.prediction.time);
            cost.flops += op.flops;
            cost.bytes += op.bytes_read + op.bytes_written;
            ProvenanceShare& s = shares[c.prediction.provenance];
            s.provenance = c.prediction.provenance;
            s.time += c.prediction.time;  // a part of compute_time, so within the clock too
            ++s.operators;
        }
        c.op = std::move(op);
        cost.operators.push_back(std::move(c));
    }
    for (auto& [provenance, s] : shares) {
        s.share = cost.compute_time > Time::zero() ? s.time / cost.compute_time : 0.0;
        cost.provenance.push_back(s);
    }
    return cost;
}

nlohmann::ordered_json layer_cost_json(const LayerCost& cost) {
    using json = nlohmann::ordered_json;
    const auto& o = cost.options;
    json j;
    j["model"] = cost.model;
    j["gpu"] = cost.gpu;
    j["layer"] = cost.layer;
    j["moe_layer"] = cost.moe_layer;
    j["phase"] = to_string(o.phase);
    j["precision"] = o.precision == Precision::fp8 ? "fp8" : "bf16";
    j["layout"] = {{"tp", o.layout.tp}, {"attn_dp", o.layout.attn_dp}, {"ep", o.layout.ep},
                   {"expert_tp", o.layout.expert_tp}};
    j["tokens"] = o.batch.tokens(o.phase);
    if (o.phase == Phase::decode) {
        // Summarized: a decode batch may hold thousands of requests.
        const auto& kv = o.batch.kv_lengths;
        double sum = 0;
        for (auto c : kv) sum += static_cast<double>(c);
        const auto [lo, hi] = std::minmax_element(kv.begin(), kv.end());
        j["requests"] = kv.size();
        j["context_mean"] = kv.empty() ? 0.0 : sum / static_cast<double>(kv.size());
        j["context_min"] = kv.empty() ? 0 : *lo;
        j["context_max"] = kv.empty() ? 0 : *hi;
    } else {
        j["sequences"] = o.batch.sequences;
        j["seq"] = o.batch.seq;
        j["cached_prefix"] = o.batch.cached_prefix;
    }
    j["compute_time_us"] = cost.compute_time.us();
    j["flops"] = cost.flops.flops();
    j["bytes"] = cost.bytes.bytes();
    json shares = json::array();
    for (const auto& s : cost.provenance)
        shares.push_back({{"provenance", to_string(s.provenance)}, {"time_us", s.time.us()}, {"share", s.share},
                          {"operators", s.operators}});
    j["provenance"] = shares;
    j["communication"] = {{"operators", cost.communication_operators},
                          {"payload_bytes", cost.communication_bytes.bytes()},
                          {"priced", false},
                          {"note", "excluded from compute_time_us: the network model prices communication"}};
    json ops = json::array();
    for (const auto& c : cost.operators) {
        json e;
        e["name"] = c.op.name;
        e["kind"] = to_string(c.op.kind);
        e["dtype"] = to_string(c.op.dtype);
        e["shape"] = shape_json(c.op);
        if (c.priced) {
            e["kernel_op"] = c.kernel_op;
            e["flops"] = c.op.flops.flops();
            e["bytes"] = (c.op.bytes_read + c.op.bytes_written).bytes();
            e["time_us"] = c.prediction.time.us();
            e["roofline_us"] = c.prediction.roofline_bound.us();
            e["provenance"] = to_string(c.prediction.provenance);
            e["basis"] = c.prediction.basis;
        } else {
            e["comm"] = to_string(c.op.comm);
            e["payload_bytes"] = c.op.comm_bytes.bytes();
            e["priced"] = false;
        }
        ops.push_back(std::move(e));
    }
    j["operators"] = ops;
    return j;
}

std::string layer_cost_text(const LayerCost& cost) {
    const auto& o = cost.options;
    std::string out;
    out += fmt::format("{} layer {} ({}) on {}: {}, {}; precision {}; {}\n", cost.model, cost.layer,
                       cost.moe_layer ? "MoE" : "dense", cost.gpu, to_string(o.phase), phase_batch_text(o),
                       o.precision == Precision::fp8 ? "fp8" : "bf16", layout_text(o.layout));
    std::size_t name_width = 4;
    for (const auto& c : cost.operators) name_width = std::max(name_width, c.op.name.size());
    out += fmt::format("\n{:<{}}  {:<16} {:<5} {:>8} {:>8} {:>10} {:>6}  {:<12}  {}\n", "operator", name_width, "kind",
                       "dtype", "FLOPs", "bytes", "time_us", "share", "provenance", "shape");
    for (const auto& c : cost.operators) {
        if (c.priced) {
            const double share = cost.compute_time > Time::zero() ? c.prediction.time / cost.compute_time : 0.0;
            out += fmt::format("{:<{}}  {:<16} {:<5} {:>8} {:>8} {:>10.2f} {:>5.1f}%  {:<12}  {}\n", c.op.name,
                               name_width, to_string(c.op.kind), to_string(c.op.dtype), si(c.op.flops.flops()),
                               si((c.op.bytes_read + c.op.bytes_written).bytes()), c.prediction.time.us(),
                               100.0 * share, to_string(c.prediction.provenance), shape_text(c.op));
        } else {
            out += fmt::format("{:<{}}  {:<16} {:<5} {:>8} {:>8} {:>10} {:>6}  {:<12}  payload {}B per rank\n",
                               c.op.name, name_width, to_string(c.op.comm), "", "", "", "excluded", "",
                               "not priced", si(c.op.comm_bytes.bytes()));
        }
    }
    const double seconds = cost.compute_time.seconds();
    out += fmt::format("\ncompute time: {:.2f} us ({} FLOP, {}B of HBM traffic; {:.1f} TFLOP/s, {:.0f} GB/s)\n",
                       cost.compute_time.us(), si(cost.flops.flops()), si(cost.bytes.bytes()),
                       seconds > 0 ? cost.flops.flops() / seconds * 1e-12 : 0.0,
                       seconds > 0 ? cost.bytes.bytes() / seconds * 1e-9 : 0.0);
    out += "provenance of the compute time:";
    for (const auto& s : cost.provenance)
        out += fmt::format(" {} {:.1f}% ({} operator{})", to_string(s.provenance), 100.0 * s.share, s.operators,
                           s.operators == 1 ? "" : "s");
    out += "\n";
    if (cost.communication_operators > 0) {
        out += fmt::format("communication: {} operator{} moving {}B per rank, excluded from the compute time (the "
                           "network model prices them)\n",
                           cost.communication_operators, cost.communication_operators == 1 ? "" : "s",
                           si(cost.communication_bytes.bytes()));
    } else {
        out += "communication: none in this layout\n";
    }
    return out;
}

}  // namespace clustersim
