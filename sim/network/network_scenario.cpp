// Loading and running `network` scenarios.
#include "network_scenario.hpp"

#include "collectives.hpp"
#include "expert_dispatch.hpp"
#include "sim/charts/gnuplot_chart.hpp"
#include "sim/core/trace_writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

namespace clustersim {
namespace {

// Links drawn in link_utilization.svg: the busiest by bytes (the CSV has every link).
constexpr std::size_t kLinksOnChart = 8;

struct NetworkScenario {
    std::shared_ptr<const Topology> topology;
    std::string topology_file;
    std::string operation;  // a collective name, or expert_dispatch / expert_combine
    std::vector<int> gpus;
    // collectives
    CollectiveSpec collective;
    // expert parallelism
    ExpertParallelSpec expert;
    int utilization_bins = 100;
    Time rate_update_interval;
    // The key that sets how much data moves (size, or expert_parallel.tokens_per_gpu) and where it is
    // written: a run whose time leaves Time's range (2^63 ps) is reported there.
    std::string volume_key;
    SourceLocation volume_at;
};

// Hosts of `gpus` in first-seen order, with how many of the GPUs each holds.
std::vector<std::pair<int, int>> gpus_per_used_host(const std::vector<int>& gpus, const Topology& topology) {
    std::vector<std::pair<int, int>> hosts;
    for (int g : gpus) {
        const int h = topology.host_of(g);
        auto it = std::find_if(hosts.begin(), hosts.end(), [h](const auto& e) { return e.first == h; });
        if (it == hosts.end()) hosts.emplace_back(h, 1);
        else ++it->second;
    }
    return hosts;
}

bool same_count_on_every_host(const std::vector<std::pair<int, int>>& hosts) {
    return std::all_of(hosts.begin(), hosts.end(), [&](const auto& e) { return e.second == hosts.front().second; });
}

std::string host_counts(const std::vector<std::pair<int, int>>& hosts) {
    std::string out;
    for (std::size_t i = 0; i < hosts.size() && i < 8; ++i)
        out += fmt::format("{}{} on host {}", i ? ", " : "", hosts[i].second, hosts[i].first);
    if (hosts.size() > 8) out += ", ...";
    return out;
}

const std::vector<std::string>& operation_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n = collective_op_names();
        n.push_back("expert_dispatch");
        n.push_back("expert_combine");
        return n;
    }();
    return names;
}

class NetworkRunner : public ScenarioRunner {
public:
    explicit NetworkRunner(NetworkScenario s) : s_(std::move(s)) {}
    nlohmann::ordered_json run(const RunOptions& options, RunOutput& out) override;

private:
    NetworkScenario s_;
};

// The GPUs a scenario names: `gpus: 16` (the first 16) or `gpus: [0, 8, 16]`; default all.
std::vector<int> read_gpus(MapReader& root, const Topology* topology) {
    const int available = topology ? topology->gpu_count() : 0;
    std::vector<int> gpus;
    const YAML::Node& node = root.node();
    const YAML::Node value = node["gpus"];
    if (value.IsDefined() && value.IsSequence()) {
        gpus = root.list<int>("gpus", "the GPUs taking part, by global index");
        if (value.size() == 0) root.error("gpus", "expected at least one GPU; found an empty list");
    } else {
        const int count = root.optional<int>("gpus", available, "how many GPUs take part (the first N), or a list",
                                             at_least(1));
        for (int g = 0; g < count; ++g) gpus.push_back(g);
    }
    if (topology) {
        for (int g : gpus) {
            if (g < 0 || g >= available) {
                root.error("gpus", fmt::format("GPU {} is not in the topology, which has GPUs 0 to {}", g, available - 1));
                break;
            }
        }
        std::vector<int> sorted = gpus;
        std::sort(sorted.begin(), sorted.end());
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) root.error("gpus", "a GPU is listed twice");
    }
    return gpus;
}

}  // namespace

std::unique_ptr<ScenarioRunner> load_network_scenario(MapReader& root, const ScenarioContext& context) {
    (void)context;
    NetworkScenario s;
    TopologySpec spec = read_topology_spec(root, "topology");
    auto& diagnostics = root.document()->diagnostics();
    const std::size_t errors_before = diagnostics.size();
    if (!spec.resolved_file.empty()) s.topology = load_topology(spec, diagnostics);
    s.topology_file = spec.file;
    const Topology* topology = diagnostics.size() == errors_before ? s.topology.get() : nullptr;

    s.operation = root.choice("operation", operation_names(), std::nullopt, "what to run");
    s.gpus = read_gpus(root, topology);
    s.utilization_bins = root.optional<int>("utilization_bins", 100,
                                            "time bins of the per-link utilization output", in_range(1, 100000));
    s.rate_update_interval = root.optional<Time>(
        "rate_update_interval", Time::zero(),
        "0s for exact max-min rates at every flow start and end; a positive interval lets rate changes wait "
        "up to that long, bounding the work for tens of thousands of flows (see sim/network/flow_network.hpp)");
    const bool expert = s.operation == "expert_dispatch" || s.operation == "expert_combine";
    if (!expert) {
        s.collective.op = collective_op_from(s.operation);
        const std::string default_algorithm =
            s.collective.op == CollectiveOp::all_to_all || s.collective.op == CollectiveOp::point_to_point ? "direct"
                                                                                                           : "ring";
        s.collective.algorithm = collective_algorithm_from(
            root.choice("algorithm", collective_algorithm_names(), default_algorithm, "how the collective is decomposed"));
        s.collective.size = root.required<Bytes>("size", "bytes per rank, as nccl-tests counts them", positive<Bytes>());
        s.collective.chunks = root.optional<int>("chunks", 8, "pipeline chunks of the tree algorithm", in_range(1, 4096));
        s.collective.gpus = s.gpus;
        const bool direct_ok =
            s.collective.op == CollectiveOp::all_to_all || s.collective.op == CollectiveOp::point_to_point;
        if ((s.collective.algorithm == CollectiveAlgorithm::direct) != direct_ok) {
            root.error("algorithm", fmt::format("{} cannot use algorithm {}; expected {}", s.operation,
                                                to_string(s.collective.algorithm),
                                                direct_ok ? "direct" : "ring, tree or hierarchical"));
        }
        if (s.collective.algorithm == CollectiveAlgorithm::tree && s.collective.op != CollectiveOp::all_reduce)
            root.error("algorithm", "the tree algorithm is implemented for all_reduce only; expected ring or hierarchical");
        if (s.collective.op == CollectiveOp::point_to_point && s.gpus.size() != 2)
            root.error("gpus", fmt::format("point_to_point needs exactly two GPUs [from, to]; found {}", s.gpus.size()));
        if (topology && diagnostics.empty() && s.collective.algorithm == CollectiveAlgorithm::hierarchical) {
            const auto hosts = gpus_per_used_host(s.gpus, *topology);
            if (!same_count_on_every_host(hosts))
                root.error("gpus", fmt::format("the hierarchical algorithm needs the same number of GPUs on every host; "
                                               "found {} (expected a multiple of the topology's {} GPUs per host, or "
                                               "algorithm ring)",
                                               host_counts(hosts), topology->gpus_per_host()));
        }
        s.volume_key = "size";
        s.volume_at = root.key_location("size");
    } else {
        MapReader ep = root.child("expert_parallel", "the expert-parallel layer being dispatched to");
        auto& e = s.expert;
        e.gpus = s.gpus;
        e.phase = s.operation == "expert_dispatch" ? ExpertCommPhase::dispatch : ExpertCommPhase::combine;
        e.mode = ep.choice("mode", {"normal", "low_latency"}, "normal",
                           "DeepEP kernel family: normal (training, prefill) or low_latency (decode)") == "normal"
                     ? ExpertCommMode::normal
                     : ExpertCommMode::low_latency;
        e.experts = ep.optional<int>("experts", 256, "routed experts", at_least(1));
        e.top_k = ep.optional<int>("top_k", 8, "experts per token", at_least(1));
        e.node_limit = ep.optional<int>("node_limit", 4, "most hosts one token may be sent to", at_least(1));
        e.tokens_per_gpu = ep.required<int>("tokens_per_gpu", "tokens each GPU dispatches", at_least(1));
        e.hidden = ep.optional<int>("hidden", 7168, "hidden size of a token", at_least(1));
        e.fp8_dispatch = ep.choice("dispatch_dtype", {"fp8", "bf16"}, "fp8", "dispatch payload type") == "fp8";
        e.pipeline_chunks = ep.optional<int>("pipeline_chunks", 8,
                                             "normal mode: RDMA chunks the NVLink forwarding follows", in_range(1, 256));
        e.sms = ep.optional<int>("sms", 20, "SMs the normal-mode kernels hold", at_least(0));
        if (!s.gpus.empty() && e.experts % static_cast<int>(s.gpus.size()) != 0) {
            ep.error("experts", fmt::format("{} experts cannot be spread evenly over {} GPUs", e.experts, s.gpus.size()));
        }
        if (e.top_k > e.experts) ep.error("top_k", fmt::format("top_k {} exceeds the {} experts", e.top_k, e.experts));
        if (topology && diagnostics.empty()) {
            // As sim/network/expert_dispatch.cpp lays the ranks out: the same number on every host (DeepEP
            // pairs each GPU with the same local rank on the other hosts), and a token's node_limit hosts
            // must hold its top_k experts.
            const auto hosts = gpus_per_used_host(s.gpus, *topology);
            if (!same_count_on_every_host(hosts)) {
                root.error("gpus", fmt::format("expert parallelism needs the same number of EP ranks on every host; "
                                               "found {}",
                                               host_counts(hosts)));
            } else {
                const int n_hosts = static_cast<int>(hosts.size());
                const int reachable_hosts = std::min(e.node_limit, n_hosts);
                const int reachable = reachable_hosts * (e.experts / n_hosts);
                if (e.top_k > reachable)
                    ep.error("top_k", fmt::format("top_k {} exceeds the {} experts a token can reach on node_limit {} of "
                                                  "the {} hosts ({} experts per host)",
                                                  e.top_k, reachable, e.node_limit, n_hosts, e.experts / n_hosts));
            }
        }
        s.volume_key = "expert_parallel.tokens_per_gpu";
        s.volume_at = ep.key_location("tokens_per_gpu");
        ep.finish();
    }
    return std::make_unique<NetworkRunner>(std::move(s));
}

nlohmann::ordered_json NetworkRunner::run(const RunOptions& options, RunOutput& out) {
    const Topology& topology = *s_.topology;
    Simulator sim(options.seed);
    FlowNetwork network(sim, topology);
    network.record_link_timeline(true);
    network.set_rate_update_interval(s_.rate_update_interval);

    const bool expert = s_.operation == "expert_dispatch" || s_.operation == "expert_combine";
    std::optional<ExpertCommPlan> expert_plan;
    TransferDag collective_dag;
    if (expert) {
        const TokenRouting routing = balanced_routing(s_.expert, topology, options.seed);
        expert_plan = build_expert_comm(s_.expert, routing, topology);
    } else {
        collective_dag = build_collective(s_.collective, topology);
    }
    const TransferDag& dag = expert ? expert_plan->dag : collective_dag;

    std::ofstream trace_file;
    std::unique_ptr<TraceWriter> trace;
    if (options.trace) {
        trace_file = out.open("trace.json");
        trace = std::make_unique<TraceWriter>(trace_file);
        network.on_flow_finished().subscribe([&](const FinishedFlow& f) {
            const TrackId track = trace->track(fmt::format("GPU {}", f.src_gpu), fmt::format("to GPU {}", f.dst_gpu));
            trace->slice(track, f.label && !f.label->empty() ? *f.label : "flow", "flow", f.start, f.end - f.start,
                         {{"bytes", f.size.bytes()}, {"dst_gpu", static_cast<double>(f.dst_gpu)}});
        });
    }

    DagExecution execution(network, dag);
    try {
        execution.start();
        sim.run();
    } catch (const TimeOverflow& e) {
        throw InputError({Diagnostic{s_.volume_at, s_.volume_key,
                                     fmt::format("the transfers cannot be simulated: {}; expected less data", e.what())}});
    }
    if (!execution.finished()) throw std::logic_error("the network simulation ended with transfers still pending");
    const Time elapsed = execution.finished_at() - execution.started_at();

    // Per-transfer CSV.
    {
        auto csv = out.open("transfers.csv");
        csv << "id,src_gpu,dst_gpu,bytes,start_us,end_us,label\n";
        for (TransferId id = 0; id < dag.size(); ++id) {
            const Transfer& t = dag.transfers()[id];
            csv << fmt::format("{},{},{},{},{:.6f},{:.6f},{}\n", id, t.src, t.dst, t.bytes.bytes(),
                               execution.transfer_start(id).us(), execution.transfer_end(id).us(), t.label);
        }
    }
    // Per-link utilization in time bins, for links that carried anything.
    const int bins = s_.utilization_bins;
    const double bin_ps = std::max(1.0, static_cast<double>(elapsed.ps()) / bins);
    double ib_max_util = 0, nvlink_max_util = 0;
    struct LinkSteps {
        LinkIndex link;
        double bytes = 0;
        std::vector<std::pair<double, double>> steps;  // (bin start in us, utilization), then the last bin's end
    };
    std::vector<LinkSteps> busy;
    {
        auto csv = out.open("link_utilization.csv");
        csv << "link,kind,bin_start_us,bin_end_us,utilization\n";
        for (LinkIndex l = 0; l < topology.link_count(); ++l) {
            const auto& timeline = network.link_timeline(l);
            if (timeline.empty()) continue;
            const double capacity = topology.link(l).effective_bandwidth().bytes_per_second();
            std::vector<double> bytes(static_cast<std::size_t>(bins), 0.0);
            for (std::size_t i = 0; i < timeline.size(); ++i) {
                double from = static_cast<double>(timeline[i].first.ps());
                const double to = i + 1 < timeline.size() ? static_cast<double>(timeline[i + 1].first.ps())
                                                          : static_cast<double>(execution.finished_at().ps());
                const double rate = timeline[i].second;
                // Walk the bins by index: recomputing a bin from t / bin_ps can round back into the bin just
                // left, which ended the walk early and dropped the rest of the interval.
                const auto last = static_cast<std::size_t>(bins - 1);
                for (auto b = std::min<std::size_t>(static_cast<std::size_t>(from / bin_ps), last); from < to; ++b) {
                    const double bin_end = b == last ? to : std::min(to, (static_cast<double>(b) + 1) * bin_ps);
                    bytes[b] += rate * std::max(bin_end - from, 0.0) * 1e-12;
                    if (b == last || bin_end >= to) break;
                    from = bin_end;
                }
            }
            const auto& link = topology.link(l);
            double mean = 0;
            LinkSteps steps{l, 0, {}};
            for (int b = 0; b < bins; ++b) {
                const double util = bytes[static_cast<std::size_t>(b)] / (capacity * bin_ps * 1e-12);
                mean += util / bins;
                csv << fmt::format("{},{},{:.6f},{:.6f},{:.4f}\n", link.name, to_string(link.kind), b * bin_ps * 1e-6,
                                   (b + 1) * bin_ps * 1e-6, util);
                steps.bytes += bytes[static_cast<std::size_t>(b)];
                steps.steps.emplace_back(b * bin_ps * 1e-6, util);
            }
            steps.steps.emplace_back(bins * bin_ps * 1e-6, steps.steps.back().second);
            busy.push_back(std::move(steps));
            if (link.kind == LinkKind::infiniband) ib_max_util = std::max(ib_max_util, mean);
            if (link.kind == LinkKind::nvlink) nvlink_max_util = std::max(nvlink_max_util, mean);
        }
    }

    // link_utilization.svg: the busiest links over time (ties: the CSV's order).
    {
        const std::size_t carrying = busy.size();
        std::stable_sort(busy.begin(), busy.end(),
                         [](const LinkSteps& a, const LinkSteps& b) { return a.bytes > b.bytes; });
        if (busy.size() > kLinksOnChart) busy.resize(kLinksOnChart);
        ChartSpec chart;
        chart.title = fmt::format("{} on {} ({} GPUs): the {} busiest of {} links carrying data, by bytes",
                                  s_.operation, topology.name(), s_.gpus.size(), busy.size(), carrying);
        chart.x_label = "time (us)";
        chart.y_label = "utilization (share of the effective link bandwidth)";
        chart.y_min = 0;
        for (auto& b : busy)
            chart.series.push_back({topology.link(b.link).name, std::move(b.steps), ChartStyle::steps, ""});
        (void)write_chart(out.file("link_utilization.svg").parent_path(), "link_utilization", chart);
    }

    nlohmann::ordered_json summary;
    summary["kind"] = "network";
    summary["operation"] = s_.operation;
    summary["topology"] = topology.name();
    summary["gpus"] = s_.gpus.size();
    summary["time_us"] = elapsed.us();
    summary["flows"] = network.flows_started();
    summary["rate_recomputations"] = network.rate_recomputations();
    summary["rate_update_interval_us"] = s_.rate_update_interval.us();
    if (expert) {
        const auto& e = s_.expert;
        const auto& plan = *expert_plan;
        summary["mode"] = e.mode == ExpertCommMode::normal ? "normal" : "low_latency";
        summary["algorithm"] = e.mode == ExpertCommMode::normal
                                   ? (plan.logical_bytes_kind == "rdma" ? "deepep_normal_internode" : "deepep_normal_intranode")
                                   : "deepep_low_latency";
        double mean_logical = 0;
        for (double b : plan.logical_bytes) mean_logical += b / static_cast<double>(plan.logical_bytes.size());
        summary["logical_bytes_kind"] = plan.logical_bytes_kind;
        summary["logical_bytes_per_gpu"] = mean_logical;
        summary["logical_bandwidth_gb_per_s"] = mean_logical / elapsed.seconds() * 1e-9;
        summary["ib_bytes_total"] = plan.ib_bytes;
        summary["nvlink_bytes_total"] = plan.nvlink_bytes;
        summary["sms_held"] = e.mode == ExpertCommMode::normal ? e.sms : 0;
    } else {
        const double size = s_.collective.size.bytes();
        const double algbw = size / elapsed.seconds();
        summary["algorithm"] = to_string(s_.collective.algorithm);
        summary["size_bytes"] = size;
        summary["algbw_gb_per_s"] = algbw * 1e-9;
        summary["busbw_gb_per_s"] = algbw * bus_bandwidth_factor(s_.collective.op, s_.gpus.size()) * 1e-9;
    }
    summary["busiest_ib_link_mean_utilization"] = ib_max_util;
    summary["busiest_nvlink_link_mean_utilization"] = nvlink_max_util;
    summary["provenance"] = "computed by the flow-level network model from the topology's link parameters";
    out.write_json("summary.json", summary);
    if (trace) trace->finish();
    return summary;
}

}  // namespace clustersim
