// Builders of the published pipeline schedules, and the completeness check every schedule passes.
#include "sim/pipeline/pipeline_schedule.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <deque>
#include <stdexcept>

namespace clustersim {

const char* to_string(ScheduleKind kind) {
    switch (kind) {
        case ScheduleKind::gpipe:
            return "gpipe";
        case ScheduleKind::one_f_one_b:
            return "1f1b";
        case ScheduleKind::interleaved_1f1b:
            return "interleaved-1f1b";
        case ScheduleKind::zb1p:
            return "zb1p";
        case ScheduleKind::dualpipe:
            return "dualpipe";
        case ScheduleKind::dualpipev:
            return "dualpipev";
    }
    return "?";
}

std::optional<ScheduleKind> parse_schedule_kind(std::string_view name) {
    for (const auto kind : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved_1f1b,
                            ScheduleKind::zb1p, ScheduleKind::dualpipe, ScheduleKind::dualpipev}) {
        if (name == to_string(kind)) return kind;
    }
    return std::nullopt;
}

const char* to_string(WorkKind kind) {
    switch (kind) {
        case WorkKind::forward:
            return "F";
        case WorkKind::backward:
            return "BW";
        case WorkKind::backward_input:
            return "B";
        case WorkKind::backward_weight:
            return "W";
    }
    return "?";
}

std::string to_string(const Instruction& instruction) {
    std::string out;
    for (const WorkItem& item : instruction.items) {
        if (!out.empty()) out += '+';
        out += fmt::format("{}{}@s{}", to_string(item.kind), item.micro_batch, item.stage);
    }
    return out;
}

namespace {

Instruction single(WorkKind kind, int micro_batch, int stage) {
    return Instruction{{WorkItem{kind, micro_batch, stage}}};
}

// The skeleton shared by every kind: tables sized, one route for all micro-batches unless changed.
PipelineSchedule empty_schedule(ScheduleKind kind, int ranks, int micro_batches, int virtual_stages, int stages) {
    PipelineSchedule s{kind, ranks, micro_batches, virtual_stages, stages, {}, {}, {}, {}, {}};
    s.stage_rank.resize(static_cast<std::size_t>(stages));
    s.stage_part.resize(static_cast<std::size_t>(stages));
    for (int i = 0; i < stages; ++i) s.stage_part[static_cast<std::size_t>(i)] = i;
    s.direction.assign(static_cast<std::size_t>(micro_batches), 0);
    std::vector<int> all(static_cast<std::size_t>(stages));
    for (int i = 0; i < stages; ++i) all[static_cast<std::size_t>(i)] = i;
    s.route.assign(static_cast<std::size_t>(micro_batches), all);
    s.rank_instructions.resize(static_cast<std::size_t>(ranks));
    return s;
}

// GPipe (Huang et al. 2019): all forwards, then all full backwards, micro-batches in order on
// every rank (as torch.distributed.pipelining's ScheduleGPipe issues them).
void build_gpipe(PipelineSchedule& s) {
    for (int r = 0; r < s.ranks; ++r) {
        auto& out = s.rank_instructions[static_cast<std::size_t>(r)];
        for (int m = 0; m < s.micro_batches; ++m) out.push_back(single(WorkKind::forward, m, r));
        for (int m = 0; m < s.micro_batches; ++m) out.push_back(single(WorkKind::backward, m, r));
    }
}

// 1F1B as Megatron-LM's forward_backward_pipelining_without_interleaving issues it: rank r warms
// up with min(R-r-1, m) forwards, then alternates one forward and one full backward, then cools
// down with the remaining backwards.
void build_one_f_one_b(PipelineSchedule& s) {
    for (int r = 0; r < s.ranks; ++r) {
        auto& out = s.rank_instructions[static_cast<std::size_t>(r)];
        const int warmup = std::min(s.ranks - r - 1, s.micro_batches);
        const int steady = s.micro_batches - warmup;
        for (int m = 0; m < warmup; ++m) out.push_back(single(WorkKind::forward, m, r));
        for (int i = 0; i < steady; ++i) {
            out.push_back(single(WorkKind::forward, warmup + i, r));
            out.push_back(single(WorkKind::backward, i, r));
        }
        for (int m = steady; m < s.micro_batches; ++m) out.push_back(single(WorkKind::backward, m, r));
    }
}

// ZB1P is ZB-H1 of Qi et al., "Zero Bubble Pipeline Parallelism" (ICLR 2024, arXiv 2401.10241),
// section 3.1 and figure 3 (top): 1F1B's order with the backward split into B and W, and the W
// passes of rank r held back by r positions, so that every rank has R micro-batches in flight
// (forward started, W not done), as rank 0 has in 1F1B. The held-back W passes fill the tail
// bubble of the later ranks, and their B passes reach the earlier ranks sooner.
void build_zb1p(PipelineSchedule& s) {
    for (int r = 0; r < s.ranks; ++r) {
        auto& out = s.rank_instructions[static_cast<std::size_t>(r)];
        const int warmup = std::min(s.ranks - r - 1, s.micro_batches);
        const int steady = s.micro_batches - warmup;
        std::deque<int> pending_w;
        const auto backward = [&](int m) {
            out.push_back(single(WorkKind::backward_input, m, r));
            pending_w.push_back(m);
            if (static_cast<int>(pending_w.size()) > r) {
                out.push_back(single(WorkKind::backward_weight, pending_w.front(), r));
                pending_w.pop_front();
            }
        };
        for (int m = 0; m < warmup; ++m) out.push_back(single(WorkKind::forward, m, r));
        for (int i = 0; i < steady; ++i) {
            out.push_back(single(WorkKind::forward, warmup + i, r));
            backward(i);
        }
        for (int m = steady; m < s.micro_batches; ++m) backward(m);
        for (const int m : pending_w) out.push_back(single(WorkKind::backward_weight, m, r));
    }
}

// Interleaved 1F1B (Narayanan et al., SC'21, section 2.2), in the order of Megatron-LM's
// forward_backward_pipelining_with_interleaving: the k-th virtual micro-batch of rank r runs model
// chunk (k mod R*v) / R (backwards in reverse chunk order) on micro-batch (k / (R*v))*R + k mod R;
// rank r warms up with (R-r-1)*2 + (v-1)*R forwards (all of them when m == R), then alternates.
void build_interleaved(PipelineSchedule& s) {
    const int R = s.ranks;
    const int v = s.virtual_stages;
    const int total = s.micro_batches * v;
    for (int g = 0; g < s.stages(); ++g) s.stage_rank[static_cast<std::size_t>(g)] = g % R;
    const auto item = [&](WorkKind kind, int k, int r) {
        const int chunk_in_group = (k % (R * v)) / R;
        const int chunk = kind == WorkKind::forward ? chunk_in_group : v - 1 - chunk_in_group;
        const int micro_batch = (k / (R * v)) * R + k % R;
        return single(kind, micro_batch, chunk * R + r);
    };
    for (int r = 0; r < R; ++r) {
        auto& out = s.rank_instructions[static_cast<std::size_t>(r)];
        const int warmup = s.micro_batches == R ? total : std::min((R - r - 1) * 2 + (v - 1) * R, total);
        const int steady = total - warmup;
        for (int k = 0; k < warmup; ++k) out.push_back(item(WorkKind::forward, k, r));
        for (int k = 0; k < steady; ++k) {
            out.push_back(item(WorkKind::forward, warmup + k, r));
            out.push_back(item(WorkKind::backward, k, r));
        }
        for (int k = steady; k < total; ++k) out.push_back(item(WorkKind::backward, k, r));
    }
}

// The per-rank order of deepseek-ai/DualPipe's step() (dualpipe/dualpipe.py and
// dualpipe/dualpipev.py, which share it). A rank works on two "phases" (its two chunks); `f`, `b`
// and `w` issue the next forward, backward and deferred weight pass of a phase, the way the
// reference's per-phase chunk counters and its FIFO WeightGradStore do.
class DualPipeRankOrder {
public:
    // stage[phase]: the rank's global stage of each phase; first_micro_batch[phase]: the id of the
    // phase's micro-batch 0 (DualPipe's reverse direction numbers its micro-batches from N/2).
    DualPipeRankOrder(std::vector<Instruction>& out, std::array<int, 2> stage, std::array<int, 2> first_micro_batch)
        : out_(out), stage_(stage), first_(first_micro_batch) {}

    WorkItem forward(int phase) {
        return {WorkKind::forward, first_[idx(phase)] + f_[idx(phase)]++, stage_[idx(phase)]};
    }
    // A backward pass; with zero_bubble (the reference's enable_zb) only B runs now and its W is queued.
    WorkItem backward(int phase, bool zero_bubble) {
        const WorkItem item{zero_bubble ? WorkKind::backward_input : WorkKind::backward,
                            first_[idx(phase)] + b_[idx(phase)]++, stage_[idx(phase)]};
        if (zero_bubble) deferred_w_.push_back({WorkKind::backward_weight, item.micro_batch, item.stage});
        return item;
    }

    void f(int phase) { out_.push_back(Instruction{{forward(phase)}}); }
    void b(int phase, bool zero_bubble = false) { out_.push_back(Instruction{{backward(phase, zero_bubble)}}); }
    // The reference's _weight_chunk: pops the oldest deferred W.
    void w() {
        out_.push_back(Instruction{{deferred_w_.front()}});
        deferred_w_.pop_front();
    }
    // The reference's _forward_backward_chunk(phase0, phase1): an overlapped pair, full backward.
    void pair(int forward_phase, int backward_phase) {
        const WorkItem fwd = forward(forward_phase);
        out_.push_back(Instruction{{fwd, backward(backward_phase, false)}});
    }

    // The eight steps. n: ranks of a half (DualPipe: R/2, DualPipeV: R); k: the rank's position in
    // it (DualPipe: min(r, R-1-r), DualPipeV: r); chunks: micro-batches per phase (DualPipe: N/2,
    // DualPipeV: N); split_first_pair: the rank whose first step-4 pair runs as F then B, "to further
    // reduce bubble size" (DualPipe: the two middle ranks, DualPipeV: the last rank).
    void issue(int n, int k, int chunks, bool split_first_pair) {
        for (int i = 0; i < (n - k - 1) * 2; ++i) f(0);  // step 1: nF0
        for (int i = 0; i < k + 1; ++i) {                // step 2: nF0F1
            f(0);
            f(1);
        }
        for (int i = 0; i < n - k - 1; ++i) {  // step 3: nB1W1F1, zero bubble
            b(1, true);
            w();
            f(1);
        }
        for (int i = 0; i < chunks - 2 * n + k + 1; ++i) {  // step 4 (main): nF0B1F1B0
            if (i == 0 && split_first_pair) {
                f(0);
                b(1);
            } else {
                pair(0, 1);
            }
            pair(1, 0);
        }
        for (int i = 0; i < n - k - 1; ++i) {  // step 5: nB1F1B0
            b(1);
            pair(1, 0);
        }
        bool zero_bubble = false;  // step 6: nB1B0, the second half of them zero bubble
        for (int i = 0; i < k + 1; ++i) {
            if (i == (k + 1) / 2 && k % 2 == 1) zero_bubble = true;
            b(1, zero_bubble);
            if (i == (k + 1) / 2 && k % 2 == 0) zero_bubble = true;
            b(0, zero_bubble);
        }
        for (int i = 0; i < n - k - 1; ++i) {  // step 7: nWB0, zero bubble
            w();
            b(0, true);
        }
        for (int i = 0; i < k + 1; ++i) w();  // step 8: nW
    }

private:
    static std::size_t idx(int phase) { return static_cast<std::size_t>(phase); }
    std::vector<Instruction>& out_;
    std::array<int, 2> stage_;
    std::array<int, 2> first_;
    std::array<int, 2> f_{0, 0};
    std::array<int, 2> b_{0, 0};
    std::deque<WorkItem> deferred_w_;
};

// DualPipe (DeepSeek-V3 technical report, section 3.2.1; deepseek-ai/DualPipe dualpipe.py):
// micro-batches enter from both ends. On the first half of the ranks phase 0 is the forward
// direction, on the second half it is the reverse direction.
void build_dualpipe(PipelineSchedule& s) {
    const int R = s.ranks;
    const int half_chunks = s.micro_batches / 2;
    for (int p = 0; p < R; ++p) {
        s.stage_rank[static_cast<std::size_t>(p)] = p;
        s.stage_part[static_cast<std::size_t>(p)] = p;
        s.stage_rank[static_cast<std::size_t>(R + p)] = R - 1 - p;
        s.stage_part[static_cast<std::size_t>(R + p)] = p;
    }
    for (int m = half_chunks; m < s.micro_batches; ++m) {
        auto& route = s.route[static_cast<std::size_t>(m)];
        for (int p = 0; p < R; ++p) route[static_cast<std::size_t>(p)] = R + p;
        route.resize(static_cast<std::size_t>(R));
        s.direction[static_cast<std::size_t>(m)] = 1;
    }
    for (int m = 0; m < half_chunks; ++m) s.route[static_cast<std::size_t>(m)].resize(static_cast<std::size_t>(R));
    for (int r = 0; r < R; ++r) {
        const bool second_half = r >= R / 2;
        // Global stage and first micro-batch id of each direction on this rank.
        const std::array<int, 2> stage_of_direction{r, R + (R - 1 - r)};
        const std::array<int, 2> first_of_direction{0, half_chunks};
        const auto d = [&](int phase) { return static_cast<std::size_t>(phase ^ static_cast<int>(second_half)); };
        DualPipeRankOrder order(s.rank_instructions[static_cast<std::size_t>(r)],
                                {stage_of_direction[d(0)], stage_of_direction[d(1)]},
                                {first_of_direction[d(0)], first_of_direction[d(1)]});
        const bool middle = r == R / 2 - 1 || r == R / 2;
        order.issue(R / 2, std::min(r, R - 1 - r), half_chunks, middle);
    }
}

// DualPipeV (deepseek-ai/DualPipe dualpipev.py; the "cut-in-half" of DualPipe by Sea AI Lab,
// hackmd.io/@ufotalent/r1lVXsa9Jg): 2R parts on R ranks in a V, rank r holding parts r and 2R-1-r;
// every micro-batch goes down the V and back.
void build_dualpipev(PipelineSchedule& s) {
    const int R = s.ranks;
    for (int p = 0; p < 2 * R; ++p) s.stage_rank[static_cast<std::size_t>(p)] = p < R ? p : 2 * R - 1 - p;
    for (int r = 0; r < R; ++r) {
        DualPipeRankOrder order(s.rank_instructions[static_cast<std::size_t>(r)], {r, 2 * R - 1 - r}, {0, 0});
        order.issue(R, r, s.micro_batches, r == R - 1);
    }
}

[[noreturn]] void refuse(ScheduleKind kind, int ranks, int micro_batches, int virtual_stages, std::string_view why) {
    throw std::invalid_argument(
        fmt::format("pipeline schedule {} with {} ranks, {} micro-batches and {} virtual "
                    "stages is impossible: {}",
                    to_string(kind), ranks, micro_batches, virtual_stages, why));
}

}  // namespace

int schedule_parts(ScheduleKind kind, int ranks, int virtual_stages) {
    switch (kind) {
        case ScheduleKind::interleaved_1f1b: return ranks * virtual_stages;
        case ScheduleKind::dualpipev: return 2 * ranks;
        default: return ranks;  // DualPipe holds each part twice, once per direction
    }
}

PipelineSchedule make_pipeline_schedule(ScheduleKind kind, int ranks, int micro_batches, int virtual_stages) {
    const auto no = [&](std::string_view why) { refuse(kind, ranks, micro_batches, virtual_stages, why); };
    if (ranks < 1) no("ranks must be at least 1");
    if (micro_batches < 1) no("micro-batches must be at least 1");
    if (kind == ScheduleKind::interleaved_1f1b) {
        if (virtual_stages < 2) no("interleaved-1f1b needs at least 2 virtual stages per rank (with 1 use 1f1b)");
        if (micro_batches % ranks != 0) no("interleaved-1f1b needs micro-batches divisible by ranks (Megatron-LM)");
    } else if (virtual_stages != 1) {
        no("virtual stages other than 1 are for interleaved-1f1b only");
    }
    if (kind == ScheduleKind::dualpipe) {
        if (ranks % 2 != 0) no("DualPipe needs an even number of ranks");
        if (micro_batches % 2 != 0) no("DualPipe needs an even number of micro-batches (half go each way)");
        if (micro_batches < 2 * ranks) no("DualPipe needs at least twice as many micro-batches as ranks");
    }
    if (kind == ScheduleKind::dualpipev && micro_batches < 2 * ranks) {
        no("DualPipeV needs at least twice as many micro-batches as ranks");
    }

    switch (kind) {
        case ScheduleKind::gpipe: {
            PipelineSchedule s = empty_schedule(kind, ranks, micro_batches, 1, ranks);
            s.stage_rank = s.stage_part;
            build_gpipe(s);
            return s;
        }
        case ScheduleKind::one_f_one_b: {
            PipelineSchedule s = empty_schedule(kind, ranks, micro_batches, 1, ranks);
            s.stage_rank = s.stage_part;
            build_one_f_one_b(s);
            return s;
        }
        case ScheduleKind::zb1p: {
            PipelineSchedule s = empty_schedule(kind, ranks, micro_batches, 1, ranks);
            s.stage_rank = s.stage_part;
            build_zb1p(s);
            return s;
        }
        case ScheduleKind::interleaved_1f1b: {
            PipelineSchedule s = empty_schedule(kind, ranks, micro_batches, virtual_stages, ranks * virtual_stages);
            build_interleaved(s);
            return s;
        }
        case ScheduleKind::dualpipe: {
            PipelineSchedule s = empty_schedule(kind, ranks, micro_batches, 2, 2 * ranks);
            s.parts = schedule_parts(kind, ranks);
            build_dualpipe(s);
            return s;
        }
        case ScheduleKind::dualpipev: {
            PipelineSchedule s = empty_schedule(kind, ranks, micro_batches, 2, 2 * ranks);
            build_dualpipev(s);
            return s;
        }
    }
    refuse(kind, ranks, micro_batches, virtual_stages, "unknown schedule kind");
}

void validate_pipeline_schedule(const PipelineSchedule& s) {
    const auto bad = [&](const std::string& why) {
        throw std::invalid_argument(fmt::format("invalid {} pipeline schedule: {}", to_string(s.kind), why));
    };
    const auto n_ranks = static_cast<std::size_t>(s.ranks);
    const auto n_mb = static_cast<std::size_t>(s.micro_batches);
    if (s.ranks < 1 || s.micro_batches < 1) bad("ranks and micro-batches must be at least 1");
    if (s.rank_instructions.size() != n_ranks) bad("rank_instructions must have one list per rank");
    if (s.route.size() != n_mb || s.direction.size() != n_mb) bad("route and direction need one entry per micro-batch");
    if (s.stage_part.size() != s.stage_rank.size()) bad("stage_rank and stage_part differ in length");
    const int S = s.stages();
    for (int g = 0; g < S; ++g) {
        const int r = s.stage_rank[static_cast<std::size_t>(g)];
        if (r < 0 || r >= s.ranks) bad(fmt::format("stage {} is on rank {}, which does not exist", g, r));
    }
    // Which (micro-batch, stage) pairs are on a route.
    const auto at = [S](int m, int g) {
        return static_cast<std::size_t>(m) * static_cast<std::size_t>(S) + static_cast<std::size_t>(g);
    };
    std::vector<char> on_route(n_mb * static_cast<std::size_t>(S), 0);
    for (int m = 0; m < s.micro_batches; ++m) {
        for (const int g : s.route[static_cast<std::size_t>(m)]) {
            if (g < 0 || g >= S) bad(fmt::format("micro-batch {} routes through stage {}, which does not exist", m, g));
            if (on_route[at(m, g)]) bad(fmt::format("micro-batch {} passes stage {} twice", m, g));
            on_route[at(m, g)] = 1;
        }
    }
    std::array<std::vector<int>, 4> count;  // per WorkKind: how often each (micro-batch, stage) appears
    for (auto& c : count) c.assign(on_route.size(), 0);
    for (int r = 0; r < s.ranks; ++r) {
        for (const Instruction& ins : s.rank_instructions[static_cast<std::size_t>(r)]) {
            if (ins.items.empty() || ins.items.size() > 2) {
                bad(fmt::format("rank {} has an instruction with {} items (1 or 2 allowed)", r, ins.items.size()));
            }
            for (const WorkItem& it : ins.items) {
                if (it.micro_batch < 0 || it.micro_batch >= s.micro_batches || it.stage < 0 || it.stage >= S ||
                    !on_route[at(it.micro_batch, it.stage)]) {
                    bad(fmt::format("rank {}: {} is not on any micro-batch's route", r, to_string(ins)));
                }
                if (s.stage_rank[static_cast<std::size_t>(it.stage)] != r) {
                    bad(fmt::format("rank {}: {} belongs to rank {}", r, to_string(ins),
                                    s.stage_rank[static_cast<std::size_t>(it.stage)]));
                }
                ++count[static_cast<std::size_t>(it.kind)][at(it.micro_batch, it.stage)];
            }
        }
    }
    for (int m = 0; m < s.micro_batches; ++m) {
        for (const int g : s.route[static_cast<std::size_t>(m)]) {
            const std::size_t i = at(m, g);
            const int f = count[static_cast<std::size_t>(WorkKind::forward)][i];
            const int full = count[static_cast<std::size_t>(WorkKind::backward)][i];
            const int b = count[static_cast<std::size_t>(WorkKind::backward_input)][i];
            const int w = count[static_cast<std::size_t>(WorkKind::backward_weight)][i];
            if (f != 1) bad(fmt::format("micro-batch {} at stage {} has {} forwards (1 expected)", m, g, f));
            if (!((full == 1 && b == 0 && w == 0) || (full == 0 && b == 1 && w == 1))) {
                bad(
                    fmt::format("micro-batch {} at stage {} has {} full backwards, {} B and {} W (expected one full "
                                "backward, or one B and one W)",
                                m, g, full, b, w));
            }
        }
    }
}

}  // namespace clustersim
