// Loading and running `serving` scenarios (the format is in sim/serving/README.md).
#include "sim/serving/serving_scenario.hpp"

#include "kernels/kernel_cost_model.hpp"
#include "models/model_loader.hpp"
#include "sim/core/trace_writer.hpp"
#include "sim/moe/batch_expert_imbalance.hpp"
#include "sim/moe/eplb_placement.hpp"
#include "sim/moe/expert_rebalancing.hpp"
#include "sim/moe/expert_routing_model.hpp"
#include "sim/moe/gpu_expert_load.hpp"
#include "sim/serving/batch_cost_model.hpp"
#include "sim/serving/latency_plot.hpp"
#include "sim/serving/network_expert_comm.hpp"
#include "sim/serving/network_kv_transfer_channel.hpp"
#include "sim/serving/pool_expert_load.hpp"
#include "sim/serving/serving_simulator.hpp"
#include "sim/serving/workload.hpp"
#include "topologies/topology.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <utility>

namespace clustersim {
namespace {

namespace fs = std::filesystem;

// vLLM's default share of GPU memory the engine may use (EngineArgs.gpu_memory_utilization = 0.9,
// docs.vllm.ai "Engine Arguments").
constexpr double kDefaultGpuMemoryUtilization = 0.9;
// vLLM's default KV block size on CUDA (EngineArgs.block_size = 16, docs.vllm.ai "Engine Arguments").
constexpr std::int64_t kDefaultBlockTokens = 16;
// SGLang's decode pre-allocation keeps room for this many decode tokens per request held (running, in the
// transfer queue or waiting) before it pre-allocates KV for a transfer: sgl-project/sglang
// python/sglang/srt/disaggregation/decode.py, DecodePreallocQueue._allocatable_tokens and
// DEFAULT_RESERVED_DECODE_TOKENS = 512 (env SGLANG_NUM_RESERVED_DECODE_TOKENS), as read in stored copies.
constexpr std::int64_t kDefaultReservedDecodeTokens = 512;
// SMs DeepEP's normal dispatch and combine kernels use unless Buffer.set_num_sms() sets another
// (deepseek-ai/DeepEP deep_ep/buffer.py: `num_sms: int = 20`).
constexpr int kDeepEpDefaultSms = 20;
// Logits are kept in FP32 for sampling.
constexpr double kLogitBytes = 4.0;

double dtype_bytes(const std::string& dtype) {
    return dtype == "fp8" ? 1.0 : 2.0;
}

// `prefix_cache:` of a pool as written; completed into a PrefixCacheSpec once the model (KV bytes per
// token) and the workload (block size) are known.
struct PrefixCachePlan {
    explicit PrefixCachePlan(MapReader r) : reader(std::move(r)) {}
    std::optional<std::int64_t> capacity_tokens;  // given as tokens
    std::optional<Bytes> capacity_bytes;          // or as a size
    bool shared = false;
    std::optional<Bandwidth> load_bandwidth;
    MapReader reader;  // for the errors found later
};

struct PoolPlan {
    PoolSpec spec;
    ParallelLayout layout;
    bool overlap = false;
    std::optional<std::int64_t> kv_capacity_override;
    double memory_utilization = kDefaultGpuMemoryUtilization;
    std::optional<Bytes> activation_reserve;
    int redundant_experts = 0;
    std::optional<PrefixCachePlan> prefix_cache;
    std::optional<std::string> ep_communication;  // as written: network or estimate (default: resolved later)
    int communication_sms = 0;                    // SMs DeepEP's normal kernels hold (communication_sms)
    std::optional<MapReader> reader;              // the pool's, for errors and defaults found later
};

struct ServingScenario {
    ModelSpec model;
    std::string model_name;
    std::shared_ptr<const KernelCostModel> kernels;
    std::shared_ptr<const Topology> topology;
    Precision precision = Precision::bf16;
    std::string weight_dtype, kv_dtype;
    std::string cost_kind;  // execution or fixed
    Time fixed_base, fixed_per_prefill_token, fixed_per_decode_token;
    int buckets_per_doubling = 16;
    std::vector<PoolPlan> pools;
    ServingConfig config;
    std::optional<Bandwidth> kv_bandwidth;
    std::optional<Time> kv_latency;
    // KV transfers as flows on the topology (network), or over a FIFO link per decode instance (fifo).
    bool kv_network = false;
    std::vector<KvEndpoint> kv_endpoints;  // network: where each instance sits, in instance order
    // Workload.
    bool synthetic = true;
    SyntheticWorkloadSpec synthetic_spec;
    TraceWorkloadSpec trace_spec;
    std::vector<Request> trace_requests;
    // Where the prefix cache's blocks get their identities: trace_hash_ids, sessions or none (hit ratio).
    std::string prefix_identities = "none";
    std::string mode;  // colocated, disaggregated, prefill_only or decode_only
    bool iterations_csv = true;
    bool requests_csv = true;
    // Expert load (MoE models with ep > 1).
    std::string routing = "balanced";
    double routing_exponent = 0;
    bool batch_noise = true;  // expert_load.batch_noise
    // Expert load over time (expert_load.drift / rebalance; sim/moe/expert_rebalancing.hpp), for every
    // expert-parallel pool; absent: one imbalance for the whole run.
    std::optional<ExpertDriftSpec> drift;
    std::optional<ExpertRebalanceSpec> rebalance;
    std::optional<Bandwidth> fetch_bandwidth;  // rebalance.bandwidth (default: from the topology's links)
    bool expert_load_over_time() const { return drift || rebalance; }
    // Per pool (aligned with config.pools): the execution cost options, completed at run time.
    std::vector<ExecutionCostOptions> cost_options;
    // Optional load search: the load is an output, found by bisection.
    struct LoadSearch {
        bool throughput = false;        // false: the speed of a decoding request; true: decode tokens/s per node
        bool over_concurrency = false;  // false: over the arrival rate; true: over the last pool's max_batch
        double target = 0;              // tokens/s per decoding request, or per decode node
        double min = 0, max = 0;        // the bracket of the searched variable
        double tolerance = 0.01;        // relative, on the speed
        int max_runs = 20;
    };
    std::optional<LoadSearch> load_search;
    // For errors found while a run is generated (TimeRangeError): where the keys it names are, by key path.
    std::map<std::string, Diagnostic> runtime_keys;
    std::optional<MapReader> kv_reader;  // for the FIFO link's check once the KV capacity is known
};

// Where `key` of `r` is (its value, else the mapping), for an error found after loading, when the
// readers' diagnostics (the loader's) are gone.
Diagnostic key_location(const MapReader& r, const std::string& key) {
    const YAML::Node map = r.node();  // const: a lookup must not insert the key
    const YAML::Node n = map.IsMap() ? map[key] : YAML::Node();
    Diagnostic d;
    d.where = r.location();
    if (n.IsDefined() && !n.IsNull() && !n.Mark().is_null())
        d.where = {r.document()->file(), n.Mark().line + 1, n.Mark().column + 1};
    d.key_path = r.path().empty() ? key : r.path() + "." + key;
    return d;
}

// Reads `expert_load.drift` and `expert_load.rebalance` (after the routing keys): the expert load
// over time. Read only when given, so scenarios without them resolve as before.
void read_expert_load_over_time(MapReader& load, ServingScenario& s) {
    if (load.has("drift")) {
        MapReader d = load.child("drift", "expert popularity that changes over the run", false);
        ExpertDriftSpec drift;
        drift.interval = d.required<Time>("interval", "time between drift steps", positive<Time>());
        drift.share = d.required<double>(
            "share", "share of each layer's experts that trade popularities (random pairs swapped) at each step",
            in_range(0.0, 1.0));
        d.finish();
        s.drift = drift;
    }
    if (load.has("rebalance")) {
        MapReader r = load.child("rebalance", "EPLB rerun periodically from the loads seen since the last run", false);
        ExpertRebalanceSpec rebalance;
        rebalance.interval = r.required<Time>("interval", "time between EPLB reruns", positive<Time>());
        s.fetch_bandwidth = r.maybe<Bandwidth>(
            "bandwidth",
            "per GPU, at which expert weights are fetched (default: NVLink when the EP group fits in one host, "
            "else the network, from the topology)",
            positive<Bandwidth>());
        r.finish();
        s.rebalance = rebalance;
    }
    if (!s.expert_load_over_time()) return;
    const char* key = s.drift ? "drift" : "rebalance";
    if (s.routing == "balanced")
        load.error(key, fmt::format("{} needs an expert load model with skew: routing balanced has every expert "
                                    "equally popular, so nothing drifts and EPLB has nothing to rebalance; give "
                                    "routing: power_law with an exponent",
                                    key));
}

// Reads `load:`, which makes the load an output: bisection (geometric) for the arrival rate, or for
// the decode concurrency (the last pool's max_batch, under an arrival rate above what it serves), at
// which a decoding request runs at `target` tokens/s.
void read_load(MapReader& root, ServingScenario& s) {
    if (!root.has("load")) return;
    MapReader r = root.child("load", "search for the load instead of giving it", false);
    ServingScenario::LoadSearch l;
    l.throughput = r.choice("search", {"output_speed_per_request", "output_tokens_per_s_per_node_decode"}, std::nullopt,
                            "output_speed_per_request: bisect until a decoding request runs at `target` "
                            "tokens/s; output_tokens_per_s_per_node_decode: until the decode pools deliver "
                            "`target` tokens/s per node") == "output_tokens_per_s_per_node_decode";
    l.over_concurrency =
        r.choice("over", {"arrival_rate", "decode_concurrency"}, "arrival_rate",
                 "arrival_rate (open loop), or decode_concurrency: the decode (or colocated) pool's max_batch, "
                 "with arrivals above what it serves, so that it always runs that many requests") ==
        "decode_concurrency";
    l.target = r.required<double>("target", "tokens/s per decoding request, or per decode node", positive<double>());
    l.min = r.required<double>("min", "lowest value tried: requests/s, or requests per instance", positive<double>());
    l.max = r.required<double>("max", "highest value tried", positive<double>());
    if (l.max <= l.min) r.error("max", "max must be above min");
    l.tolerance = r.optional<double>("tolerance", 0.01, "stop when the speed is within this share of the target",
                                     in_range(1e-6, 0.5));
    l.max_runs = r.optional<int>("max_runs", 20, "most bisection runs", in_range(1, 200));
    r.finish();
    if (!s.synthetic && !l.over_concurrency)
        root.error("load", "a search over the arrival rate needs a synthetic workload");
    s.load_search = l;
}

// `profile` receives the rate profile's reader, when there is one, for the checks that need the duration.
ArrivalSpec read_arrival(MapReader& parent, std::optional<MapReader>& profile) {
    MapReader r = parent.child("arrival", "how requests arrive");
    ArrivalSpec a;
    a.kind = r.choice("process", {"poisson", "gamma"}, "poisson",
                      "poisson, or gamma inter-arrival times with a coefficient of variation (burstiness)") == "poisson"
                 ? ArrivalKind::poisson
                 : ArrivalKind::gamma;
    a.rate_per_s = r.required<double>("rate_per_s", "mean requests per second", positive<double>());
    a.cv = r.optional<double>("cv", 1.0, "gamma: coefficient of variation of inter-arrival times (1 = Poisson)",
                              in_range(0.01, 100.0));
    if (a.kind == ArrivalKind::poisson && a.cv != 1.0)
        r.error("cv", "cv applies to the gamma process; poisson has cv 1");
    if (r.has("rate_profile")) {
        MapReader p = r.child("rate_profile", "a rate varying over a period", false);
        a.profile.period = p.required<Time>("period", "length of one cycle, such as 24h", positive<Time>());
        a.profile.multipliers = p.list<double>("multipliers", "rate factors over equal segments of the period");
        double sum = 0;
        std::string negative;
        for (std::size_t i = 0; i < a.profile.multipliers.size(); ++i) {
            const double m = a.profile.multipliers[i];
            if (m < 0 && negative.empty()) negative = fmt::format("{} at position {}", m, i + 1);
            sum += m;
        }
        if (!negative.empty())
            p.error("multipliers",
                    fmt::format("negative factors are not allowed (found {}); a rate is 0 or more", negative));
        else if (a.profile.multipliers.empty() || !(sum > 0))
            p.error("multipliers", "expected at least one positive factor");
        p.finish();
        profile = p;
    }
    r.finish();
    return a;
}

// The checks of a synthetic workload against the simulator's time range and the warm-up (after its
// arrival, requests and duration are read): arrivals end within kMaxArrivalSeconds, and some request
// is expected to arrive after the warm-up.
void check_synthetic_time_range(MapReader& root, MapReader& w, std::optional<MapReader>& profile, ServingScenario& s) {
    const SyntheticWorkloadSpec& spec = s.synthetic_spec;
    const ArrivalSpec& a = spec.arrival;
    bool usable = a.rate_per_s > 0;  // else reported
    if (!a.profile.multipliers.empty()) {
        const auto& m = a.profile.multipliers;
        usable = usable && a.profile.period > Time::zero() &&
                 std::all_of(m.begin(), m.end(), [](double f) { return f >= 0; }) &&
                 expected_arrivals(a, a.profile.period.seconds()) > 0;
    }
    if (!usable) return;
    if (spec.duration && spec.duration->seconds() > kMaxArrivalSeconds) {
        w.error("duration",
                fmt::format("arrivals until {} would run past {} (half of the simulator's time range of about 106 "
                            "days, the rest left for the requests to drain); lower duration",
                            days_text(spec.duration->seconds()), days_text(kMaxArrivalSeconds)));
        return;
    }
    if (spec.requests && !spec.duration) {
        const double expected_s = time_of_expected_arrivals(a, static_cast<double>(*spec.requests));
        if (!(expected_s <= kMaxArrivalSeconds)) {
            w.error(
                "requests",
                fmt::format("{} requests at {} per second{} would take about {} to arrive, past {} (half of the "
                            "simulator's time range of about 106 days, the rest left for the requests to drain): "
                            "raise rate_per_s or lower requests",
                            *spec.requests, a.rate_per_s, a.profile.multipliers.empty() ? "" : " (with the profile)",
                            days_text(expected_s), days_text(kMaxArrivalSeconds)));
            return;
        }
    }
    if (!spec.duration) return;
    const Time warmup = s.config.warmup;
    if (warmup >= *spec.duration) {
        root.error("warmup",
                   fmt::format("the warm-up ({}) must end before the workload's duration ({}) ends the arrivals: no "
                               "request arriving after it would be measured; lower warmup or raise duration",
                               to_string(warmup), to_string(*spec.duration)));
        return;
    }
    if (!profile) return;
    const double end_s = spec.duration->seconds();
    const double in_run = expected_arrivals(a, end_s);
    if (!(in_run > 0)) {
        profile->error("multipliers",
                       fmt::format("the rate is 0 over the whole run (arrivals end at {}, within the profile's zero "
                                   "factors of its {} period): no request would arrive; give a positive factor "
                                   "there or a longer duration",
                                   to_string(*spec.duration), to_string(a.profile.period)));
    } else if (!(in_run - expected_arrivals(a, warmup.seconds()) > 0)) {
        profile->error("multipliers",
                       fmt::format("the rate is 0 from the warm-up's end ({}) to the end of arrivals ({}): no request "
                                   "would be measured; give a positive factor there, lower warmup or raise duration",
                                   to_string(warmup), to_string(*spec.duration)));
    }
}

void read_workload(MapReader& root, const ScenarioContext& context, ServingScenario& s) {
    const bool prefix_cache = !s.pools.empty() && s.pools.front().prefix_cache.has_value();
    MapReader w = root.child("workload", "the requests to serve");
    const std::string kind = w.choice("kind", {"synthetic", "trace"}, std::nullopt, "synthetic arrivals or a trace");
    const double hit = w.optional<double>("prefix_cache_hit_ratio", 0.0,
                                          "share of each prompt found in the prefix cache (trace files with hash "
                                          "ids give their own)",
                                          in_range(0.0, 1.0));
    if (kind == "synthetic") {
        s.synthetic = true;
        auto& spec = s.synthetic_spec;
        std::optional<MapReader> profile;
        spec.arrival = read_arrival(w, profile);
        spec.input = read_length_distribution(w, "input_tokens", context.scenario_dir, "prompt lengths");
        spec.output = read_length_distribution(w, "output_tokens", context.scenario_dir, "output lengths");
        spec.prefix_hit_ratio = hit;
        spec.requests = w.maybe<std::int64_t>("requests", "stop after this many requests", at_least<std::int64_t>(1));
        spec.duration = w.maybe<Time>("duration", "stop arrivals after this time", positive<Time>());
        if (!spec.requests && !spec.duration)
            w.error_here("a synthetic workload needs `requests` or `duration` to end");
        check_synthetic_time_range(root, w, profile, s);
        if (w.has("sessions")) {
            MapReader m = w.child("sessions", "multi-turn sessions: follow-up turns after each reply", false);
            SessionSpec session;
            session.turns = read_length_distribution(m, "turns", context.scenario_dir, "turns per session");
            session.think_time_mean = m.required<Time>(
                "think_time", "mean pause between a reply and the next turn (exponential)", positive<Time>());
            session.new_input = read_length_distribution(m, "new_input_tokens", context.scenario_dir,
                                                         "tokens the user adds per follow-up");
            session.output =
                read_length_distribution(m, "output_tokens", context.scenario_dir, "output tokens of a follow-up turn");
            if (prefix_cache && m.has("cache"))
                m.error("cache", fmt::format("with a prefix cache (deployment.{}.prefix_cache) its scope says where a "
                                             "conversation's KV stays; remove sessions.cache",
                                             s.pools.front().spec.name));
            session.per_instance_cache =
                m.choice("cache", {"shared", "per_instance"}, "shared",
                         "where the conversation's KV stays between turns: shared (a hit on any instance) or "
                         "per_instance (a hit only on the instance that computed it)") == "per_instance" &&
                !prefix_cache;
            m.finish();
            s.config.sessions = session;
            if (prefix_cache) s.prefix_identities = "sessions";
        }
    } else if (kind == "trace") {
        s.synthetic = false;
        auto& t = s.trace_spec;
        t.file = w.required<std::string>("file", "the trace file, relative to the scenario");
        t.format = w.choice("format", {"azure_csv", "mooncake_jsonl"}, std::nullopt,
                            "azure_csv (TIMESTAMP,ContextTokens,GeneratedTokens) or mooncake_jsonl") == "azure_csv"
                       ? TraceFormat::azure_csv
                       : TraceFormat::mooncake_jsonl;
        t.time_scale = w.optional<double>("time_scale", 1.0, "arrival times are divided by this", positive<double>());
        t.max_requests = w.maybe<std::int64_t>("max_requests", "replay only the first N", at_least<std::int64_t>(1));
        t.mooncake_block_tokens = w.optional<std::int64_t>(
            "block_tokens", 512, "mooncake: tokens per hash id (the trace's README: 512)", at_least<std::int64_t>(1));
        t.prefix_hit_ratio = hit;
        if (!t.file.empty()) {
            const fs::path path = fs::path(t.file).is_absolute() ? fs::path(t.file) : context.scenario_dir / t.file;
            auto& diagnostics = w.document()->diagnostics();
            // With a prefix cache, a Mooncake trace's hash ids stay on the requests for the cache to resolve.
            const TraceHashIds hash_ids = prefix_cache ? TraceHashIds::keep : TraceHashIds::resolve;
            s.trace_requests = t.format == TraceFormat::azure_csv
                                   ? read_azure_trace(path.string(), diagnostics)
                                   : read_mooncake_trace(path.string(), t.mooncake_block_tokens, diagnostics, hash_ids);
            if (prefix_cache && t.format == TraceFormat::mooncake_jsonl) s.prefix_identities = "trace_hash_ids";
            if (t.max_requests && static_cast<std::int64_t>(s.trace_requests.size()) > *t.max_requests)
                s.trace_requests.resize(static_cast<std::size_t>(*t.max_requests));
            const double last_s =
                s.trace_requests.empty() ? 0.0 : s.trace_requests.back().arrival.seconds() / t.time_scale;
            if (!(last_s <= kMaxArrivalSeconds)) {
                w.error(w.has("time_scale") ? "time_scale" : "file",
                        fmt::format("the trace's last request arrives {:.6g} s after its first; divided by time_scale "
                                    "{} that is {}, past {} (half of the simulator's time range of about 106 days, "
                                    "the rest left for the requests to drain): raise time_scale or set max_requests",
                                    s.trace_requests.back().arrival.seconds(), t.time_scale, days_text(last_s),
                                    days_text(kMaxArrivalSeconds)));
                s.trace_requests.clear();
            }
            for (auto& r : s.trace_requests) {
                r.arrival = Time::from_seconds(r.arrival.seconds() / t.time_scale);
                if (t.format == TraceFormat::azure_csv) r.cached_tokens = cached_prefix(r.input_tokens, hit);
            }
            if (!s.trace_requests.empty() && s.config.warmup > s.trace_requests.back().arrival)
                root.error("warmup",
                           fmt::format("the warm-up ({}) ends after the trace's last arrival ({}{}), so no request "
                                       "would be measured; lower warmup",
                                       to_string(s.config.warmup), to_string(s.trace_requests.back().arrival),
                                       t.time_scale != 1.0 ? fmt::format(" with time_scale {}", t.time_scale) : ""));
        }
    }
    w.finish();
    s.runtime_keys["workload.requests"] = key_location(w, "requests");
}

PoolPlan read_pool(MapReader& d, std::string_view key, InstanceRole role, const ModelSpec& model, bool model_ok) {
    MapReader r = d.child(key, fmt::format("the {} instances", to_string(role)));
    PoolPlan p;
    p.spec.name = std::string(key);
    p.spec.role = role;
    p.spec.instances = r.optional<int>("instances", 1, "instances in the pool", in_range(1, 100000));
    MapReader l = r.child("layout", "parallel layout of one instance");
    p.layout.tp = l.optional<int>("tp", 1, "tensor parallelism: the GPUs of one instance", in_range(1, 4096));
    p.layout.attn_dp = l.optional<int>("attn_dp", 1, "attention data parallelism inside tp", in_range(1, 4096));
    p.layout.ep = l.optional<int>("ep", 1, "expert parallelism", in_range(1, 4096));
    p.layout.expert_tp = l.optional<int>("expert_tp", 1, "tensor parallelism inside each expert", in_range(1, 4096));
    const auto dense_tp = l.maybe<int>(
        "dense_tp",
        "tensor parallelism of the dense FFN layers (default tp; under attention DP a group gathers the tokens of "
        "dense_tp / attn_tp attention ranks; 1: a whole copy on every GPU, no gather)",
        in_range(1, 4096));
    p.layout.dense_tp = dense_tp.value_or(0);
    if (!dense_tp) l.resolved()["dense_tp"] = p.layout.tp;
    const auto vocab_tp = l.maybe<int>(
        "vocab_tp",
        "tensor parallelism of the embedding and LM head (default tp; under attention DP a group gathers the hidden "
        "states and logits of vocab_tp / attn_tp attention ranks; attn_tp: SGLang's --enable-dp-lm-head; 1: a whole "
        "copy on every GPU)",
        in_range(1, 4096));
    p.layout.vocab_tp = vocab_tp.value_or(0);
    if (!vocab_tp) l.resolved()["vocab_tp"] = p.layout.tp;
    // Read before the layout is checked: the routed plus redundant experts must spread evenly over ep.
    p.redundant_experts = r.optional<int>(
        "redundant_experts", 0,
        "extra expert replicas, placed by EPLB from the routing model's loads (0: none); each GPU holds "
        "(routed + redundant) / ep experts",
        in_range(0, 4096));
    p.layout.redundant_experts = p.redundant_experts;
    if (model_ok) {
        try {
            validate_layout(model, p.layout);
        } catch (const std::invalid_argument& e) {
            l.error_here(e.what());
        }
        if (model.moe.routed_experts > 0 && p.layout.ep * p.layout.expert_tp != p.layout.tp)
            l.error_here(
                fmt::format("ep x expert_tp ({} x {}) must equal tp ({}): the experts are spread over the "
                            "instance's GPUs",
                            p.layout.ep, p.layout.expert_tp, p.layout.tp));
        if (model.moe.routed_experts == 0 && (p.layout.ep != 1 || p.layout.expert_tp != 1))
            l.error_here(fmt::format("model {} has no experts; ep and expert_tp must be 1", model.name));
    }
    l.finish();
    p.spec.instance.gpus = p.layout.tp;
    p.spec.instance.attention_dp = p.layout.attn_dp;
    p.spec.instance.max_batch = r.optional<std::int64_t>(
        "max_batch", 256,
        "requests running at once (vLLM's max_num_seqs; the default is a modelling choice near vLLM's)",
        at_least<std::int64_t>(1));
    p.spec.instance.token_budget = r.optional<std::int64_t>(
        "token_budget", 8192,
        "tokens per iteration (vLLM's max_num_batched_tokens; the default is a modelling choice near vLLM's)",
        at_least<std::int64_t>(1));
    p.spec.instance.block_tokens =
        r.optional<std::int64_t>("block_tokens", kDefaultBlockTokens, "tokens per KV block", at_least<std::int64_t>(1));
    if (role == InstanceRole::decode)
        p.spec.instance.reserved_decode_tokens = r.optional<std::int64_t>(
            "reserved_decode_tokens", kDefaultReservedDecodeTokens,
            "tokens of decode room kept per request held before a KV transfer may start (SGLang's "
            "num_reserved_decode_tokens; 0: transfers take any free blocks)",
            at_least<std::int64_t>(0));
    p.memory_utilization =
        r.optional<double>("gpu_memory_utilization", kDefaultGpuMemoryUtilization,
                           "share of HBM for weights, activations and KV cache", in_range(0.05, 1.0));
    p.activation_reserve = r.maybe<Bytes>("activation_reserve", "HBM per GPU kept for activations (default: computed)");
    p.kv_capacity_override = r.maybe<std::int64_t>(
        "kv_capacity_tokens", "KV cache of one instance in tokens (default: from HBM left)", at_least<std::int64_t>(1));
    if (r.has("cuda_graph_batch_sizes")) {
        p.spec.instance.cuda_graph_batch_sizes = r.list<std::int64_t>(
            "cuda_graph_batch_sizes", "decode batch sizes captured as CUDA graphs (decode-only batches are padded up)",
            false);
        const auto& g = p.spec.instance.cuda_graph_batch_sizes;
        // A rank decodes at most max_batch / attn_dp requests at once; vLLM captures no graph above
        // max_num_seqs, and a larger size here would pad every smaller batch up to it.
        const std::int64_t per_rank =
            (p.spec.instance.max_batch + p.spec.instance.attention_dp - 1) / p.spec.instance.attention_dp;
        for (std::size_t i = 0; i < g.size(); ++i) {
            if (g[i] < 1 || (i > 0 && g[i] <= g[i - 1])) {
                r.error("cuda_graph_batch_sizes", "expected positive sizes in increasing order");
                break;
            }
            if (g[i] > per_rank) {
                r.error("cuda_graph_batch_sizes",
                        fmt::format("{} is above the {} requests a rank decodes at once (max_batch {} / attn_dp {}), "
                                    "so every smaller batch would be padded up to it; list sizes up to {}",
                                    g[i], per_rank, p.spec.instance.max_batch, p.spec.instance.attention_dp, per_rank));
                break;
            }
        }
    }
    p.overlap = r.optional<bool>("overlap_communication", false,
                                 "two-micro-batch overlap: communication hidden behind compute");
    p.communication_sms = r.optional<int>(
        "communication_sms", kDeepEpDefaultSms,
        "SMs DeepEP's normal kernels hold while they run, taken from the other micro-batch's compute under "
        "overlap_communication (default 20: DeepEP's Buffer.num_sms)",
        at_least(0));
    if (r.has("ep_communication"))
        p.ep_communication = r.choice(
            "ep_communication", {"network", "estimate"}, std::nullopt,
            "how EP dispatch and combine are priced: network (DeepEP calls simulated on the topology's flow-level "
            "network) or estimate (from link bandwidths); default network where the topology holds the instance");
    const std::string router =
        r.choice("router", {"round_robin", "least_loaded", "kv_aware"}, "round_robin",
                 "how requests are spread over the pool's instances (kv_aware: a follow-up turn to the instance "
                 "holding the longest cached prefix of its session, else least loaded)");
    p.spec.router = router == "round_robin"    ? RouterKind::round_robin
                    : router == "least_loaded" ? RouterKind::least_loaded
                                               : RouterKind::kv_aware;
    if (r.has("prefix_cache")) {
        MapReader c = r.child("prefix_cache", "a prefix cache with a capacity and LRU eviction", false);
        if (role == InstanceRole::decode)
            r.error("prefix_cache",
                    "a prefix cache belongs to the pool that prefills (deployment.prefill or deployment.colocated); "
                    "decode instances receive their KV by transfer");
        PrefixCachePlan plan(c);
        const std::string capacity = c.required<std::string>(
            "capacity",
            "what one cache holds: tokens (an integer), or a size such as 2TB converted with the instance's KV "
            "bytes per token");
        std::string problem;
        if (capacity.empty()) {
            // missing: reported
        } else if (const auto tokens = ValueCodec<std::int64_t>::decode(capacity, problem)) {
            if (*tokens < 1)
                c.error("capacity", fmt::format("expected a positive token count; found {}", capacity));
            else
                plan.capacity_tokens = *tokens;
        } else {
            try {
                plan.capacity_bytes = parse_bytes(capacity);
                if (!(*plan.capacity_bytes > Bytes{}))
                    c.error("capacity", fmt::format("expected a positive size; found {}", capacity));
            } catch (const UnitError&) {
                c.error("capacity",
                        fmt::format("expected a token count (such as 2000000) or a size with a unit (such as 2TB); "
                                    "found \"{}\"",
                                    capacity));
            }
        }
        plan.shared = c.choice("scope", {"per_instance", "shared"}, "per_instance",
                               "per_instance: each instance caches what it computed; shared: one cache every "
                               "instance of the pool reaches, of this capacity") == "shared";
        plan.load_bandwidth = c.maybe<Bandwidth>(
            "load_bandwidth",
            "hits are loaded from a host or disk tier at this rate per instance before the prefill (none: "
            "GPU-resident, free)",
            positive<Bandwidth>());
        c.finish();
        if (role != InstanceRole::decode) p.prefix_cache = plan;
    }
    r.finish();
    p.reader = r;
    return p;
}

// Reads how a pool's EP dispatch and combine are priced (`ep_communication`, default network where the
// network model can simulate the instance's EP group) into its cost options; errors go to the pool's key.
void choose_ep_communication(const ServingScenario& s, PoolPlan& p, bool topology_ok, ExecutionCostOptions& o) {
    const bool has_ep = s.model.moe.routed_experts > 0 && p.layout.ep > 1;
    // The network model simulates the call on the topology's first ep GPUs, as DeepEP runs it: the same
    // number of EP ranks on every host.
    std::string why_not;
    if (!has_ep) {
        why_not = "the instance has no expert parallelism";
    } else if (!topology_ok) {
        why_not = "the scenario has no topology";
    } else if (p.layout.ep > s.topology->gpu_count()) {
        why_not =
            fmt::format("the topology's {} GPUs cannot hold the EP{} group", s.topology->gpu_count(), p.layout.ep);
    } else if (p.layout.ep > s.topology->gpus_per_host() && p.layout.ep % s.topology->gpus_per_host() != 0) {
        why_not = fmt::format("EP{} does not fill whole hosts of {} GPUs (DeepEP needs as many EP ranks on every host)",
                              p.layout.ep, s.topology->gpus_per_host());
    }
    MapReader& r = *p.reader;
    std::string method;
    if (p.ep_communication) {
        method = *p.ep_communication;
        if (method == "network" && has_ep && !why_not.empty()) {
            r.error("ep_communication",
                    fmt::format("network cannot price this pool's EP calls: {}; use estimate", why_not));
            return;
        }
        o.expert_comm_reason = fmt::format("ep_communication: {}, as given", method);
    } else {
        method = why_not.empty() ? "network" : "estimate";
        r.resolved()["ep_communication"] = method;
        o.expert_comm_reason = why_not.empty()
                                   ? "default: the topology holds the instance's EP group, simulated on its first GPUs"
                                   : fmt::format("default: estimate, since {}", why_not);
    }
    o.expert_comm_kernels = p.spec.role == InstanceRole::prefill  ? ExpertCommKernels::normal
                            : p.spec.role == InstanceRole::decode ? ExpertCommKernels::low_latency
                                                                  : ExpertCommKernels::automatic;
    if (method != "network" || !has_ep) return;
    const auto& moe = s.model.moe;
    const int per_host = s.topology->gpus_per_host();
    const int hosts = (p.layout.ep + per_host - 1) / per_host;
    ExpertCommCurveSpec shape;
    shape.ep = p.layout.ep;
    shape.experts = moe.routed_experts + p.redundant_experts;  // physical experts, replicas included
    shape.top_k = moe.top_k;
    // Group-limited routing sends a token to at most topk_group groups, one group per node at most (as the
    // training simulator assumes, sim/training/training_costs.cpp).
    shape.node_limit = std::min(moe.n_group > 1 ? moe.topk_group : hosts, hosts);
    shape.hidden = static_cast<int>(s.model.hidden);
    shape.fp8_dispatch = s.precision == Precision::fp8;
    o.expert_comm = std::make_shared<NetworkExpertComm>(s.topology, shape);
}

// The bundled GPU profiles: kernels/gpus/*.yaml.
std::vector<std::string> gpu_names(const std::string& kernels_dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(kernels_dir) / "gpus", ec))
        if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

CommLinks links_of(const Topology& t) {
    CommLinks links;
    links.gpus_per_host = t.gpus_per_host();
    if (t.gpu_count() > 1 && t.gpus_per_host() > 1) {
        const auto path = t.route(0, 1);
        links.nvlink = path_bottleneck(t, path);
        links.nvlink_latency = path_latency(t, path);
    }
    if (t.host_count() > 1) {
        const auto path = t.route(0, t.gpu_at(1, 0));
        links.network = path_bottleneck(t, path);
        links.network_latency = path_latency(t, path);
    } else {
        links.network = links.nvlink;
        links.network_latency = links.nvlink_latency;
    }
    return links;
}

// The scenario's routing model over the model's MoE layers (power law: permutations from the stream
// serving.expert_routing, the same in every pool).
std::unique_ptr<ExpertRoutingModel> routing_model(const ServingScenario& s, std::uint64_t seed) {
    if (s.routing == "power_law")
        return std::make_unique<PowerLawRouting>(s.model.moe_layer_count(), s.model.moe.routed_experts,
                                                 s.routing_exponent, RngStream(seed, "serving.expert_routing"));
    return std::make_unique<BalancedRouting>(s.model.moe.routed_experts);
}

// A pool's expert load at the start: the routing model's popularity per MoE layer and the placement of
// `pool`'s experts (EPLB from that popularity when the pool has redundant experts or rebalances over
// time, else experts in order).
struct PoolExpertPlacement {
    ExpertLoadMatrix popularity;
    ExpertPlacement placement;
};
PoolExpertPlacement pool_expert_placement(const ServingScenario& s, const PoolPlan& pool, int gpus_per_host,
                                          std::uint64_t seed) {
    const auto& moe = s.model.moe;
    const int layers = s.model.moe_layer_count();
    const std::unique_ptr<ExpertRoutingModel> routing = routing_model(s, seed);
    PoolExpertPlacement load;
    for (int l = 0; l < layers; ++l) load.popularity.push_back(routing->popularity(l));
    if (pool.redundant_experts > 0 || s.rebalance)
        load.placement = rebalance_experts(load.popularity, moe.routed_experts + pool.redundant_experts, moe.n_group,
                                           std::max(1, pool.layout.ep / gpus_per_host), pool.layout.ep);
    else
        load.placement = contiguous_placement(layers, moe.routed_experts, pool.layout.ep);
    return load;
}

// The routing-noise factor of a pool: the busiest GPU's expected share at a batch's tokens over its
// large-batch limit (sim/moe/batch_expert_imbalance.hpp).
std::function<double(std::int64_t)> expert_noise(const ServingScenario& s, const PoolExpertPlacement& load) {
    auto curve = std::make_shared<const BatchImbalanceCurve>(load.popularity, load.placement, s.model.moe.top_k);
    return [curve](std::int64_t tokens) { return curve->at(tokens) / curve->expected(); };
}

// One expert-parallel pool's expert load over time (sim/moe/expert_rebalancing.hpp): the popularity and
// placement at the start (pool_expert_placement), and what a weight fetch costs. `fetch_from` says where
// the fetch bandwidth came from.
ExpertLoadTimelineSpec expert_load_timeline_spec(const ServingScenario& s, const PoolPlan& pool, const CommLinks& links,
                                                 PoolExpertPlacement start, std::string& fetch_from) {
    const auto& moe = s.model.moe;
    const ParallelLayout& layout = pool.layout;
    ExpertLoadTimelineSpec spec;
    spec.popularity = std::move(start.popularity);
    spec.placement = std::move(start.placement);
    spec.top_k = moe.top_k;
    spec.drift = s.drift;
    spec.rebalance = s.rebalance;
    spec.eplb.num_replicas = moe.routed_experts + pool.redundant_experts;
    spec.eplb.num_groups = moe.n_group;
    spec.eplb.num_nodes = std::max(1, layout.ep / links.gpus_per_host);
    spec.eplb.num_gpus = layout.ep;
    // One routed expert of one MoE layer, as one EP rank holds it (its expert_tp share).
    int moe_layer = 0;
    while (!s.model.is_moe_layer(moe_layer)) ++moe_layer;
    const double expert_parameters = layer_params(s.model, moe_layer).routed_experts / moe.routed_experts;
    spec.expert_bytes = Bytes(expert_parameters * dtype_bytes(s.weight_dtype) / layout.expert_tp);
    // A GPU fetches the experts it gains from GPUs holding them (every expert has a copy in the instance):
    // over NVLink when the EP group fits in one host, else bounded by its network link (a modelling choice).
    if (s.fetch_bandwidth) {
        spec.fetch_bandwidth = *s.fetch_bandwidth;
        fetch_from = "expert_load.rebalance.bandwidth";
    } else if (layout.ep <= links.gpus_per_host) {
        spec.fetch_bandwidth = links.nvlink;
        fetch_from = "topology: NVLink per GPU (the EP group is in one host)";
    } else {
        spec.fetch_bandwidth = links.network;
        fetch_from = "topology: network per GPU (the EP group spans hosts)";
    }
    return spec;
}

// Reads `deployment.kv_transfer.model` (after the pools). Default: network for a disaggregated
// deployment whose topology holds all its GPUs and that gives no FIFO keys; otherwise fifo. A decode
// pool alone always uses fifo (its senders are not simulated).
void read_kv_model(MapReader& kv, MapReader& root, ServingScenario& s, bool topology_ok) {
    int gpus = 0;
    std::string sizes;
    for (const auto& p : s.pools) {
        gpus += p.spec.instances * p.layout.tp;
        sizes += fmt::format("{}{} {} x {}", sizes.empty() ? "" : " + ", p.spec.name, p.spec.instances, p.layout.tp);
    }
    const bool fits = topology_ok && s.topology->gpu_count() >= gpus;
    const bool fifo_keys = s.kv_bandwidth || s.kv_latency;
    std::string model;
    if (kv.has("model")) {
        model = kv.choice("model", {"network", "fifo"}, "fifo",
                          "network: flows on the topology's links, shared max-min fairly; fifo: one FIFO link per "
                          "decode instance");
    } else {
        model = s.mode == "disaggregated" && fits && !fifo_keys ? "network" : "fifo";
        kv.resolved()["model"] = model;
    }
    if (model != "network") return;
    if (s.mode != "disaggregated") {
        kv.error("model", "a decode pool alone has no prefill instances to send its KV over the network; use fifo");
        return;
    }
    if (s.kv_bandwidth)
        kv.error("bandwidth",
                 "bandwidth applies to model fifo only: the network model takes link bandwidths from the topology");
    if (s.kv_latency)
        kv.error("latency",
                 "latency applies to model fifo only: the network model adds the topology's per-hop latencies");
    if (!topology_ok) return;  // its errors are reported
    if (!fits) {
        const int per_host = s.topology->gpus_per_host();
        root.error("topology",
                   fmt::format("the KV transfer's network model places the deployment on the topology's GPUs: {} = "
                               "{} GPUs need {} hosts of {} GPUs, and the topology has {}; raise topology.hosts or "
                               "set deployment.kv_transfer.model: fifo",
                               sizes, gpus, (gpus + per_host - 1) / per_host, per_host, s.topology->host_count()));
        return;
    }
    s.kv_network = true;
}

class ServingRunner : public ScenarioRunner {
public:
    explicit ServingRunner(ServingScenario s) : s_(std::move(s)) {}
    nlohmann::ordered_json run(const RunOptions& options, RunOutput& out) override;

private:
    // The config with every pool's cost model (built once, so that search runs share the memos).
    ServingConfig costed_config(std::uint64_t seed);
    // Applies a value of the load search's variable to a config and workload.
    void apply_load(double value, ServingConfig& config, SyntheticWorkloadSpec& spec) const;
    // Bisects the load search's variable; returns its record for summary.json and the value chosen.
    std::pair<nlohmann::ordered_json, double> search_load(const RunOptions& options);
    // The KV transfer channel of one run on `sim` with the network model; null with fifo (the
    // serving simulator's own FIFO channel).
    std::unique_ptr<NetworkKvTransferChannel> network_channel(Simulator& sim) const {
        if (!s_.kv_network) return nullptr;
        return std::make_unique<NetworkKvTransferChannel>(sim, *s_.topology, s_.kv_endpoints);
    }

    // With expert load over time: each such pool's per-run state on `sim` (its cost model and hold),
    // put into `config`; aligned with config.pools, null for the other pools.
    std::vector<std::shared_ptr<PoolExpertLoad>> attach_expert_load(Simulator& sim, ServingConfig& config) const;
    // summary.json's pools[i].expert_load_over_time: the statistics of the run up to `end`.
    nlohmann::ordered_json expert_load_json(std::size_t pool, PoolExpertLoad& load, Time end) const;

    // Starts `serving` and runs `sim` dry; a time past the simulator's range (TimeRangeError) becomes an
    // input error at the scenario key that caused it.
    void run_dry(Simulator& sim, ServingSimulator& serving) const;

    ServingScenario s_;
    std::optional<ServingConfig> costed_;
    std::vector<double> imbalance_;
    // Per pool with expert load over time (else empty): the timeline's setup, where its fetch bandwidth
    // came from, and the cost models per imbalance level (shared by the runs of a load search).
    std::vector<std::optional<ExpertLoadTimelineSpec>> timelines_;
    std::vector<std::string> fetch_from_;
    std::vector<std::shared_ptr<ImbalanceCostModels>> level_models_;
};

}  // namespace

std::unique_ptr<ScenarioRunner> load_serving_scenario(MapReader& root, const ScenarioContext& context) {
    ServingScenario s;
    auto& diagnostics = root.document()->diagnostics();

    // Model.
    s.model_name = root.required<std::string>("model", "a bundled model name, a model YAML or a config.json");
    bool model_ok = false;
    if (!s.model_name.empty()) {
        const fs::path local = context.scenario_dir / s.model_name;
        const std::string where = fs::is_regular_file(local) ? local.string() : s.model_name;
        Diagnostics model_diagnostics;
        s.model = load_model(where, model_diagnostics);
        if (model_diagnostics.empty()) {
            model_ok = true;
        } else {
            for (const auto& d : model_diagnostics.errors()) {
                root.error("model", format(d));
                break;
            }
        }
    }
    // GPU profile and precisions.
    const std::string kernels_dir = default_kernels_dir();
    const auto gpus = gpu_names(kernels_dir);
    const std::string gpu = root.choice("gpu", gpus, std::nullopt, "the GPU profile (kernels/gpus/<name>.yaml)");
    const std::string precision = root.choice("precision", {"bf16", "fp8"}, "bf16", "GEMM precision");
    s.precision = precision == "fp8" ? Precision::fp8 : Precision::bf16;
    s.weight_dtype = root.choice("weight_dtype", {"bf16", "fp8"}, precision, "how weights are stored in HBM");
    s.kv_dtype = root.choice("kv_cache_dtype", {"bf16", "fp8"}, "bf16", "KV cache element type");
    // Topology: link bandwidths for the communication estimate and the KV transfer.
    TopologySpec topology_spec = read_topology_spec(root, "topology");
    const std::size_t errors_before = diagnostics.size();
    if (!topology_spec.resolved_file.empty()) s.topology = load_topology(topology_spec, diagnostics);
    const bool topology_ok = s.topology && diagnostics.size() == errors_before;

    // Iteration costs.
    MapReader cost = root.child("batch_cost", "how iteration times are obtained", false);
    s.cost_kind = cost.choice("kind", {"execution", "fixed"}, "execution",
                              "execution (operator graphs priced by the kernel cost model) or fixed (affine)");
    if (s.cost_kind == "fixed") {
        s.fixed_base = cost.required<Time>("base", "time of any iteration");
        s.fixed_per_prefill_token = cost.required<Time>("per_prefill_token", "added per prefill token");
        s.fixed_per_decode_token = cost.required<Time>("per_decode_token", "added per decode token");
        if (!(s.fixed_base + s.fixed_per_prefill_token > Time::zero()) ||
            !(s.fixed_base + s.fixed_per_decode_token > Time::zero()))
            cost.error_here("iterations must take a positive time");
    }
    s.buckets_per_doubling =
        cost.optional<int>("buckets_per_doubling", 16,
                           "shape-key resolution of the memo: grid points per doubling above 32", in_range(1, 1024));
    cost.finish();

    // Deployment.
    MapReader d = root.child("deployment", "the instances serving the model");
    s.mode = d.choice("mode", {"colocated", "disaggregated", "prefill_only", "decode_only"}, std::nullopt,
                      "one pool doing prefill and decode, or separate prefill and decode pools; or one pool of a "
                      "disaggregated deployment alone (prefill_only: requests leave at their first token; "
                      "decode_only: requests arrive with their first token made and their KV moved in)");
    const std::string& mode = s.mode;
    if (mode == "colocated") {
        s.pools.push_back(read_pool(d, "colocated", InstanceRole::colocated, s.model, model_ok));
        // The deployment's GPUs are the topology's (as a disaggregated one's with the network KV model):
        // a colocated deployment larger than its topology would be priced on links it does not have.
        const PoolPlan& p = s.pools.back();
        const int needed = p.spec.instances * p.layout.tp;
        if (topology_ok && needed > s.topology->gpu_count()) {
            const int per_host = s.topology->gpus_per_host();
            root.error("topology",
                       fmt::format("the colocated deployment needs {} x {} = {} GPUs, {} hosts of {} GPUs, and the "
                                   "topology has {} ({} GPUs); raise topology.hosts or use fewer instances",
                                   p.spec.instances, p.layout.tp, needed, (needed + per_host - 1) / per_host, per_host,
                                   s.topology->host_count(), s.topology->gpu_count()));
        }
    } else if (mode == "prefill_only") {
        s.pools.push_back(read_pool(d, "prefill", InstanceRole::prefill, s.model, model_ok));
    } else {
        if (mode == "disaggregated")
            s.pools.push_back(read_pool(d, "prefill", InstanceRole::prefill, s.model, model_ok));
        s.pools.push_back(read_pool(d, "decode", InstanceRole::decode, s.model, model_ok));
        MapReader kv = d.child("kv_transfer", "moving the KV cache from prefill to decode", false);
        s.kv_bandwidth = kv.maybe<Bandwidth>(
            "bandwidth",
            "fifo: inbound bandwidth of one decode instance (default: the topology's network bandwidth per GPU "
            "x the instance's GPUs)",
            positive<Bandwidth>());
        s.kv_latency = kv.maybe<Time>("latency",
                                      "fifo: fixed time added to each transfer (default: the topology's "
                                      "network path latency)");
        if (s.kv_latency && (*s.kv_latency < Time::zero() || s.kv_latency->seconds() > kMaxArrivalSeconds))
            kv.error("latency", fmt::format("expected a time from 0 to {}; found {}", days_text(kMaxArrivalSeconds),
                                            to_string(*s.kv_latency)));
        read_kv_model(kv, root, s, topology_ok);
        kv.finish();
        s.kv_reader = kv;
        s.runtime_keys["deployment.kv_transfer.bandwidth"] = key_location(kv, "bandwidth");
    }
    MapReader spec = d.child("speculative", "MTP speculative decoding", false);
    s.config.speculative.depth =
        spec.optional<int>("depth", 0, "draft tokens per decode step (0: off)", in_range(0, 8));
    s.config.speculative.acceptance =
        spec.optional<double>("acceptance", 0.0, "probability each draft token is accepted", in_range(0.0, 1.0));
    spec.finish();
    d.finish();

    // Expert load: how routed tokens spread over the experts, and whether EPLB replicates hot ones.
    MapReader load = root.child("expert_load", "routed-token skew over experts and their placement (MoE)", false);
    s.routing = load.choice("routing", {"balanced", "power_law"}, "balanced",
                            "balanced, or power_law: the expert of popularity rank r gets a share ~ r^-exponent");
    const auto exponent = load.maybe<double>("exponent", "power_law: the skew exponent", in_range(0.0, 10.0));
    if (s.routing == "power_law" && !exponent) load.error_here("routing power_law needs an `exponent`");
    if (s.routing == "balanced" && exponent) load.error("exponent", "exponent applies to routing power_law only");
    s.routing_exponent = exponent.value_or(0.0);
    s.batch_noise = load.optional<bool>(
        "batch_noise", true,
        "price each batch's routing noise: the busiest GPU's expected share at the batch's tokens, not only the "
        "large-batch limit (sim/moe/batch_expert_imbalance.hpp)");
    read_expert_load_over_time(load, s);
    if (s.expert_load_over_time() && model_ok) {
        const char* key = s.drift ? "drift" : "rebalance";
        const bool expert_parallel =
            std::any_of(s.pools.begin(), s.pools.end(), [](const PoolPlan& p) { return p.layout.ep > 1; });
        if (s.model.moe.routed_experts == 0)
            load.error(key, fmt::format("{} applies to expert-parallel pools, and model {} has no routed experts", key,
                                        s.model.name));
        else if (!expert_parallel)
            load.error(key, fmt::format("{} applies to expert-parallel pools, and no pool has ep > 1", key));
        if (s.cost_kind == "fixed")
            load.error(key, fmt::format("{} changes the expert imbalance the execution cost model prices; batch_cost "
                                        "kind fixed has none (use kind execution)",
                                        key));
    }
    load.finish();

    // SLOs, warm-up, outputs.
    MapReader slo = root.child("slo", "latency objectives for goodput", false);
    s.config.ttft_slo =
        slo.maybe<Time>("ttft", "time to first token objective (none: any)", positive<Time>()).value_or(Time::max());
    s.config.tpot_slo =
        slo.maybe<Time>("tpot", "time per output token objective (none: any)", positive<Time>()).value_or(Time::max());
    slo.finish();
    s.config.warmup =
        root.optional<Time>("warmup", Time::zero(), "requests arriving earlier are left out of statistics");
    s.iterations_csv = root.optional<bool>("iterations_csv", true, "write iterations.csv (one row per iteration)");
    s.requests_csv = root.optional<bool>("requests_csv", true, "write requests.csv (one row per request)");
    s.config.max_in_system = root.optional<std::int64_t>(
        "stop_when_in_system_exceeds", 0,
        "stop the run early, reported overloaded, once more requests than this are in the system (0: never)",
        at_least<std::int64_t>(0));

    read_workload(root, context, s);
    read_load(root, s);

    // What needs the model, GPU and topology together: KV capacities and cost models.
    if (!model_ok || gpu.empty() || !diagnostics.empty()) return std::make_unique<ServingRunner>(std::move(s));
    s.kernels = std::make_shared<const KernelCostModel>(load_gpu_profile(kernels_dir, gpu));
    const GpuSpec& gpu_spec = s.kernels->profile().spec;
    const CommLinks links = topology_ok ? links_of(*s.topology) : CommLinks{};
    s.config.gpus_per_node = topology_ok ? s.topology->gpus_per_host() : 8;
    const double weight_bytes = dtype_bytes(s.weight_dtype);
    const double kv_bytes = dtype_bytes(s.kv_dtype);
    for (auto& p : s.pools) {
        auto& inst = p.spec.instance;
        if (p.kv_capacity_override) {
            inst.kv_capacity_tokens = *p.kv_capacity_override;
        } else {
            // Redundant experts included (layout.redundant_experts).
            const double parameters = parameters_per_rank(s.model, p.layout);
            const Bytes weights(parameters * weight_bytes);
            // Transient activations of one iteration on one rank: one layer's activations for the rank's
            // share of the token budget (Korthikanti et al. 2022 accounting, which keeps every tensor a
            // layer produces, an upper bound for inference), plus the FP32 logits of the rank's requests.
            Bytes activations;
            if (p.activation_reserve) {
                activations = *p.activation_reserve;
            } else {
                const std::int64_t dp = p.layout.attn_dp;
                const std::int64_t rank_tokens = (inst.token_budget + dp - 1) / dp;
                const std::int64_t rank_requests = (inst.max_batch + dp - 1) / dp;
                for (int layer = 0; layer < s.model.layers; ++layer)
                    activations =
                        std::max(activations, activation_bytes_per_layer(s.model, layer, 1, rank_tokens, p.layout));
                activations += Bytes(static_cast<double>(rank_requests) * static_cast<double>(s.model.vocab) /
                                     p.layout.attn_tp() * kLogitBytes);
            }
            const Bytes usable = gpu_spec.hbm_capacity.value * p.memory_utilization;
            const Bytes free = usable - weights - activations;
            const Bytes per_token = kv_cache_bytes(s.model, 1, p.layout, kv_bytes);
            if (!(free > Bytes{})) {
                root.error("deployment",
                           fmt::format("{}: the weights ({:.1f} GiB per GPU) and activations ({:.1f} GiB) do not "
                                       "fit in {:.1f} GiB ({} x gpu_memory_utilization {}); use more GPUs per "
                                       "instance or fp8 weights",
                                       p.spec.name, weights.gib(), activations.gib(), usable.gib(), gpu_spec.name,
                                       p.memory_utilization));
                continue;
            }
            inst.kv_capacity_tokens = static_cast<std::int64_t>(std::floor(free / per_token)) * p.layout.attn_dp;
        }
        if (s.cost_kind == "execution" && !topology_ok && p.layout.tp > 1) {
            root.error("topology", "the execution cost model needs a topology for the communication of tp > 1");
            continue;
        }
        ExecutionCostOptions o;
        o.layout = p.layout;
        o.precision = s.precision;
        o.kv_dtype = s.kv_dtype == "fp8" ? DType::fp8 : DType::bf16;
        o.links = links;
        o.overlap_communication = p.overlap;
        o.communication_sms = p.communication_sms;
        o.mtp_depth = p.spec.role == InstanceRole::prefill ? 0 : s.config.speculative.depth;
        o.buckets_per_doubling = s.buckets_per_doubling;
        if (s.cost_kind == "execution") choose_ep_communication(s, p, topology_ok, o);
        s.cost_options.push_back(o);
        s.config.pools.push_back(p.spec);
    }
    if (!s.pools.empty() && s.pools.front().prefix_cache) {
        const PoolPlan& first = s.pools.front();
        const auto& plan = first.prefix_cache;
        MapReader c = plan->reader;
        PrefixCacheSpec cache;
        // A trace's hash ids name blocks of its own size; a conversation is cached in KV blocks.
        cache.block_tokens = s.prefix_identities == "trace_hash_ids" ? s.trace_spec.mooncake_block_tokens
                                                                     : first.spec.instance.block_tokens;
        // The KV of one token on the instance: every rank of the attention group holding it, its share.
        cache.bytes_per_token = kv_cache_bytes(s.model, 1, first.layout, kv_bytes) * first.layout.attn_tp();
        cache.shared = plan->shared;
        cache.load_bandwidth = plan->load_bandwidth;
        if (plan->capacity_bytes)
            cache.capacity_tokens =
                static_cast<std::int64_t>(std::floor(*plan->capacity_bytes / cache.bytes_per_token));
        else
            cache.capacity_tokens = plan->capacity_tokens.value_or(0);
        if (cache.capacity_tokens < cache.block_tokens)
            c.error(
                "capacity",
                fmt::format(
                    "the cache holds {} tokens{}, less than one block of {} tokens ({})", cache.capacity_tokens,
                    plan->capacity_bytes ? fmt::format(" at {} per token", to_string(cache.bytes_per_token)) : "",
                    cache.block_tokens,
                    s.prefix_identities == "trace_hash_ids" ? "the trace's block_tokens" : "the pool's block_tokens"));
        else
            s.config.prefix_cache = cache;
    }
    const bool receives_kv = s.mode == "disaggregated" || s.mode == "decode_only";
    if (receives_kv && s.config.pools.size() == s.pools.size()) {
        const auto& decode = s.pools.back();
        const Bytes per_rank = kv_cache_bytes(s.model, 1, decode.layout, kv_bytes);
        // Every rank of the attention group holding a request receives its share (MLA: a full copy).
        s.config.kv_transfer.bytes_per_token = per_rank * decode.layout.attn_tp();
        if (s.kv_network) {
            // Link bandwidths and latencies come from the topology; instances sit on it in order.
            std::vector<int> instance_gpus, attn_dp;
            for (const auto& p : s.pools)
                for (int i = 0; i < p.spec.instances; ++i) {
                    instance_gpus.push_back(p.layout.tp);
                    attn_dp.push_back(p.layout.attn_dp);
                }
            s.kv_endpoints = place_consecutively(instance_gpus, attn_dp);
        } else if (s.kv_bandwidth) {
            s.config.kv_transfer.bandwidth = *s.kv_bandwidth;
            // The largest transfer a decode instance takes is its whole KV cache (a larger request is
            // rejected at arrival); it must end within the simulator's time range. In seconds: the Time
            // of a transfer this slow would not be representable.
            const double capacity_bytes = static_cast<double>(decode.spec.instance.kv_capacity_tokens) *
                                          s.config.kv_transfer.bytes_per_token.bytes();
            const double whole_s =
                capacity_bytes / s.kv_bandwidth->bytes_per_second() + s.kv_latency.value_or(Time::zero()).seconds();
            if (!(whole_s <= kMaxArrivalSeconds) && s.kv_reader)
                s.kv_reader->error(
                    "bandwidth",
                    fmt::format("moving a decode instance's whole KV cache ({} tokens, {}) at {} would take {}, "
                                "past {} (half of the simulator's time range of about 106 days); raise the bandwidth",
                                decode.spec.instance.kv_capacity_tokens, to_string(Bytes(capacity_bytes)),
                                to_string(*s.kv_bandwidth), days_text(whole_s), days_text(kMaxArrivalSeconds)));
        } else if (topology_ok) {
            s.config.kv_transfer.bandwidth = links.network * decode.spec.instance.gpus;
        } else {
            d.error("kv_transfer", "give kv_transfer.bandwidth, or a topology to take it from");
        }
        s.config.kv_transfer.latency = s.kv_latency.value_or(links.network_latency);
    }
    return std::make_unique<ServingRunner>(std::move(s));
}

ServingConfig ServingRunner::costed_config(std::uint64_t seed) {
    if (costed_) return *costed_;
    ServingConfig config = s_.config;
    imbalance_.clear();
    for (std::size_t i = 0; i < config.pools.size(); ++i) {
        auto& inst = config.pools[i].instance;
        if (s_.cost_kind == "fixed") {
            inst.cost = std::make_shared<FixedBatchCostModel>(s_.fixed_base, s_.fixed_per_prefill_token,
                                                              s_.fixed_per_decode_token);
            imbalance_.push_back(1.0);
            continue;
        }
        ExecutionCostOptions o = s_.cost_options[i];
        if (s_.model.moe.routed_experts > 0 && o.layout.ep > 1) {
            PoolExpertPlacement load = pool_expert_placement(s_, s_.pools[i], o.links.gpus_per_host, seed);
            // Over time too, the noise factor is the first placement's (a ratio to its expected loads).
            if (s_.batch_noise) o.expert_noise = expert_noise(s_, load);
            o.expert_imbalance = placement_imbalance(load.popularity, load.placement, s_.model.moe.top_k);
            if (s_.expert_load_over_time()) {
                // Priced per run by PoolExpertLoad (attach_expert_load), at the imbalance of the moment.
                timelines_.resize(config.pools.size());
                fetch_from_.resize(config.pools.size());
                level_models_.resize(config.pools.size());
                timelines_[i] = expert_load_timeline_spec(s_, s_.pools[i], o.links, std::move(load), fetch_from_[i]);
                imbalance_.push_back(o.expert_imbalance);
                level_models_[i] = std::make_shared<ImbalanceCostModels>(s_.model, s_.kernels, o);
                continue;
            }
        }
        imbalance_.push_back(o.expert_imbalance);
        inst.cost = std::make_shared<ExecutionBatchCostModel>(s_.model, s_.kernels, o);
    }
    costed_ = config;
    return config;
}

std::vector<std::shared_ptr<PoolExpertLoad>> ServingRunner::attach_expert_load(Simulator& sim,
                                                                               ServingConfig& config) const {
    std::vector<std::shared_ptr<PoolExpertLoad>> loads(config.pools.size());
    for (std::size_t i = 0; i < timelines_.size(); ++i) {
        if (!timelines_[i]) continue;
        // One stream name for every pool: popularity drifts with the traffic, the same in each pool.
        auto load = std::make_shared<PoolExpertLoad>(
            sim, level_models_[i], ExpertLoadTimeline(*timelines_[i], sim.rng_stream("serving.expert_drift")));
        config.pools[i].instance.cost = load;
        config.pools[i].availability = load;
        loads[i] = load;
    }
    return loads;
}

nlohmann::ordered_json ServingRunner::expert_load_json(std::size_t pool, PoolExpertLoad& load, Time end) const {
    const ExpertLoadTimelineSummary t = load.timeline().summary(end);
    const ExpertLoadTimelineSpec& spec = *timelines_[pool];
    nlohmann::ordered_json j;
    if (spec.drift) j["drift"] = {{"interval_s", spec.drift->interval.seconds()}, {"share", spec.drift->share}};
    if (spec.rebalance)
        j["rebalance"] = {{"interval_s", spec.rebalance->interval.seconds()},
                          {"fetch_bandwidth", to_string(spec.fetch_bandwidth)},
                          {"fetch_bandwidth_from", fetch_from_[pool]}};
    j["expert_bytes_per_gpu"] = spec.expert_bytes.bytes();
    j["imbalance_initial"] = t.imbalance_initial;
    j["imbalance_mean"] = t.imbalance_mean;
    j["imbalance_max"] = t.imbalance_max;
    j["imbalance_final"] = t.imbalance_final;
    j["drift_steps"] = t.drift_steps;
    j["rebalances"] = t.rebalances;
    j["pause_s_total"] = t.pause_total.seconds();
    j["bytes_moved_per_instance"] = t.bytes_moved.bytes();
    j["busiest_gpu_bytes_total"] = t.busiest_gpu_bytes_total.bytes();
    j["imbalance_levels_priced"] = level_models_[pool]->levels();
    return j;
}

void ServingRunner::run_dry(Simulator& sim, ServingSimulator& serving) const {
    try {
        serving.start();
        sim.run();
    } catch (const TimeRangeError& e) {
        const auto at = s_.runtime_keys.find(e.key());
        if (at == s_.runtime_keys.end()) throw std::runtime_error(e.what());
        Diagnostic d = at->second;
        d.message = e.what();
        throw InputError(std::vector<Diagnostic>(1, d));
    }
}

void ServingRunner::apply_load(double value, ServingConfig& config, SyntheticWorkloadSpec& spec) const {
    if (s_.load_search->over_concurrency)
        config.pools.back().instance.max_batch = static_cast<std::int64_t>(std::llround(value));
    else
        spec.arrival.rate_per_s = value;
}

std::pair<nlohmann::ordered_json, double> ServingRunner::search_load(const RunOptions& options) {
    const auto& l = *s_.load_search;
    const char* variable = l.over_concurrency ? "decode_concurrency" : "rate_per_s";
    const char* metric =
        l.throughput ? "output_tokens_per_s_per_node_decode" : "output_tokens_per_s_per_decoding_request";
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    auto measure_at = [&](double value) {
        Simulator sim(options.seed);
        ServingConfig config = costed_config(options.seed);
        const auto expert_loads = attach_expert_load(sim, config);
        SyntheticWorkloadSpec spec = s_.synthetic_spec;
        apply_load(value, config, spec);
        std::unique_ptr<RequestSource> source;
        if (s_.synthetic)
            source = std::make_unique<SyntheticRequestSource>(spec, options.seed);
        else
            source = std::make_unique<VectorRequestSource>(s_.trace_requests);
        const auto channel = network_channel(sim);
        ServingSimulator serving(sim, config, *source, channel.get());
        run_dry(sim, serving);
        const ServingSummary m = serving.summary();
        runs.push_back({{variable, value},
                        {"output_tokens_per_s_per_decoding_request", m.output_tokens_per_s_per_decoding_request},
                        {"output_tokens_per_s_per_node_decode", m.output_tokens_per_s_per_node_decode},
                        {"input_tokens_per_s_per_node_prefill", m.input_tokens_per_s_per_node_prefill},
                        {"in_system_growth_per_s", m.in_system_growth_per_s}});
        return l.throughput ? m.output_tokens_per_s_per_node_decode : m.output_tokens_per_s_per_decoding_request;
    };
    // The speed falls and the throughput rises with the load: the bracket must straddle the target.
    // Concurrencies are whole requests.
    auto round = [&](double v) { return l.over_concurrency ? std::max(1.0, std::round(v)) : v; };
    double lo = round(l.min), hi = round(l.max);
    const double measured_lo = measure_at(lo), measured_hi = measure_at(hi);
    const double sign = l.throughput ? -1.0 : 1.0;  // sign x measure falls with the load
    if (!(sign * measured_lo >= sign * l.target && sign * measured_hi <= sign * l.target))
        throw UnreachableTarget(
            fmt::format("load search: {} {} is not between the values at {} {} ({:.2f}) and {} ({:.2f}); widen the "
                        "bracket{}",
                        metric, l.target, variable, lo, measured_lo, hi, measured_hi,
                        l.throughput ? ", or the deployment cannot deliver that much" : ""));
    double best = std::abs(measured_lo - l.target) <= std::abs(measured_hi - l.target) ? lo : hi;
    double best_error = std::min(std::abs(measured_lo - l.target), std::abs(measured_hi - l.target)) / l.target;
    for (int run = 2; run < l.max_runs && best_error > l.tolerance; ++run) {
        const double mid = round(std::sqrt(lo * hi));
        if (mid == lo || mid == hi) break;  // adjacent concurrencies: nothing left between them
        const double measured = measure_at(mid);
        const double error = std::abs(measured - l.target) / l.target;
        if (error < best_error) {
            best_error = error;
            best = mid;
        }
        (sign * measured > sign * l.target ? lo : hi) = mid;
    }
    nlohmann::ordered_json record = {
        {"search", l.throughput ? "output_tokens_per_s_per_node_decode" : "output_speed_per_request"},
        {"over", l.over_concurrency ? "decode_concurrency" : "arrival_rate"},
        {"target_tokens_per_s", l.target},
        {variable, best},
        {"relative_error", best_error},
        {"converged", best_error <= l.tolerance},
        {"runs", runs}};
    return {record, best};
}

nlohmann::ordered_json ServingRunner::run(const RunOptions& options, RunOutput& out) {
    Simulator sim(options.seed);
    ServingConfig config = costed_config(options.seed);
    const auto expert_loads = attach_expert_load(sim, config);
    const std::vector<double> imbalance = imbalance_;
    nlohmann::ordered_json load_search;
    if (s_.load_search) {
        double value = 0;
        std::tie(load_search, value) = search_load(options);
        apply_load(value, config, s_.synthetic_spec);
    }
    std::unique_ptr<RequestSource> source;
    if (s_.synthetic)
        source = std::make_unique<SyntheticRequestSource>(s_.synthetic_spec, options.seed);
    else
        source = std::make_unique<VectorRequestSource>(s_.trace_requests);
    const auto channel = network_channel(sim);
    ServingSimulator serving(sim, config, *source, channel.get());

    std::ofstream requests_csv;
    if (s_.requests_csv) {
        requests_csv = out.open("requests.csv");
        requests_csv << "id,session,turn,status,arrival_s,input_tokens,cached_tokens,output_tokens,generated_tokens,"
                        "prefill_instance,decode_instance,ttft_ms,tpot_ms,e2e_s,kv_transfer_ms,preemptions,reason\n";
        serving.on_request_done().subscribe([&](const RequestRecord& r) {
            const bool done = r.status == RequestStatus::completed;
            requests_csv << fmt::format(
                "{},{},{},{},{:.6f},{},{},{},{},{},{},{:.4f},{:.4f},{:.6f},{:.4f},{},{}\n", r.request.id,
                r.request.session, r.request.turn, done ? "completed" : "rejected", r.request.arrival.seconds(),
                r.request.input_tokens, r.request.cached_tokens, r.request.output_tokens, r.generated,
                r.prefill_instance >= 0 ? serving.instance_name(r.prefill_instance) : "",
                r.decode_instance >= 0 ? serving.instance_name(r.decode_instance) : "", done ? r.ttft_s() * 1e3 : 0.0,
                done ? r.tpot_s() * 1e3 : 0.0, r.e2e_s(), (r.transfer_end - r.transfer_start).ms(), r.preemptions,
                r.reject_reason.empty() ? "" : "\"" + r.reject_reason + "\"");
        });
    }
    std::ofstream iterations_csv;
    if (s_.iterations_csv) {
        iterations_csv = out.open("iterations.csv");
        iterations_csv << "instance,start_s,duration_ms,prefill_tokens,prefill_sequences,decode_requests,"
                          "tokens_emitted,kv_used_blocks,kv_capacity_blocks,waiting\n";
        serving.on_iteration().subscribe([&](const IterationRecord& it) {
            iterations_csv << fmt::format("{},{:.6f},{:.4f},{},{},{},{},{},{},{}\n", serving.instance_name(it.instance),
                                          it.start.seconds(), it.duration.ms(), it.prefill_tokens, it.prefill_sequences,
                                          it.decode_requests, it.tokens_emitted, it.kv_used_blocks,
                                          it.kv_capacity_blocks, it.waiting);
        });
    }
    std::ofstream trace_file;
    std::unique_ptr<TraceWriter> trace;
    if (options.trace) {
        trace_file = out.open("trace.json");
        trace = std::make_unique<TraceWriter>(trace_file);
        // Requests on a few lanes so overlapping lifetimes stay readable; batches per instance.
        constexpr int kLanes = 32;
        serving.on_request_done().subscribe([&](const RequestRecord& r) {
            const TrackId lane = trace->track("requests", fmt::format("lane {}", r.request.id % kLanes));
            const std::string name = fmt::format("request {}", r.request.id);
            if (r.status == RequestStatus::rejected) {
                trace->instant(lane, name + " rejected", r.request.arrival);
                return;
            }
            if (r.transfer_end > r.transfer_start)
                trace->slice(trace->track(serving.instance_name(r.decode_instance), "kv transfers in"), name,
                             "kv_transfer", r.transfer_start, r.transfer_end - r.transfer_start,
                             {{"tokens", static_cast<double>(r.request.input_tokens + 1)}});
            trace->slice(lane, name, "request", r.request.arrival, r.finished - r.request.arrival,
                         {{"input_tokens", static_cast<double>(r.request.input_tokens)},
                          {"cached_tokens", static_cast<double>(r.request.cached_tokens)},
                          {"output_tokens", static_cast<double>(r.request.output_tokens)},
                          {"ttft_ms", r.ttft_s() * 1e3},
                          {"tpot_ms", r.tpot_s() * 1e3},
                          {"preemptions", static_cast<double>(r.preemptions)}});
        });
        serving.on_iteration().subscribe([&](const IterationRecord& it) {
            const TrackId track = trace->track(serving.instance_name(it.instance), "iterations");
            const char* name = it.prefill_tokens > 0 ? (it.decode_requests > 0 ? "mixed" : "prefill") : "decode";
            trace->slice(track, name, "batch", it.start, it.duration,
                         {{"prefill_tokens", static_cast<double>(it.prefill_tokens)},
                          {"prefill_sequences", static_cast<double>(it.prefill_sequences)},
                          {"decode_requests", static_cast<double>(it.decode_requests)},
                          {"kv_used_blocks", static_cast<double>(it.kv_used_blocks)}});
            trace->counter(track, "kv_used_blocks", it.start + it.duration, static_cast<double>(it.kv_used_blocks));
        });
    }

    run_dry(sim, serving);
    const ServingSummary m = serving.summary();
    if (!m.overloaded && (m.completed + m.rejected != m.arrived || serving.in_system() != 0))
        throw std::logic_error(fmt::format("the serving run ended with {} of {} requests unaccounted for",
                                           m.arrived - m.completed - m.rejected, m.arrived));

    nlohmann::ordered_json j;
    j["kind"] = "serving";
    j["model"] = s_.model.name;
    j["gpu"] = s_.kernels->profile().spec.name;
    j["mode"] = s_.mode;
    j["algorithm"] = std::string("serving_") + j["mode"].get<std::string>();
    // With no request arriving after the warm-up nothing was measured: the latency and rate metrics
    // are null (not 0, which a comparison of plans would take for a value), with a warning.
    const auto measured = [&](double v) {
        return m.measured > 0 ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
    };
    j["ttft_ms_p50"] = measured(m.ttft_ms_p50);
    j["ttft_ms_p90"] = measured(m.ttft_ms_p90);
    j["ttft_ms_p99"] = measured(m.ttft_ms_p99);
    j["tpot_ms_p50"] = measured(m.tpot_ms_p50);
    j["tpot_ms_p90"] = measured(m.tpot_ms_p90);
    j["tpot_ms_p99"] = measured(m.tpot_ms_p99);
    j["e2e_s_p50"] = measured(m.e2e_s_p50);
    j["e2e_s_p90"] = measured(m.e2e_s_p90);
    j["e2e_s_p99"] = measured(m.e2e_s_p99);
    j["output_tokens_per_s_per_request_mean"] = measured(m.output_tokens_per_s_per_request_mean);
    j["output_tokens_per_s_per_decoding_request"] = measured(m.output_tokens_per_s_per_decoding_request);
    j["in_system_growth_per_s"] = measured(m.in_system_growth_per_s);
    j["input_tokens_per_s_per_node_prefill"] = measured(m.input_tokens_per_s_per_node_prefill);
    j["output_tokens_per_s_per_node_decode"] = measured(m.output_tokens_per_s_per_node_decode);
    j["tokens_per_s_per_gpu"] = measured(m.tokens_per_s_per_gpu);
    j["goodput_requests_per_s"] = measured(m.goodput_requests_per_s);
    j["kv_cache_utilization_mean"] = m.kv_cache_utilization_mean;
    j["completed_requests"] = m.completed;
    j["rejected_requests"] = m.rejected;
    j["arrived_requests"] = m.arrived;
    j["measured_requests"] = m.measured;
    j["preemptions"] = m.preemptions;
    j["output_tokens"] = m.emitted_output_tokens;
    j["simulated_s"] = m.end.seconds();
    j["overloaded"] = m.overloaded;
    j["rate_window_s"] = {m.window_start.seconds(), m.window_end.seconds()};
    j["mean_requests_in_system"] = m.mean_requests_in_system;
    j["mean_time_in_system_s"] = m.mean_time_in_system_s;
    j["gpus"] = m.gpus;
    j["prefill_nodes"] = m.prefill_nodes;
    j["decode_nodes"] = m.decode_nodes;
    nlohmann::ordered_json slo = nlohmann::ordered_json::object();
    if (s_.config.ttft_slo < Time::max()) slo["ttft_ms"] = s_.config.ttft_slo.ms();
    if (s_.config.tpot_slo < Time::max()) slo["tpot_ms"] = s_.config.tpot_slo.ms();
    j["slo"] = slo;
    nlohmann::ordered_json pools = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < config.pools.size(); ++i) {
        const auto& p = config.pools[i];
        const auto& l = s_.pools[i].layout;
        nlohmann::ordered_json pool = {
            {"name", p.name},
            {"instances", p.instances},
            {"gpus_per_instance", p.instance.gpus},
            {"layout",
             {{"tp", l.tp},
              {"attn_dp", l.attn_dp},
              {"ep", l.ep},
              {"expert_tp", l.expert_tp},
              {"dense_tp", l.dense_ffn_tp()},
              {"vocab_tp", l.vocab_parallel_tp()}}},
            {"kv_capacity_tokens", p.instance.kv_capacity_tokens},
            {"max_batch", p.instance.max_batch},
            {"token_budget", p.instance.token_budget},
            {"router", to_string(p.router)},
            {"redundant_experts", s_.pools[i].redundant_experts},
            {"expert_imbalance", imbalance[i]}};
        if (expert_loads[i]) pool["expert_load_over_time"] = expert_load_json(i, *expert_loads[i], m.end);
        pools.push_back(pool);
    }
    if (std::any_of(expert_loads.begin(), expert_loads.end(), [](const auto& e) { return e != nullptr; })) {
        std::ofstream csv = out.open("expert_load.csv");
        csv << "pool,time_s,event,imbalance,busiest_gpu_bytes,bytes_moved,pause_ms\n";
        for (std::size_t i = 0; i < expert_loads.size(); ++i) {
            if (!expert_loads[i]) continue;
            for (const ExpertLoadEvent& e : expert_loads[i]->timeline().events()) {
                if (e.at > m.end) break;
                csv << fmt::format("{},{:.6f},{},{:.6f},{:.0f},{:.0f},{:.4f}\n", config.pools[i].name, e.at.seconds(),
                                   to_string(e.kind), e.imbalance, e.busiest_gpu_bytes.bytes(), e.bytes_moved.bytes(),
                                   e.pause.ms());
            }
        }
    }
    j["pools"] = pools;
    if (s_.mode == "disaggregated" || s_.mode == "decode_only") {
        nlohmann::ordered_json kv = {{"model", s_.kv_network ? "network" : "fifo"},
                                     {"transfers", m.kv_transfers},
                                     {"ms_mean", m.kv_transfer_ms_mean},
                                     {"ms_p99", m.kv_transfer_ms_p99}};
        if (channel) {
            // Mean utilization over the whole run of the link that carried the most for its capacity.
            const auto [link, utilization] = channel->busiest_link(m.end);
            kv["flows"] = channel->network().flows_started();
            kv["busiest_link"] = link;
            kv["busiest_link_utilization"] = utilization;
        }
        j["kv_transfer"] = kv;
    }
    if (m.prefix_cache) {
        const PrefixCacheSpec& spec = *config.prefix_cache;
        const PrefixCacheSummary& c = *m.prefix_cache;
        nlohmann::ordered_json pc = {{"scope", spec.shared ? "shared" : "per_instance"},
                                     {"capacity_tokens", spec.capacity_tokens},
                                     {"block_tokens", spec.block_tokens},
                                     {"capacity_blocks", spec.capacity_tokens / spec.block_tokens},
                                     {"block_identities", s_.prefix_identities},
                                     {"hit_rate", c.hit_rate},
                                     {"cached_tokens", c.cached_tokens},
                                     {"prompt_tokens", c.prompt_tokens},
                                     {"inserted_blocks", c.inserted_blocks},
                                     {"evicted_blocks", c.evicted_blocks},
                                     {"held_blocks", c.held_blocks}};
        if (spec.load_bandwidth) {
            pc["load_bandwidth"] = to_string(*spec.load_bandwidth);
            pc["loads"] = c.loads;
            pc["load_ms_mean"] = c.load_ms_mean;
            pc["load_ms_p99"] = c.load_ms_p99;
        }
        j["prefix_cache"] = pc;
    }
    if (s_.synthetic) {
        // The rate profile's mean over the arrivals (to the duration, else to the last arrival); the
        // base rate it scales as well when there is a profile.
        const ArrivalSpec& arrival = s_.synthetic_spec.arrival;
        const Time until = s_.synthetic_spec.duration.value_or(m.last_arrival);
        j["offered_rate_per_s"] = mean_rate_per_s(arrival, until.seconds());
        if (!arrival.profile.multipliers.empty()) j["base_rate_per_s"] = arrival.rate_per_s;
    }
    nlohmann::ordered_json warnings = nlohmann::ordered_json::array();
    if (m.arrived == 0)
        warnings.push_back("no request arrived, so nothing was measured: the workload ends before its first arrival");
    else if (m.measured == 0)
        warnings.push_back(
            fmt::format("no request arrived after the warm-up ({}; the last arrived at {}), so no "
                        "latency or rate was measured: lower warmup",
                        to_string(s_.config.warmup), to_string(m.last_arrival)));
    if (!warnings.empty()) j["warnings"] = warnings;
    if (!load_search.is_null()) j["load_search"] = load_search;
    nlohmann::ordered_json provenance;
    for (const auto& p : config.pools) provenance[p.name] = p.instance.cost->provenance();
    j["provenance"] = provenance;
    out.write_json("summary.json", j);
    auto scaled = [](std::vector<double> v, double k) {
        for (double& x : v) x *= k;
        return v;
    };
    out.write_text("latency.svg", latency_cdf_svg({{"TTFT", "ms", scaled(serving.ttft_samples_s(), 1e3)},
                                                   {"TPOT", "ms", scaled(serving.tpot_samples_s(), 1e3)},
                                                   {"end to end", "s", serving.e2e_samples_s()}},
                                                  fmt::format("{} on {}, seed {}", s_.model.name,
                                                              j["gpu"].get<std::string>(), options.seed)));
    if (requests_csv.is_open()) requests_csv.close();
    if (iterations_csv.is_open()) iterations_csv.close();
    if (trace) trace->finish();
    return j;
}

}  // namespace clustersim
