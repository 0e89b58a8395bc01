// Max-min fair sharing of links among flows, recomputed incrementally as flows start and end.
#include "flow_network.hpp"

#include <algorithm>
#include <cmath>

namespace clustersim {

FlowNetwork::FlowNetwork(Simulator& sim, const Topology& topology) : sim_(sim), topology_(topology) {
    links_.resize(topology.link_count());
    for (LinkIndex l = 0; l < links_.size(); ++l) links_[l].capacity = topology.link(l).effective_bandwidth().bytes_per_second();
}

FlowId FlowNetwork::start(int src, int dst, Bytes size, std::function<void()> on_done, std::uint64_t flow_key,
                          std::string label) {
    return start_on_path(src, dst, src == dst ? std::vector<LinkIndex>{} : topology_.route(src, dst, flow_key), size,
                         std::move(on_done), std::move(label));
}

FlowId FlowNetwork::start_on_path(int src, int dst, std::vector<LinkIndex> path, Bytes size,
                                  std::function<void()> on_done, std::string label) {
    FlowId id;
    if (!free_flows_.empty()) {
        id = free_flows_.back();
        free_flows_.pop_back();
    } else {
        id = static_cast<FlowId>(flows_.size());
        flows_.emplace_back();
    }
    Flow& f = flows_[id];
    f.path = std::move(path);
    f.remaining = size.bytes();
    f.size = size.bytes();
    f.rate = 0;
    f.updated = sim_.now();
    f.start = sim_.now();
    f.latency = Time::zero();
    for (LinkIndex l : f.path) f.latency += topology_.link(l).latency;
    f.src = src;
    f.dst = dst;
    f.on_done = std::move(on_done);
    f.label = std::move(label);
    f.active = true;
    ++f.version;
    ++active_count_;
    ++flows_started_;
    if (f.path.empty() || f.remaining <= 0) {
        // Nothing to share: the flow ends as soon as its bytes (none) and latency have passed.
        f.finish_ps = sim_.now().ps();
        finish_heap_update(id);
        schedule_next_finish();
        return id;
    }
    for (LinkIndex l : f.path) {
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

void FlowNetwork::settle(Flow& flow) {
    const Time now = sim_.now();
    flow.remaining = std::max(0.0, flow.remaining - flow.rate * (now - flow.updated).seconds());
    flow.updated = now;
}

void FlowNetwork::recompute() {
    recompute_pending_ = false;
    ++recomputations_;
    const Time now = sim_.now();
    last_recompute_ = now;

    // The affected part: flows and links reachable from the changed links through shared links.
    ++visit_epoch_;
    component_flows_.clear();
    component_links_.clear();
    for (LinkIndex l : dirty_links_) {
        links_[l].dirty = false;
        links_[l].visit = visit_epoch_;
        component_links_.push_back(l);
    }
    dirty_links_.clear();
    for (std::size_t i = 0; i < component_links_.size(); ++i) {
        for (FlowId id : links_[component_links_[i]].flows) {
            Flow& f = flows_[id];
            if (f.visit == visit_epoch_) continue;
            f.visit = visit_epoch_;
            component_flows_.push_back(id);
            for (LinkIndex m : f.path) {
                if (links_[m].visit != visit_epoch_) {
                    links_[m].visit = visit_epoch_;
                    component_links_.push_back(m);
                }
            }
        }
    }

    for (FlowId id : component_flows_) {
        settle(flows_[id]);
        flows_[id].frozen = false;
    }

    // Progressive filling with a lazy heap of fair shares. Freezing a flow at the smallest share s
    // never lowers the share of another link it crosses ((C - s)/(n - 1) >= C/n when s <= C/n), so
    // a key in the heap is a lower bound of its link's share: a popped link whose share has grown
    // is pushed back with the new value, and one whose share is unchanged is the true minimum.
    share_heap_.clear();
    for (LinkIndex l : component_links_) {
        LinkState& link = links_[l];
        account_link(link, now);
        link.remaining_capacity = link.capacity;
        link.unfrozen = static_cast<std::uint32_t>(link.flows.size());
        if (link.unfrozen > 0) share_heap_.push_back({link.capacity / link.unfrozen, l});
    }
    const auto later = [](const FairShare& a, const FairShare& b) { return a > b; };
    std::make_heap(share_heap_.begin(), share_heap_.end(), later);
    while (!share_heap_.empty()) {
        std::pop_heap(share_heap_.begin(), share_heap_.end(), later);
        const FairShare top = share_heap_.back();
        share_heap_.pop_back();
        LinkState& bottleneck = links_[top.link];
        if (bottleneck.unfrozen == 0) continue;
        const double share = std::max(0.0, bottleneck.remaining_capacity / bottleneck.unfrozen);
        if (share > top.share * (1 + 1e-12)) {
            share_heap_.push_back({share, top.link});
            std::push_heap(share_heap_.begin(), share_heap_.end(), later);
            continue;
        }
        for (FlowId id : bottleneck.flows) {
            Flow& f = flows_[id];
            if (f.frozen) continue;
            f.frozen = true;
            if (f.rate != share) {
                f.rate = share;
                ++f.version;
            }
            for (LinkIndex m : f.path) {
                LinkState& link = links_[m];
                link.remaining_capacity -= share;
                --link.unfrozen;
            }
        }
    }

    for (LinkIndex l : component_links_) {
        LinkState& link = links_[l];
        double rate = 0;
        for (FlowId id : link.flows) rate += flows_[id].rate;
        if (record_timeline_ && (link.timeline.empty() || link.timeline.back().second != rate)) {
            if (!link.timeline.empty() && link.timeline.back().first == now) {
                link.timeline.back().second = rate;
            } else {
                link.timeline.emplace_back(now, rate);
            }
        }
        link.rate = rate;
    }
    for (FlowId id : component_flows_) {
        Flow& f = flows_[id];
        // A flow whose rate did not change keeps its projected end (and its queue entry).
        if (f.version == f.scheduled_version) continue;
        // The end of sending, rounded up to the next picosecond so the flow is never early.
        const double seconds = f.rate > 0 ? f.remaining / f.rate : 1e300;
        const double ps = std::ceil(seconds * 1e12);
        f.finish_ps = ps >= 9e18 ? Time::max().ps() : now.ps() + static_cast<std::int64_t>(ps);
        f.scheduled_version = f.version;
        finish_heap_update(id);
    }
    schedule_next_finish();
}

void FlowNetwork::finish_heap_sift_up(std::size_t i) {
    const FlowId id = finish_heap_[i];
    while (i > 0) {
        const std::size_t parent = (i - 1) / 2;
        if (!finishes_before(id, finish_heap_[parent])) break;
        finish_heap_[i] = finish_heap_[parent];
        flows_[finish_heap_[i]].heap_pos = static_cast<std::int64_t>(i);
        i = parent;
    }
    finish_heap_[i] = id;
    flows_[id].heap_pos = static_cast<std::int64_t>(i);
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
        flows_[finish_heap_[i]].heap_pos = static_cast<std::int64_t>(i);
        i = child;
    }
    finish_heap_[i] = id;
    flows_[id].heap_pos = static_cast<std::int64_t>(i);
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
    flows_[last].heap_pos = static_cast<std::int64_t>(pos);
    finish_heap_sift_up(pos);
    finish_heap_sift_down(static_cast<std::size_t>(flows_[last].heap_pos));
}

void FlowNetwork::schedule_next_finish() {
    if (finish_heap_.empty()) {
        sim_.cancel(finish_event_);
        finish_event_ = {};
        return;
    }
    const std::int64_t next = std::max(flows_[finish_heap_.front()].finish_ps, sim_.now().ps());
    if (next == Time::max().ps()) return;
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
    settle(f);
    for (LinkIndex l : f.path) {
        auto& on_link = links_[l].flows;
        for (std::size_t i = 0; i < on_link.size(); ++i) {
            if (on_link[i] == id) {
                on_link[i] = on_link.back();
                on_link.pop_back();
                break;
            }
        }
        mark_dirty(l);
    }
    if (!f.path.empty()) request_recompute();
    f.active = false;
    f.rate = 0;
    ++f.version;
    --active_count_;
    FinishedFlow record{id, f.src, f.dst, Bytes(f.size), f.start, sim_.now() + f.latency, nullptr};
    auto on_done = std::move(f.on_done);
    auto label = std::make_shared<std::string>(std::move(f.label));
    f.on_done = nullptr;
    f.path.clear();
    free_flows_.push_back(id);
    // The last byte arrives one path latency after it was sent.
    sim_.schedule_in(f.latency, [this, record, on_done = std::move(on_done), label]() mutable {
        record.label = label.get();
        if (on_flow_finished_.has_subscribers()) on_flow_finished_.emit(record);
        if (on_done) on_done();
    });
}

}  // namespace clustersim
