// FlowNetwork: the flow-level network model. A transfer is a flow on a routed path of directed
// links; concurrent flows share each link's bandwidth max-min fairly.
//
// Rates are recomputed when flows start or end, once per instant however many flows changed, and
// only for the flows connected to the changed links through shared links (the others keep their
// rates). Max-min rates come from progressive filling (Bertsekas and Gallager, Data Networks,
// 2nd ed., section 6.5.2): repeatedly saturate the link with the smallest fair share and freeze
// the flows crossing it. A flow's last byte arrives when its data has drained at its (changing)
// rate plus the path's per-hop latencies.
#pragma once

#include "sim/core/signal.hpp"
#include "sim/core/simulator.hpp"
#include "topologies/topology.hpp"

#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace clustersim {

using FlowId = std::uint32_t;

// What observers learn about each finished flow.
struct FinishedFlow {
    FlowId id;
    int src_gpu;
    int dst_gpu;
    Bytes size;
    Time start;
    Time end;  // when the last byte arrived, latency included
    const std::string* label;
};

class FlowNetwork {
public:
    FlowNetwork(Simulator& sim, const Topology& topology);
    FlowNetwork(const FlowNetwork&) = delete;
    FlowNetwork& operator=(const FlowNetwork&) = delete;

    // Starts a flow of `size` bytes from GPU `src` to GPU `dst` now, on the route the topology
    // picks for `flow_key`; `on_done` runs when its last byte has arrived. A flow to itself (or of
    // zero bytes) completes after the path latency only.
    FlowId start(int src, int dst, Bytes size, std::function<void()> on_done, std::uint64_t flow_key = 0,
                 std::string label = {});
    // As start(), on an explicit path of links (topology links and virtual links).
    FlowId start_on_path(int src, int dst, std::vector<LinkIndex> path, Bytes size, std::function<void()> on_done,
                         std::string label = {});

    // Adds a link that is not in the topology, of `capacity` and no latency, and returns its index
    // (after the topology's links). Flows whose explicit path includes it share it max-min fairly like
    // any link: it models a rate limit outside the fabric, such as the copy throughput of the SMs a
    // communication kernel holds (sim/network/expert_dispatch.cpp). Virtual links live as long as the
    // network.
    LinkIndex add_virtual_link(Bandwidth capacity);
    // Topology links plus virtual links.
    std::size_t link_count() const { return links_.size(); }

    // Hook: emitted when a flow's last byte arrives.
    Signal<const FinishedFlow&>& on_flow_finished() { return on_flow_finished_; }

    // Records every change of each link's carried rate, for utilization-over-time outputs.
    void record_link_timeline(bool on) { record_timeline_ = on; }

    // Rates are exact max-min at every instant when this is zero (the default). A positive
    // interval lets rate changes wait until at least this long after the previous recomputation:
    // flows then keep their old rates (never above their fair share, so no link is overfilled, but
    // capacity freed by an ended flow idles) for up to the interval. It bounds the number of
    // recomputations by simulated time / interval, for scenarios with tens of thousands of flows
    // ending at scattered times.
    void set_rate_update_interval(Time interval) { update_interval_ = interval; }

    std::size_t active_flows() const { return active_count_; }
    std::uint64_t flows_started() const { return flows_started_; }
    std::uint64_t rate_recomputations() const { return recomputations_; }
    const Topology& topology() const { return topology_; }
    Simulator& simulator() const { return sim_; }

    // Bytes that crossed `link` so far (accounted up to the last rate change).
    Bytes link_bytes(LinkIndex link) const { return Bytes(links_[link].bytes_carried); }
    // The current total rate on `link`.
    Bandwidth link_rate(LinkIndex link) const { return Bandwidth(links_[link].rate); }
    // Change points (time, carried rate in bytes/s) of a link, when recording is on.
    const std::vector<std::pair<Time, double>>& link_timeline(LinkIndex link) const { return links_[link].timeline; }
    // The rate a flow currently gets (0 once finished).
    Bandwidth flow_rate(FlowId id) const { return Bandwidth(flow_rates_[id]); }

private:
    // The per-flow state a recomputation reads and writes, in under one cache line: with tens of
    // thousands of flows, recomputation time is mostly memory traffic, so what only start and
    // finish need is in FlowRecord, and the rate, the path's place and the scratch marks are in
    // dense arrays of their own.
    struct Flow {
        double remaining = 0;  // bytes not yet sent, as of `updated`
        Time updated;
        std::int64_t finish_ps = 0;           // projected end of sending at the current rate
        std::uint32_t version = 0;            // bumps on every rate change; stale heap entries are skipped
        std::uint32_t scheduled_version = 0;  // the version whose projected end is in the finish heap
        std::int32_t heap_pos = -1;           // position in finish_heap_, -1 when not in it
        std::uint32_t path_capacity = 0;      // path_links_ reserved for the FlowId, reused by its next flow
        bool active = false;
    };
    // What the component search and the filling read for each (link, flow) pair, together in one
    // small record: where the flow's links are in path_links_, and the latest recomputation
    // (visit_epoch_) that reached or froze the flow.
    struct FlowScan {
        std::uint32_t path_begin = 0;
        std::uint32_t path_size = 0;
        std::uint32_t reached = 0;
        std::uint32_t frozen = 0;
    };
    // What a flow's start and finish need, apart from the hot state.
    struct FlowRecord {
        Time start;
        Time latency;
        int src = 0;
        int dst = 0;
        double size = 0;
        std::function<void()> on_done;
        std::string label;
    };
    struct LinkState {
        std::vector<FlowId> flows;  // active flows crossing the link
        double capacity = 0;        // achievable bytes/s
        Time latency;               // per hop (zero for a virtual link)
        double rate = 0;            // sum of the rates of its flows
        Time rate_since;            // when `rate` took effect
        double bytes_carried = 0;
        bool dirty = false;
        std::vector<std::pair<Time, double>> timeline;
    };
    // Scratch for progressive filling, apart from LinkState so the inner loop's links stay in L1.
    struct LinkFill {
        double remaining_capacity = 0;
        std::uint32_t unfrozen = 0;
        std::uint32_t visit = 0;     // last component search that reached this link
        bool rates_changed = false;  // its flows or their rates changed: its total needs summing
    };

    std::span<const LinkIndex> path_of(FlowId id) const {
        return {path_links_.data() + flow_scan_[id].path_begin, flow_scan_[id].path_size};
    }
    FlowId add_flow(int src, int dst, const std::vector<LinkIndex>& path, Bytes size, std::function<void()> on_done,
                    std::string label);
    void collect_component(Time now);
    void fill_max_min();
    void mark_dirty(LinkIndex link);
    void request_recompute();
    void recompute();
    void account_link(LinkState& link, Time until);
    void settle(FlowId id);
    void schedule_next_finish();
    void on_finish_event();
    void finish(FlowId id);

    Simulator& sim_;
    const Topology& topology_;
    std::vector<Flow> flows_;
    std::vector<FlowRecord> records_;  // by FlowId, like flows_
    // Each flow's rate in bytes/s (0 once finished), and its FlowScan: dense arrays, because the
    // component search and the filling touch them once per (link, flow) pair.
    std::vector<double> flow_rates_;
    std::vector<FlowScan> flow_scan_;
    std::vector<FlowId> free_flows_;
    // Every flow's links, in slots that a reused FlowId takes over when the new path fits (paths on
    // one topology have a handful of lengths, so few slots are ever abandoned and this stays small).
    std::vector<LinkIndex> path_links_;
    std::vector<LinkState> links_;
    std::vector<LinkFill> link_fill_;
    std::vector<LinkIndex> dirty_links_;
    // Active flows ordered by projected end (then id): a binary heap with each flow's position kept
    // in the flow, so a rate change moves the flow's one entry instead of adding another.
    std::vector<FlowId> finish_heap_;
    bool finishes_before(FlowId a, FlowId b) const {
        const Flow& fa = flows_[a];
        const Flow& fb = flows_[b];
        return fa.finish_ps < fb.finish_ps || (fa.finish_ps == fb.finish_ps && a < b);
    }
    void finish_heap_update(FlowId id);
    void finish_heap_remove(FlowId id);
    void finish_heap_sift_up(std::size_t i);
    void finish_heap_sift_down(std::size_t i);
    EventId finish_event_;
    std::int64_t finish_event_ps_ = 0;
    bool recompute_pending_ = false;
    Time last_recompute_ = Time::from_ps(std::numeric_limits<std::int64_t>::min() / 2);  // none yet
    Time update_interval_;
    bool record_timeline_ = false;
    std::uint32_t visit_epoch_ = 0;
    std::size_t active_count_ = 0;
    std::size_t sharing_count_ = 0;  // active flows on links (non-empty path, some bytes)
    std::uint64_t flows_started_ = 0;
    std::uint64_t recomputations_ = 0;
    Signal<const FinishedFlow&> on_flow_finished_;
    // Scratch buffers reused by recompute().
    std::vector<LinkIndex> component_links_;
    std::vector<FlowId> unscheduled_flows_;  // component flows whose projected end must be (re)computed
    std::vector<LinkIndex> route_scratch_;
    struct FairShare {
        double share;
        LinkIndex link;
        bool operator<(const FairShare& o) const { return share < o.share || (share == o.share && link < o.link); }
    };
    // Progressive filling's queue: each link's first share, sorted, and a binary min-heap of the
    // shares that grew and went back in.
    std::vector<FairShare> initial_shares_;
    std::vector<FairShare> share_heap_;
    void share_heap_push(FairShare entry);
    void share_heap_sift_down(std::size_t i);
    void share_heap_pop();
};

}  // namespace clustersim
