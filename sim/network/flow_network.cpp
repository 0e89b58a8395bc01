// Max-min fair sharing of links among flows, recomputed incrementally as flows start and end.
#include "flow_network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace clustersim {

FlowNetwork::FlowNetwork(Simulator& sim, const Topology& topology) : sim_(sim), topology_(topology) {
    links_.resize(topology.link_count());
    link_fill_.resize(topology.link_count());
    for (LinkIndex l = 0; l < links_.size(); ++l) {
        links_[l].capacity = topology.link(l).effective_bandwidth().bytes_per_second();
        links_[l].latency = topology.link(l).latency;
    }
}

LinkIndex FlowNetwork::add_virtual_link(Bandwidth capacity) {
    if (!(capacity.bytes_per_second() > 0)) throw std::invalid_argument("a virtual link needs a positive capacity");
    links_.emplace_back();
    links_.back().capacity = capacity.bytes_per_second();
    link_fill_.emplace_back();
    return static_cast<LinkIndex>(links_.size() - 1);
}

FlowId FlowNetwork::start(int src, int dst, Bytes size, std::function<void()> on_done, std::uint64_t flow_key,
                          std::string label) {
    route_scratch_.clear();
    if (src != dst) topology_.route_into(src, dst, flow_key, route_scratch_);
    return add_flow(src, dst, route_scratch_, size, std::move(on_done), std::move(label));
}

FlowId FlowNetwork::start_on_path(int src, int dst, std::vector<LinkIndex> path, Bytes size,
                                  std::function<void()> on_done, std::string label) {
    return add_flow(src, dst, path, size, std::move(on_done), std::move(label));
}

FlowId FlowNetwork::add_flow(int src, int dst, const std::vector<LinkIndex>& path, Bytes size,
                             std::function<void()> on_done, std::string label) {
    FlowId id;
    if (!free_flows_.empty()) {
        id = free_flows_.back();
        free_flows_.pop_back();
    } else {
        id = static_cast<FlowId>(flows_.size());
        flows_.emplace_back();
        records_.emplace_back();
        flow_scan_.emplace_back();
        flow_rates_.push_back(0);
    }
    Flow& f = flows_[id];
    FlowScan& scan = flow_scan_[id];
    if (path.size() > f.path_capacity) {
        scan.path_begin = static_cast<std::uint32_t>(path_links_.size());
        f.path_capacity = static_cast<std::uint32_t>(path.size());
        path_links_.resize(path_links_.size() + path.size());
    }
    scan.path_size = static_cast<std::uint32_t>(path.size());
    std::copy(path.begin(), path.end(), path_links_.begin() + scan.path_begin);
    f.remaining = size.bytes();
    flow_rates_[id] = 0;
    f.updated = sim_.now();
    f.active = true;
    ++f.version;
    FlowRecord& r = records_[id];
    r.size = size.bytes();
    r.start = sim_.now();
    r.latency = Time::zero();
    for (LinkIndex l : path) r.latency += links_[l].latency;
    r.src = src;
    r.dst = dst;
    r.on_done = std::move(on_done);
    r.label = std::move(label);
    ++active_count_;
    ++flows_started_;
    if (path.empty() || f.remaining <= 0) {
        // Nothing to share: the flow ends as soon as its bytes (none) and latency have passed.
        f.finish_ps = sim_.now().ps();
        finish_heap_update(id);
        schedule_next_finish();
        return id;
    }
    ++sharing_count_;
    for (LinkIndex l : path) {
        links_[l].flows.push_back(id);
        mark_dirty(l);
    }
    request_recompute();
    return id;
}

void FlowNetwork::mark_dirty(LinkIndex link) {
    if (!links_[link].dirty) {
        links_[link].dirty = true;
        dirty_links_.push_back(link);
    }
}

void FlowNetwork::request_recompute() {
    // All flows that start or end at one instant (or within one update interval) are settled by a
    // single recomputation.
    if (recompute_pending_) return;
    recompute_pending_ = true;
    const Time at = std::max(sim_.now(), last_recompute_ + update_interval_);
    sim_.schedule_at(at, [this] { recompute(); });
}

void FlowNetwork::account_link(LinkState& link, Time until) {
    link.bytes_carried += link.rate * (until - link.rate_since).seconds();
    link.rate_since = until;
}

void FlowNetwork::settle(FlowId id) {
    Flow& flow = flows_[id];
    const Time now = sim_.now();
    flow.remaining = std::max(0.0, flow.remaining - flow_rates_[id] * (now - flow.updated).seconds());
    flow.updated = now;
}

void FlowNetwork::recompute() {
    recompute_pending_ = false;
    ++recomputations_;
    const Time now = sim_.now();
    last_recompute_ = now;

    collect_component(now);
    fill_max_min();

    for (LinkIndex l : component_links_) {
        // The same flows at the same rates, summed in the same order, give the same total.
        LinkState& link = links_[l];
        if (!link_fill_[l].rates_changed && !(record_timeline_ && link.timeline.empty())) continue;
        double rate = 0;
        for (FlowId id : link.flows) rate += flow_rates_[id];
        if (record_timeline_ && (link.timeline.empty() || link.timeline.back().second != rate)) {
            if (!link.timeline.empty() && link.timeline.back().first == now) {
                link.timeline.back().second = rate;
            } else {
                link.timeline.emplace_back(now, rate);
            }
        }
        link.rate = rate;
    }
    // A flow whose rate did not change keeps its projected end (and its queue entry). The finish
    // heap orders flows totally, so the order of these updates does not matter.
    for (FlowId id : unscheduled_flows_) {
        Flow& f = flows_[id];
        // The end of sending, rounded up to the next picosecond so the flow is never early.
        const double rate = flow_rates_[id];
        const double seconds = rate > 0 ? f.remaining / rate : 1e300;
        const double ps = std::ceil(seconds * 1e12);
        // Past the end of Time's range: parked at Time::max() (a flow with no rate never ends);
        // schedule_next_finish raises TimeOverflow if such a flow is the next to end.
        f.finish_ps = ps >= static_cast<double>(Time::max().ps() - now.ps()) ? Time::max().ps()
                                                                            : now.ps() + static_cast<std::int64_t>(ps);
        f.scheduled_version = f.version;
        finish_heap_update(id);
    }
    schedule_next_finish();
}

void FlowNetwork::collect_component(Time now) {
    // The affected part: flows and links reachable from the changed links through shared links.
    // Each is prepared for filling as it is reached: flows settled up to now, links accounted and
    // given their full capacity and first fair share.
    ++visit_epoch_;
    component_links_.clear();
    unscheduled_flows_.clear();
    initial_shares_.clear();
    const auto reach_link = [&](LinkIndex l) {
        LinkState& link = links_[l];
        component_links_.push_back(l);
        account_link(link, now);
        const auto unfrozen = static_cast<std::uint32_t>(link.flows.size());
        link_fill_[l] = {link.capacity, unfrozen, visit_epoch_, link.dirty};
        if (unfrozen > 0) initial_shares_.push_back({link.capacity / unfrozen, l});
    };
    for (LinkIndex l : dirty_links_) {
        reach_link(l);
        links_[l].dirty = false;
    }
    dirty_links_.clear();
    // Once every flow on a link has been reached, so has every link with a flow: the search can
    // stop (often the component is the whole network).
    std::size_t reached_flows = 0;
    for (std::size_t i = 0; i < component_links_.size() && reached_flows < sharing_count_; ++i) {
        for (FlowId id : links_[component_links_[i]].flows) {
            if (flow_scan_[id].reached == visit_epoch_) continue;
            flow_scan_[id].reached = visit_epoch_;
            ++reached_flows;
            settle(id);
            if (flows_[id].version != flows_[id].scheduled_version) unscheduled_flows_.push_back(id);  // just started
            for (LinkIndex m : path_of(id)) {
                if (link_fill_[m].visit != visit_epoch_) reach_link(m);
            }
        }
    }
}

void FlowNetwork::fill_max_min() {
    // Progressive filling with lazy fair shares. Freezing a flow at the smallest share s never
    // lowers the share of another link it crosses ((C - s)/(n - 1) >= C/n when s <= C/n), so a
    // link's recorded share is a lower bound of its current one: a link taken out whose share has
    // grown goes back in with the new value, and one whose share is unchanged is the true minimum.
    //
    // The queue is the links' first shares sorted once, merged with a heap of the shares that went
    // back in: most links enter once, and many have all their flows frozen by other links before
    // their turn, which costs nothing in the sorted run but a full sift in a heap. Each link has at
    // most one entry, and (share, link) orders entries totally, so the links come out in the same
    // order as from any single priority queue.
    std::sort(initial_shares_.begin(), initial_shares_.end());
    std::size_t next_initial = 0;
    share_heap_.clear();
    while (true) {
        const bool from_heap = !share_heap_.empty() && (next_initial == initial_shares_.size() ||
                                                        share_heap_.front() < initial_shares_[next_initial]);
        if (!from_heap && next_initial == initial_shares_.size()) break;
        const FairShare top = from_heap ? share_heap_.front() : initial_shares_[next_initial];
        const LinkFill& bottleneck = link_fill_[top.link];
        if (!from_heap) ++next_initial;
        if (bottleneck.unfrozen == 0) {
            if (from_heap) share_heap_pop();
            continue;
        }
        const double share = std::max(0.0, bottleneck.remaining_capacity / bottleneck.unfrozen);
        if (share > top.share * (1 + 1e-12)) {
            if (from_heap) {
                // Pop and push back in one step.
                share_heap_.front().share = share;
                share_heap_sift_down(0);
            } else {
                share_heap_push({share, top.link});
            }
            continue;
        }
        if (from_heap) share_heap_pop();
        for (FlowId id : links_[top.link].flows) {
            if (flow_scan_[id].frozen == visit_epoch_) continue;
            flow_scan_[id].frozen = visit_epoch_;
            const bool changed = flow_rates_[id] != share;
            if (changed) {
                flow_rates_[id] = share;
                Flow& f = flows_[id];
                if (f.version == f.scheduled_version) unscheduled_flows_.push_back(id);
                ++f.version;
            }
            for (LinkIndex m : path_of(id)) {
                LinkFill& link = link_fill_[m];
                link.remaining_capacity -= share;
                --link.unfrozen;
                link.rates_changed |= changed;
            }
        }
    }
}

void FlowNetwork::share_heap_push(FairShare entry) {
    std::size_t i = share_heap_.size();
    share_heap_.push_back(entry);
    while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!(entry < share_heap_[parent])) break;
        share_heap_[i] = share_heap_[parent];
        i = parent;
    }
    share_heap_[i] = entry;
}

void FlowNetwork::share_heap_sift_down(std::size_t i) {
    const FairShare moving = share_heap_[i];
    const std::size_t n = share_heap_.size();
    while (true) {
        std::size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && share_heap_[child + 1] < share_heap_[child]) ++child;
        if (!(share_heap_[child] < moving)) break;
        share_heap_[i] = share_heap_[child];
        i = child;
    }
    share_heap_[i] = moving;
}

void FlowNetwork::share_heap_pop() {
    share_heap_.front() = share_heap_.back();
    share_heap_.pop_back();
    if (!share_heap_.empty()) share_heap_sift_down(0);
}

void FlowNetwork::finish_heap_sift_up(std::size_t i) {
    const FlowId id = finish_heap_[i];
    while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!finishes_before(id, finish_heap_[parent])) break;
        finish_heap_[i] = finish_heap_[parent];
        flows_[finish_heap_[i]].heap_pos = static_cast<std::int32_t>(i);
        i = parent;
    }
    finish_heap_[i] = id;
    flows_[id].heap_pos = static_cast<std::int32_t>(i);
}

void FlowNetwork::finish_heap_sift_down(std::size_t i) {
    const FlowId id = finish_heap_[i];
    const std::size_t n = finish_heap_.size();
    while (true) {
        std::size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && finishes_before(finish_heap_[child + 1], finish_heap_[child])) ++child;
        if (!finishes_before(finish_heap_[child], id)) break;
        finish_heap_[i] = finish_heap_[child];
        flows_[finish_heap_[i]].heap_pos = static_cast<std::int32_t>(i);
        i = child;
    }
    finish_heap_[i] = id;
    flows_[id].heap_pos = static_cast<std::int32_t>(i);
}

void FlowNetwork::finish_heap_update(FlowId id) {
    Flow& f = flows_[id];
    if (f.heap_pos < 0) {
        finish_heap_.push_back(id);
        finish_heap_sift_up(finish_heap_.size() - 1);
        return;
    }
    const auto pos = static_cast<std::size_t>(f.heap_pos);
    finish_heap_sift_up(pos);
    finish_heap_sift_down(static_cast<std::size_t>(flows_[id].heap_pos));
}

void FlowNetwork::finish_heap_remove(FlowId id) {
    Flow& f = flows_[id];
    if (f.heap_pos < 0) return;
    const auto pos = static_cast<std::size_t>(f.heap_pos);
    f.heap_pos = -1;
    const FlowId last = finish_heap_.back();
    finish_heap_.pop_back();
    if (last == id) return;
    finish_heap_[pos] = last;
    flows_[last].heap_pos = static_cast<std::int32_t>(pos);
    finish_heap_sift_up(pos);
    finish_heap_sift_down(static_cast<std::size_t>(flows_[last].heap_pos));
}

void FlowNetwork::schedule_next_finish() {
    if (finish_heap_.empty()) {
        sim_.cancel(finish_event_);
        finish_event_ = {};
        return;
    }
    const FlowId first = finish_heap_.front();
    const std::int64_t next = std::max(flows_[first].finish_ps, sim_.now().ps());
    if (next == Time::max().ps()) {
        // Every flow left would end after 2^63 ps at its current rate: report it rather than stall.
        if (flow_rates_[first] > 0)
            throw TimeOverflow(fmt::format("a flow with {} left at {} would end after the simulator's range of "
                                           "2^63 ps (about 106 days) of simulated time",
                                           to_string(Bytes(flows_[first].remaining)),
                                           to_string(Bandwidth(flow_rates_[first]))));
        return;
    }
    if (sim_.is_pending(finish_event_) && finish_event_ps_ == next) return;
    sim_.cancel(finish_event_);
    finish_event_ps_ = next;
    finish_event_ = sim_.schedule_at(Time::from_ps(next), [this] { on_finish_event(); });
}

void FlowNetwork::on_finish_event() {
    finish_event_ = {};
    const std::int64_t now = sim_.now().ps();
    while (!finish_heap_.empty() && flows_[finish_heap_.front()].finish_ps <= now) finish(finish_heap_.front());
    if (!recompute_pending_) schedule_next_finish();
}

void FlowNetwork::finish(FlowId id) {
    finish_heap_remove(id);
    Flow& f = flows_[id];
    settle(id);
    const std::span<const LinkIndex> path = path_of(id);
    bool on_links = false;
    for (LinkIndex l : path) {
        auto& on_link = links_[l].flows;
        for (std::size_t i = 0; i < on_link.size(); ++i) {
            if (on_link[i] == id) {
                on_link[i] = on_link.back();
                on_link.pop_back();
                on_links = true;
                break;
            }
        }
        mark_dirty(l);
    }
    if (on_links) --sharing_count_;
    if (!path.empty()) request_recompute();
    f.active = false;
    flow_rates_[id] = 0;
    ++f.version;
    flow_scan_[id].path_size = 0;
    --active_count_;
    FlowRecord& r = records_[id];
    FinishedFlow record{id, r.src, r.dst, Bytes(r.size), r.start, sim_.now() + r.latency, nullptr};
    auto on_done = std::move(r.on_done);
    auto label = std::make_shared<std::string>(std::move(r.label));
    r.on_done = nullptr;
    free_flows_.push_back(id);
    // The last byte arrives one path latency after it was sent.
    sim_.schedule_in(r.latency, [this, record, on_done = std::move(on_done), label]() mutable {
        record.label = label.get();
        if (on_flow_finished_.has_subscribers()) on_flow_finished_.emit(record);
        if (on_done) on_done();
    });
}

}  // namespace clustersim
