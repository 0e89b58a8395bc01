// Tests of the pipeline executor: the published bubble and activation figures (validation rows
// X1a-X1c), the documented deviation when B - W != F, transfers and rendezvous, and deadlock
// detection.
//
// Times are in chunk-time units (1 unit = 1 ps here): F forward, B full backward, W its weight
// part (so the input part alone is B - W), F&B an overlapped forward-backward pair; transfers take
// no time unless a test says so. The DualPipe README's table is for F = 1, B = 2, W = 1, F&B = 3
// in row X1a.
//
// How "bubble" must be measured to reproduce the table: per rank, makespan minus the sum of that
// rank's instruction durations (PipelineRun::bubble), and the table's figure is the LARGEST of these
// over the ranks. For 1F1B, ZB1P and for DualPipe with F&B = F + B every rank has the same bubble;
// with F&B < F + B the DualPipe ranks near the middle overlap more pairs (rank r of the first half
// has min(r, PP/2-2) more than rank 0; the middle rank splits one), are less busy, and the bubble of
// ranks PP/2-2 and PP/2-1 (and their mirrors) is the table's, the outer ranks' smaller.
#include "sim/pipeline/pipeline_executor.hpp"
#include "sim/pipeline/pipeline_schedule.hpp"
#include "tests/pipeline/pipeline_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <tuple>
#include <vector>

using namespace clustersim;
using Catch::Matchers::Contains;
using clustersim::test::FixedPipelineEnvironment;
using clustersim::test::run_fixed;

namespace {

std::vector<std::int64_t> bubbles(const PipelineRun& run) {
    std::vector<std::int64_t> out;
    for (const Time t : run.bubble) out.push_back(t.ps());
    return out;
}

std::int64_t max_bubble(const PipelineRun& run) {
    return std::ranges::max(bubbles(run));
}

std::vector<std::int64_t> all(std::size_t n, std::int64_t value) {
    return std::vector<std::int64_t>(n, value);
}

// The DualPipe README table: (PP/2 - 1)(F&B + B - 3W).
std::int64_t dualpipe_table(int pp, int f_and_b, int b, int w) {
    return (pp / 2 - 1) * (f_and_b + b - 3 * w);
}

}  // namespace

TEST_CASE("DualPipe's bubble equals the README table exactly (X1a)") {
    // F=1, B=2, W=1, F&B=3: (PP/2-1)(F&B+B-3W) = 2, 6, 14 for PP 4, 8, 16, for any N >= 2 PP.
    const std::vector<std::pair<int, std::int64_t>> published{{4, 2}, {8, 6}, {16, 14}};
    for (const auto& [pp, bubble] : published) {
        REQUIRE(dualpipe_table(pp, 3, 2, 1) == bubble);
        for (const int n : {2 * pp, 2 * pp + 2, 4 * pp, 6 * pp + 2}) {
            INFO("PP " << pp << " micro-batches " << n);
            const PipelineRun run = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipe, pp, n), 1, 2, 1, 3);
            CHECK(bubbles(run) == all(static_cast<std::size_t>(pp), bubble));  // F&B = F + B: all ranks alike
            // Every rank computes N forwards and N full backwards' worth: busy = N (F + B).
            CHECK(run.busy.front() == Time::from_ps(3 * n));
        }
    }
}

TEST_CASE("with real F&B overlap the table is the bubble of DualPipe's middle ranks") {
    // F=2, B=4, W=2 (B - W = F, DeepSeek's assumption) and F&B = 5 < F + B.
    for (const int pp : {4, 8, 16}) {
        INFO("PP " << pp);
        const PipelineRun run = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipe, pp, 3 * pp), 2, 4, 2, 5);
        CHECK(max_bubble(run) == dualpipe_table(pp, 5, 4, 2));  // 3, 9, 21
        CHECK(run.bubble[static_cast<std::size_t>(pp / 2)].ps() == dualpipe_table(pp, 5, 4, 2));
        // Rank r (r < PP/2) overlaps min(r, PP/2-2) more pairs than rank 0, each saving F + B - F&B = 1
        // (the middle rank PP/2-1 would have PP/2-1 more, but runs its first step-4 pair split).
        for (int r = 0; r < pp / 2; ++r) {
            CHECK(run.bubble[static_cast<std::size_t>(r)].ps() ==
                  dualpipe_table(pp, 5, 4, 2) - std::max(0, pp / 2 - 2 - r));
        }
    }
}

TEST_CASE("1F1B, ZB1P and GPipe bubbles equal the published formulas (X1b)") {
    for (const int pp : {4, 8, 16}) {
        for (const int m : {pp, 2 * pp, 3 * pp + 1}) {
            INFO("PP " << pp << " micro-batches " << m);
            const auto n = static_cast<std::size_t>(pp);
            // (PP-1)(F+B) with F=1, B=2.
            CHECK(bubbles(run_fixed(make_pipeline_schedule(ScheduleKind::one_f_one_b, pp, m), 1, 2, 1, 3)) ==
                  all(n, (pp - 1) * 3));
            CHECK(bubbles(run_fixed(make_pipeline_schedule(ScheduleKind::gpipe, pp, m), 1, 2, 1, 3)) ==
                  all(n, (pp - 1) * 3));
            // (PP-1)(F+B-2W) with F=1, B=2, W=1: a third of 1F1B's.
            CHECK(bubbles(run_fixed(make_pipeline_schedule(ScheduleKind::zb1p, pp, m), 1, 2, 1, 3)) == all(n, pp - 1));
        }
    }
    // The first DualPipe README had 1F1B as (PP-1)(F+W); with B != W only (PP-1)(F+B) holds.
    const PipelineRun run = run_fixed(make_pipeline_schedule(ScheduleKind::one_f_one_b, 8, 16), 2, 5, 1, 7);
    CHECK(max_bubble(run) == 7 * (2 + 5));
    // ZB1P with unequal passes: F=2, B=5, W=2 gives (PP-1)(F+B-2W) = 7 * 3.
    CHECK(max_bubble(run_fixed(make_pipeline_schedule(ScheduleKind::zb1p, 8, 16), 2, 5, 2, 7)) == 7 * 3);
}

TEST_CASE("interleaved 1F1B cuts the 1F1B bubble by the number of virtual stages") {
    // Chunk times F=1, B=2, so a whole stage takes F = v, B = 2v: (PP-1)(F+B)/v = 3 (PP-1).
    for (const int pp : {2, 4, 8}) {
        for (const int v : {2, 3, 4}) {
            for (const int m : {pp, 2 * pp, 4 * pp}) {
                INFO("PP " << pp << " v " << v << " micro-batches " << m);
                const auto s = make_pipeline_schedule(ScheduleKind::interleaved_1f1b, pp, m, v);
                CHECK(bubbles(run_fixed(s, 1, 2, 1, 3)) == all(static_cast<std::size_t>(pp), 3 * (pp - 1)));
            }
        }
    }
}

TEST_CASE("peak activations per device match the README table (X1c)") {
    for (const int pp : {4, 8, 16}) {
        INFO("PP " << pp);
        const auto n = static_cast<std::size_t>(pp);
        // DualPipe: PP + 1 on every rank (5, 9, 17), counting both directions' stages.
        for (const int m : {2 * pp, 4 * pp}) {
            const PipelineRun run = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipe, pp, m), 1, 2, 1, 3);
            CHECK(run.peak_activations == std::vector<int>(n, pp + 1));
        }
        // 1F1B: PP on the first rank, PP - r on rank r.
        const PipelineRun one = run_fixed(make_pipeline_schedule(ScheduleKind::one_f_one_b, pp, 2 * pp), 1, 2, 1, 3);
        for (int r = 0; r < pp; ++r) CHECK(one.peak_activations[static_cast<std::size_t>(r)] == pp - r);
        // ZB1P: PP on every rank (the W held back keeps the later ranks' activations longer).
        const PipelineRun zb = run_fixed(make_pipeline_schedule(ScheduleKind::zb1p, pp, 2 * pp), 1, 2, 1, 3);
        CHECK(zb.peak_activations == std::vector<int>(n, pp));
    }
    // DualPipeV on R ranks: 2R + 1 (PP + 1 with PP = 2R stages, on half the devices).
    for (const int r : {2, 4, 8}) {
        const PipelineRun run = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipev, r, 4 * r), 1, 2, 1, 3);
        CHECK(run.peak_activations == std::vector<int>(static_cast<std::size_t>(r), 2 * r + 1));
    }
}

TEST_CASE("DualPipeV on R ranks has the bubble of DualPipe with PP = 2R") {
    for (const int r : {2, 4, 8}) {
        INFO("R " << r);
        const auto v = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipev, r, 4 * r), 1, 2, 1, 3);
        CHECK(bubbles(v) == all(static_cast<std::size_t>(r), dualpipe_table(2 * r, 3, 2, 1)));
        // With real overlap, rank r of the V has the bubble of DualPipe's rank r.
        const auto vo = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipev, r, 4 * r), 2, 4, 2, 5);
        const auto d = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipe, 2 * r, 4 * r), 2, 4, 2, 5);
        for (int k = 0; k < r; ++k)
            CHECK(vo.bubble[static_cast<std::size_t>(k)] == d.bubble[static_cast<std::size_t>(k)]);
    }
}

TEST_CASE("the DualPipe table is exact only when B - W = F (validation note on X1)") {
    // The table counts the cells of DeepSeek's figure, where a B-for-input cell and a forward cell
    // have the same width (B = 2F = 2W). What the executor gives otherwise, for N = 3 PP:
    SECTION("B - W > F: the table overstates, here by one excess chunk (B - W - F = 1) at every PP") {
        // F=1, B=3, W=1, F&B=4: table (PP/2-1)(4+3-3) = 4, 12, 28.
        const std::vector<std::pair<int, std::int64_t>> expected{{4, 3}, {8, 11}, {16, 27}};
        for (const auto& [pp, bubble] : expected) {
            INFO("PP " << pp);
            const auto run = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipe, pp, 3 * pp), 1, 3, 1, 4);
            CHECK(dualpipe_table(pp, 4, 3, 1) - max_bubble(run) == 1);
            CHECK(max_bubble(run) == bubble);
        }
    }
    SECTION("B - W < F: the table understates, here by (PP/2-1)(F - (B - W)), growing with PP") {
        // F=3, B=4, W=2, F&B=7: table (PP/2-1)(7+4-6) = 5, 15, 35.
        const std::vector<std::pair<int, std::int64_t>> expected{{4, 6}, {8, 18}, {16, 42}};
        for (const auto& [pp, bubble] : expected) {
            INFO("PP " << pp);
            const auto run = run_fixed(make_pipeline_schedule(ScheduleKind::dualpipe, pp, 3 * pp), 3, 4, 2, 7);
            CHECK(max_bubble(run) - dualpipe_table(pp, 7, 4, 2) == (pp / 2 - 1) * (3 - (4 - 2)));
            CHECK(max_bubble(run) == bubble);
        }
    }
}

TEST_CASE("the run reports a consistent timeline, busy time and bubble") {
    Simulator sim;
    sim.run_until(Time::from_ps(100));  // a clock that is not at zero
    FixedPipelineEnvironment env(1, 2, 1, 3);
    const auto s = make_pipeline_schedule(ScheduleKind::dualpipe, 4, 8);
    const PipelineRun run = run_pipeline(sim, s, env);
    CHECK(run.start == Time::from_ps(100));
    CHECK(run.makespan == Time::from_ps(26));
    CHECK(std::ranges::is_sorted(run.timeline, [](const auto& a, const auto& b) {
        return std::tie(a.rank, a.start) < std::tie(b.rank, b.start);
    }));
    for (int r = 0; r < s.ranks; ++r) {
        const auto i = static_cast<std::size_t>(r);
        CHECK(run.busy[i] + run.bubble[i] == run.makespan);
    }
    CHECK(run.timeline.front().start == Time::from_ps(100));
}

TEST_CASE("transfers go between ranks only, and their latency delays the consumer") {
    SECTION("one micro-batch through two ranks: F, activation, F, B, gradient, B") {
        Simulator sim;
        FixedPipelineEnvironment env(1, 2, 1, 3, 5);
        const PipelineRun run = run_pipeline(sim, make_pipeline_schedule(ScheduleKind::gpipe, 2, 1), env);
        CHECK(run.makespan == Time::from_ps(1 + 5 + 1 + 2 + 5 + 2));
        REQUIRE(env.transfers.size() == 2);
        CHECK(env.transfers[0].from_rank == 0);
        CHECK(env.transfers[0].to_rank == 1);
        CHECK_FALSE(env.transfers[0].gradient);
        CHECK(env.transfers[1].from_stage == 1);
        CHECK(env.transfers[1].to_stage == 0);
        CHECK(env.transfers[1].gradient);
    }
    SECTION("DualPipeV's bottom rank hands its own activations and gradients over without transfers") {
        Simulator sim;
        FixedPipelineEnvironment env(1, 2, 1, 3);
        run_pipeline(sim, make_pipeline_schedule(ScheduleKind::dualpipev, 2, 4), env);
        // Per micro-batch the hops 0->1 and 2->3 cross ranks, 1->2 does not: 2 activations, 2 gradients.
        CHECK(env.transfers.size() == 4 * 4);
        for (const P2pTransfer& t : env.transfers) CHECK(t.from_rank != t.to_rank);
    }
}

TEST_CASE("a receiver-ready rendezvous starts a transfer only once the receiver reaches its consumer") {
    // 1F1B on 2 ranks, 2 micro-batches, F=1, B=2, latency 5.
    const auto s = make_pipeline_schedule(ScheduleKind::one_f_one_b, 2, 2);
    SECTION("eager: the activation of micro-batch 1 travels while rank 1 runs B0") {
        Simulator sim;
        FixedPipelineEnvironment env(1, 2, 1, 3, 5);
        CHECK(run_pipeline(sim, s, env).makespan == Time::from_ps(19));
    }
    SECTION("receiver-ready: it leaves only when rank 1 reaches F1, and the last gradient likewise") {
        Simulator sim;
        FixedPipelineEnvironment env(1, 2, 1, 3, 5);
        CHECK(run_pipeline(sim, s, env, {P2pRendezvous::receiver_ready}).makespan == Time::from_ps(24));
    }
    SECTION("with zero latency both give the same run") {
        const auto d = make_pipeline_schedule(ScheduleKind::dualpipe, 8, 20);
        CHECK(run_fixed(d, 1, 2, 1, 3, {P2pRendezvous::receiver_ready}).makespan == run_fixed(d, 1, 2, 1, 3).makespan);
    }
}

TEST_CASE("a deadlocked schedule is reported, never hangs") {
    SECTION("a backward issued before its own forward") {
        PipelineSchedule s = make_pipeline_schedule(ScheduleKind::one_f_one_b, 2, 2);
        std::swap(s.rank_instructions[0][0], s.rank_instructions[0][2]);  // rank 0: BW0 F1 F0 BW1
        CHECK_THROWS_AS(run_fixed(s, 1, 2, 1, 3), std::logic_error);
        CHECK_THROWS_WITH(run_fixed(s, 1, 2, 1, 3),
                          Contains("pipeline deadlock in the 1f1b schedule") &&
                              Contains("rank 0 is stuck at instruction 0 of 4 (BW0@s0) waiting for its own forward") &&
                              Contains("rank 1 is stuck at instruction 0 of 4 (F0@s1) waiting for the activation"));
    }
    SECTION("two ranks each waiting for the other") {
        PipelineSchedule s = make_pipeline_schedule(ScheduleKind::one_f_one_b, 2, 2);
        // Rank 1 wants micro-batch 1 first, rank 0 wants micro-batch 0's gradient before sending micro-batch 1.
        s.rank_instructions[0] = {Instruction{{{WorkKind::forward, 0, 0}}}, Instruction{{{WorkKind::backward, 0, 0}}},
                                  Instruction{{{WorkKind::forward, 1, 0}}}, Instruction{{{WorkKind::backward, 1, 0}}}};
        s.rank_instructions[1] = {Instruction{{{WorkKind::forward, 1, 1}}}, Instruction{{{WorkKind::backward, 1, 1}}},
                                  Instruction{{{WorkKind::forward, 0, 1}}}, Instruction{{{WorkKind::backward, 0, 1}}}};
        CHECK_THROWS_WITH(run_fixed(s, 1, 2, 1, 3),
                          Contains("rank 0 is stuck at instruction 1 of 4 (BW0@s0) waiting for the gradient of "
                                   "micro-batch 0 from stage 1 on rank 1") &&
                              Contains("rank 1 is stuck at instruction 0 of 4 (F1@s1)"));
    }
    SECTION("a transfer the environment never delivers") {
        class LosingEnvironment : public FixedPipelineEnvironment {
        public:
            LosingEnvironment() : FixedPipelineEnvironment(1, 2, 1, 3) {}
            void transfer(Simulator&, const P2pTransfer&, std::function<void()>) override {}
        };
        Simulator sim;
        LosingEnvironment env;
        CHECK_THROWS_WITH(
            run_pipeline(sim, make_pipeline_schedule(ScheduleKind::gpipe, 2, 1), env),
            Contains("F0@s1) waiting for the activation of micro-batch 0 from stage 0 on rank 0 (in transit)"));
    }
    SECTION("a transfer delivered twice") {
        class TwiceEnvironment : public FixedPipelineEnvironment {
        public:
            TwiceEnvironment() : FixedPipelineEnvironment(1, 2, 1, 3) {}
            void transfer(Simulator&, const P2pTransfer&, std::function<void()> arrived) override {
                arrived();
                arrived();
            }
        };
        Simulator sim;
        TwiceEnvironment env;
        CHECK_THROWS_WITH(run_pipeline(sim, make_pipeline_schedule(ScheduleKind::gpipe, 2, 1), env), Contains("twice"));
    }
}
