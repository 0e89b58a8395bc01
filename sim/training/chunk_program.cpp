// Greedy execution of chunk chains on a compute and a communication stream (see chunk_program.hpp).
#include "sim/training/chunk_program.hpp"

#include <algorithm>
#include <stdexcept>

namespace clustersim {
namespace {

bool is_expert(CommKind k) { return k == CommKind::ep_dispatch || k == CommKind::ep_combine; }

struct Interval {
    Time start;
    Time end;
};

// Total length of the intersection of two sorted lists of disjoint intervals.
Time overlap_length(const std::vector<Interval>& a, const std::vector<Interval>& b) {
    Time total;
    std::size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const Time lo = std::max(a[i].start, b[j].start);
        const Time hi = std::min(a[i].end, b[j].end);
        if (hi > lo) total += hi - lo;
        (a[i].end < b[j].end) ? ++i : ++j;
    }
    return total;
}

}  // namespace

Time ChunkProgram::compute_time() const {
    Time t;
    for (const auto& s : steps)
        if (!s.communication) t += s.time;
    return t;
}

Time ChunkProgram::communication_time() const {
    Time t;
    for (const auto& s : steps)
        if (s.communication) t += s.time;
    return t;
}

Time ChunkProgram::expert_communication_time() const {
    Time t;
    for (const auto& s : steps)
        if (s.communication && is_expert(s.comm)) t += s.time;
    return t;
}

ChunkProgram concatenate(const ChunkProgram& a, const ChunkProgram& b) {
    ChunkProgram out = a;
    out.steps.insert(out.steps.end(), b.steps.begin(), b.steps.end());
    return out;
}

OverlapResult run_chains(const std::vector<const ChunkProgram*>& chains) {
    if (chains.empty()) throw std::invalid_argument("run_chains needs at least one chain");
    const std::size_t n = chains.size();
    std::vector<std::size_t> next(n, 0);
    std::vector<Time> ready(n);          // when the chain's next step may start
    Time stream_free[2];                 // 0: compute, 1: communication
    std::vector<Interval> busy[2];
    std::vector<Interval> expert_busy;
    OverlapResult result;
    while (true) {
        int best = -1;
        Time best_start;
        for (std::size_t c = 0; c < n; ++c) {
            if (next[c] >= chains[c]->steps.size()) continue;
            const ChunkStep& step = chains[c]->steps[next[c]];
            const Time start = std::max(ready[c], stream_free[step.communication ? 1 : 0]);
            if (best < 0 || start < best_start) best = static_cast<int>(c), best_start = start;
        }
        if (best < 0) break;
        const auto c = static_cast<std::size_t>(best);
        const ChunkStep& step = chains[c]->steps[next[c]];
        const int stream = step.communication ? 1 : 0;
        const Time end = best_start + step.time;
        stream_free[stream] = end;
        ready[c] = end;
        result.steps.push_back({best, next[c], best_start, end});
        ++next[c];
        if (step.time > Time::zero()) {
            busy[stream].push_back({best_start, end});
            if (step.communication && is_expert(step.comm)) expert_busy.push_back({best_start, end});
        }
        (step.communication ? result.communication : result.compute) += step.time;
        if (step.communication && is_expert(step.comm)) result.expert_communication += step.time;
        result.span = std::max(result.span, end);
    }
    result.hidden_communication = overlap_length(busy[1], busy[0]);
    result.hidden_expert_communication = overlap_length(expert_busy, busy[0]);
    return result;
}

}  // namespace clustersim
