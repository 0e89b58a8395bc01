// Tests of the schedule builders: names, refused arguments, stage layout, the published orders, and
// that every schedule on a grid of sizes is complete and runs in a dependency-consistent order.
#include "sim/pipeline/pipeline_schedule.hpp"
#include "sim/pipeline/pipeline_executor.hpp"
#include "tests/pipeline/pipeline_test_support.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <tuple>
#include <vector>

using namespace clustersim;
using Catch::Matchers::Contains;

namespace {

const std::vector<ScheduleKind> kAllKinds{
    ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved_1f1b,
    ScheduleKind::zb1p,  ScheduleKind::dualpipe,    ScheduleKind::dualpipev};

// The rank's instructions as one string, e.g. "F0@s0 F1@s0 F3@s0+BW5@s7".
std::string order(const PipelineSchedule& s, int rank) {
    std::string out;
    for (const Instruction& ins : s.rank_instructions[static_cast<std::size_t>(rank)]) {
        if (!out.empty()) out += ' ';
        out += to_string(ins);
    }
    return out;
}

// An environment whose times differ by rank and kind, to shake out orderings that only work when
// everything takes the same time.
class UnevenEnvironment : public PipelineEnvironment {
public:
    Time duration(int rank, const Instruction& ins) override {
        std::int64_t t = 0;
        for (const WorkItem& it : ins.items) t += 2 + static_cast<int>(it.kind) + (rank * 7 + it.micro_batch) % 3;
        return Time::from_ps(ins.items.size() == 2 ? t - 1 : t);
    }
};

// Every executed item's inputs ended before it started, every item ran exactly once, and each rank
// ran its instructions one at a time in issue order.
void check_dependency_consistent(const PipelineSchedule& s, const PipelineRun& run) {
    std::map<std::tuple<WorkKind, int, int>, std::pair<Time, Time>> span;  // (kind, mb, stage) -> (start, end)
    std::size_t instructions = 0;
    for (const auto& list : s.rank_instructions) instructions += list.size();
    REQUIRE(run.timeline.size() == instructions);
    std::vector<std::size_t> issued(static_cast<std::size_t>(s.ranks), 0);
    Time previous_end = Time::zero();
    int previous_rank = -1;
    for (const ExecutedInstruction& e : run.timeline) {
        const auto r = static_cast<std::size_t>(e.rank);
        REQUIRE(e.instruction == s.rank_instructions[r][issued[r]++]);
        if (e.rank == previous_rank) REQUIRE(e.start >= previous_end);
        previous_rank = e.rank;
        previous_end = e.end;
        for (const WorkItem& it : e.instruction.items) {
            const bool inserted =
                span.emplace(std::tuple{it.kind, it.micro_batch, it.stage}, std::pair{e.start, e.end}).second;
            REQUIRE(inserted);
        }
    }
    const auto end_of = [&](WorkKind kind, int m, int g) {
        const auto found = span.find({kind, m, g});
        return found == span.end() ? Time::max() : found->second.second;
    };
    const auto backward_end = [&](int m, int g) {
        return std::min(end_of(WorkKind::backward, m, g), end_of(WorkKind::backward_input, m, g));
    };
    for (int m = 0; m < s.micro_batches; ++m) {
        const auto& route = s.route[static_cast<std::size_t>(m)];
        for (std::size_t k = 0; k < route.size(); ++k) {
            const int g = route[k];
            const Time f_start = span.at({WorkKind::forward, m, g}).first;
            if (k > 0) REQUIRE(end_of(WorkKind::forward, m, route[k - 1]) <= f_start);
            const bool split = span.count({WorkKind::backward_input, m, g}) == 1;
            const Time b_start = span.at({split ? WorkKind::backward_input : WorkKind::backward, m, g}).first;
            REQUIRE(end_of(WorkKind::forward, m, g) <= b_start);
            if (k + 1 < route.size()) REQUIRE(backward_end(m, route[k + 1]) <= b_start);
            if (split)
                REQUIRE(end_of(WorkKind::backward_input, m, g) <= span.at({WorkKind::backward_weight, m, g}).first);
        }
    }
}

}  // namespace

TEST_CASE("schedule kinds print and parse by their scenario names") {
    for (const ScheduleKind kind : kAllKinds) CHECK(parse_schedule_kind(to_string(kind)) == kind);
    CHECK(std::string(to_string(ScheduleKind::one_f_one_b)) == "1f1b");
    CHECK(std::string(to_string(ScheduleKind::interleaved_1f1b)) == "interleaved-1f1b");
    CHECK_FALSE(parse_schedule_kind("DualPipe").has_value());
    CHECK_FALSE(parse_schedule_kind("1F1B").has_value());
}

TEST_CASE("impossible schedules are refused with the rule they break") {
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::dualpipe, 3, 12), Contains("even number of ranks"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::dualpipe, 4, 9), Contains("even number of micro-batches"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::dualpipe, 4, 6), Contains("at least twice as many"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::dualpipev, 4, 7), Contains("at least twice as many"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::interleaved_1f1b, 4, 6, 2), Contains("divisible by ranks"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::interleaved_1f1b, 4, 8, 1), Contains("at least 2 virtual"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::one_f_one_b, 4, 8, 2), Contains("interleaved-1f1b only"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::gpipe, 0, 8), Contains("ranks must be at least 1"));
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::zb1p, 4, 0), Contains("micro-batches must be at least 1"));
    CHECK_THROWS_AS(make_pipeline_schedule(ScheduleKind::dualpipe, 3, 12), std::invalid_argument);
    // The message names the whole request.
    CHECK_THROWS_WITH(make_pipeline_schedule(ScheduleKind::dualpipe, 4, 6),
                      Contains("dualpipe with 4 ranks, 6 micro-batches"));
}

TEST_CASE("stages are laid out as each schedule places its model parts") {
    SECTION("1f1b: one part per rank") {
        const auto s = make_pipeline_schedule(ScheduleKind::one_f_one_b, 4, 8);
        CHECK(s.parts == 4);
        CHECK(s.virtual_stages == 1);
        CHECK(s.stage_rank == std::vector<int>{0, 1, 2, 3});
        CHECK(s.route[5] == std::vector<int>{0, 1, 2, 3});
    }
    SECTION("interleaved: part g on rank g mod R") {
        const auto s = make_pipeline_schedule(ScheduleKind::interleaved_1f1b, 2, 4, 3);
        CHECK(s.parts == 6);
        CHECK(s.virtual_stages == 3);
        CHECK(s.stage_rank == std::vector<int>{0, 1, 0, 1, 0, 1});
        CHECK(s.route[0] == std::vector<int>{0, 1, 2, 3, 4, 5});
    }
    SECTION("DualPipe: two directions over the same parts, half the micro-batches each") {
        const auto s = make_pipeline_schedule(ScheduleKind::dualpipe, 4, 8);
        CHECK(s.parts == 4);
        CHECK(s.virtual_stages == 2);
        CHECK(s.stage_rank == std::vector<int>{0, 1, 2, 3, 3, 2, 1, 0});
        CHECK(s.stage_part == std::vector<int>{0, 1, 2, 3, 0, 1, 2, 3});
        CHECK(s.route[3] == std::vector<int>{0, 1, 2, 3});
        CHECK(s.route[4] == std::vector<int>{4, 5, 6, 7});
        CHECK(s.direction == std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1});
    }
    SECTION("DualPipeV: 2R parts in a V over R ranks") {
        const auto s = make_pipeline_schedule(ScheduleKind::dualpipev, 3, 6);
        CHECK(s.parts == 6);
        CHECK(s.stage_rank == std::vector<int>{0, 1, 2, 2, 1, 0});
        CHECK(s.stage_part == std::vector<int>{0, 1, 2, 3, 4, 5});
        CHECK(s.route[5] == std::vector<int>{0, 1, 2, 3, 4, 5});
    }
}

TEST_CASE("the orders follow the published schedules") {
    SECTION("1F1B: Megatron's warm-up, steady state and cool-down") {
        const auto s = make_pipeline_schedule(ScheduleKind::one_f_one_b, 4, 6);
        CHECK(order(s, 1) == "F0@s1 F1@s1 F2@s1 BW0@s1 F3@s1 BW1@s1 F4@s1 BW2@s1 F5@s1 BW3@s1 BW4@s1 BW5@s1");
        CHECK(order(s, 3) == "F0@s3 BW0@s3 F1@s3 BW1@s3 F2@s3 BW2@s3 F3@s3 BW3@s3 F4@s3 BW4@s3 F5@s3 BW5@s3");
    }
    SECTION("interleaved 1F1B: Megatron's virtual micro-batch order") {
        const auto s = make_pipeline_schedule(ScheduleKind::interleaved_1f1b, 2, 4, 2);
        CHECK(
            order(s, 0) ==
            "F0@s0 F1@s0 F0@s2 F1@s2 F2@s0 BW0@s2 F3@s0 BW1@s2 F2@s2 BW0@s0 F3@s2 BW1@s0 BW2@s2 BW3@s2 BW2@s0 BW3@s0");
    }
    SECTION("ZB1P: rank r holds its W passes back by r") {
        const auto s = make_pipeline_schedule(ScheduleKind::zb1p, 2, 4);
        CHECK(order(s, 0) == "F0@s0 F1@s0 B0@s0 W0@s0 F2@s0 B1@s0 W1@s0 F3@s0 B2@s0 W2@s0 B3@s0 W3@s0");
        CHECK(order(s, 1) == "F0@s1 B0@s1 F1@s1 B1@s1 W0@s1 F2@s1 B2@s1 W1@s1 F3@s1 B3@s1 W2@s1 W3@s1");
    }
    SECTION("DualPipe: the reference's eight steps (dualpipe.py), PP 4 and 8 micro-batches") {
        const auto s = make_pipeline_schedule(ScheduleKind::dualpipe, 4, 8);
        // Rank 0: step 1 F0 F0, step 2 F0 F1, step 3 B1(zero bubble) W F1, step 4 (F0,B1) (F1,B0),
        // step 5 B1 (F1,B0), step 6 B1 B0(zero bubble), step 7 W B0(zero bubble), step 8 W.
        CHECK(order(s, 0) ==
              "F0@s0 F1@s0 F2@s0 F4@s7 B4@s7 W4@s7 F5@s7 F3@s0+BW5@s7 F6@s7+BW0@s0 BW6@s7 F7@s7+BW1@s0 BW7@s7 "
              "B2@s0 W2@s0 B3@s0 W3@s0");
        // Rank 1, a middle rank: its first step-4 pair runs as F then B, not overlapped.
        CHECK(order(s, 1) ==
              "F0@s1 F4@s6 F1@s1 F5@s6 F2@s1 BW4@s6 F6@s6+BW0@s1 F3@s1+BW5@s6 F7@s6+BW1@s1 BW6@s6 BW2@s1 B7@s6 "
              "B3@s1 W7@s6 W3@s1");
    }
    SECTION("DualPipe is symmetric: rank PP-1-r mirrors rank r with the directions swapped") {
        const auto s = make_pipeline_schedule(ScheduleKind::dualpipe, 8, 20);
        const int R = s.ranks;
        for (int r = 0; r < R; ++r) {
            const auto& mine = s.rank_instructions[static_cast<std::size_t>(r)];
            const auto& mirror = s.rank_instructions[static_cast<std::size_t>(R - 1 - r)];
            REQUIRE(mine.size() == mirror.size());
            for (std::size_t i = 0; i < mine.size(); ++i) {
                for (std::size_t j = 0; j < mine[i].items.size(); ++j) {
                    const WorkItem a = mine[i].items[j];
                    const WorkItem b = mirror[i].items[j];
                    CHECK(a.kind == b.kind);
                    CHECK((a.micro_batch + 10) % 20 == b.micro_batch);
                    CHECK((a.stage + R) % (2 * R) == b.stage);
                }
            }
        }
    }
    SECTION("DualPipeV: the reference's eight steps (dualpipev.py), 2 ranks and 4 micro-batches") {
        const auto s = make_pipeline_schedule(ScheduleKind::dualpipev, 2, 4);
        CHECK(order(s, 0) ==
              "F0@s0 F1@s0 F2@s0 F0@s3 B0@s3 W0@s3 F1@s3 F3@s0+BW1@s3 F2@s3+BW0@s0 BW2@s3 F3@s3+BW1@s0 BW3@s3 "
              "B2@s0 W2@s0 B3@s0 W3@s0");
        // The last rank (the bottom of the V) splits its first step-4 pair.
        CHECK(order(s, 1) ==
              "F0@s1 F0@s2 F1@s1 F1@s2 F2@s1 BW0@s2 F2@s2+BW0@s1 F3@s1+BW1@s2 F3@s2+BW1@s1 BW2@s2 BW2@s1 B3@s2 "
              "B3@s1 W3@s2 W3@s1");
    }
}

TEST_CASE("every schedule covers each (micro-batch, stage) once and runs in a dependency-consistent order") {
    struct Case {
        ScheduleKind kind;
        int ranks, micro_batches, virtual_stages;
    };
    std::vector<Case> cases;
    for (int r = 1; r <= 8; ++r) {
        for (const int m : {1, 2, r, 2 * r + 1, 3 * r}) {
            for (const auto kind : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::zb1p}) {
                cases.push_back({kind, r, m, 1});
            }
        }
        for (const int m : {r, 2 * r, 3 * r}) {
            for (const int v : {2, 3}) cases.push_back({ScheduleKind::interleaved_1f1b, r, m, v});
        }
        for (const int m : {2 * r, 2 * r + 1, 3 * r + 2}) cases.push_back({ScheduleKind::dualpipev, r, m, 1});
        if (r % 2 == 0) {
            for (const int m : {2 * r, 2 * r + 2, 4 * r}) cases.push_back({ScheduleKind::dualpipe, r, m, 1});
        }
    }
    for (const Case& c : cases) {
        INFO(to_string(c.kind) << " ranks " << c.ranks << " micro-batches " << c.micro_batches << " v "
                               << c.virtual_stages);
        const PipelineSchedule s = make_pipeline_schedule(c.kind, c.ranks, c.micro_batches, c.virtual_stages);
        REQUIRE_NOTHROW(validate_pipeline_schedule(s));
        Simulator sim;
        UnevenEnvironment uneven;
        check_dependency_consistent(s, run_pipeline(sim, s, uneven));
        check_dependency_consistent(s, test::run_fixed(s, 1, 2, 1, 3));
    }
}

TEST_CASE("validation rejects incomplete or misplaced schedules") {
    auto s = make_pipeline_schedule(ScheduleKind::one_f_one_b, 2, 2);
    SECTION("a missing backward") {
        s.rank_instructions[1].pop_back();
        CHECK_THROWS_WITH(validate_pipeline_schedule(s), Contains("micro-batch 1 at stage 1 has 0 full backwards"));
    }
    SECTION("an item on the wrong rank") {
        s.rank_instructions[0][0].items[0].stage = 1;
        CHECK_THROWS_WITH(validate_pipeline_schedule(s), Contains("belongs to rank 1"));
    }
    SECTION("a duplicated forward") {
        s.rank_instructions[0].push_back(s.rank_instructions[0].front());
        CHECK_THROWS_WITH(validate_pipeline_schedule(s), Contains("has 2 forwards"));
    }
}
