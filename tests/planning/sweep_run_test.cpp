// Tests of running sweeps: plans the scenario rejects, one row per plan in plan order whatever the
// number of threads, plans that do not fit, resumption from the journal, and plan keys.
#include "sim/planning/sweep_plan.hpp"
#include "sim/planning/sweep_runner.hpp"
#include "sim/planning/sweep_table.hpp"
#include "sim/scenario/scenario.hpp"
#include "sweep_test_support.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// Twelve small plans: PP 1 or 2, micro-batches of 1, 2 or 4 sequences, 1F1B or GPipe.
constexpr const char* kTwelvePlans = R"(grid:
  parallel.pp: [1, 2]
  batch.micro_batch_size: [1, 2, 4]
  schedule.kind: [1f1b, gpipe]
)";

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE(it != header.end());
    return static_cast<std::size_t>(it - header.begin());
}

}  // namespace

TEST_CASE("a value the scenario rejects is an error at its line in the sweep file", "[planning][errors]") {
    SweepScratch dir("rejects");
    const fs::path file = dir.sweep("zero", "grid:\n  parallel.pp: [1, 0]\n");
    const std::string errors = sweep_errors(file, dir.path / "out");
    CHECK_THAT(errors,
               Contains(file.string() +
                        ":1:7: base: 1 of the sweep's 2 plans is rejected by the scenario, so nothing was run"));
    CHECK_THAT(errors, Contains(file.string() + ":3:20: grid.parallel.pp[1]: the scenario rejects \"parallel.pp\" = 0: "
                                                "expected a value of at least 1; found 0 (plan 1: parallel.pp=0)"));
    CHECK_FALSE(fs::exists(dir.path / "out" / "sweep.csv"));  // nothing ran
}

TEST_CASE("a dotted path the scenario does not know is an error with a suggestion", "[planning][errors]") {
    SweepScratch dir("paths");
    const fs::path typo = dir.sweep("typo", "grid:\n  parallel.ppp: [2, 4]\n");
    CHECK_THAT(sweep_errors(typo, dir.path / "out"),
               Contains(typo.string() + ":3:18: grid.parallel.ppp[0]: the scenario rejects \"parallel.ppp\" = 2: "
                                        "unknown key \"ppp\" (did you mean \"pp\"?) (plan 0: parallel.ppp=2)"));
    const fs::path through = dir.sweep("through", "grid:\n  parallel.pp.x: [2]\n");
    CHECK_THAT(sweep_errors(through, dir.path / "out"),
               Contains(through.string() + ":3:19: grid.parallel.pp.x[0]: cannot apply \"parallel.pp.x\": "
                                           "\"parallel.pp\" holds the value \"1\", not a mapping of keys"));
    const fs::path index = dir.sweep("index", "grid:\n  parallel.layers_per_part[0]: [2]\n");
    CHECK_THAT(sweep_errors(index, dir.path / "out"),
               Contains(index.string() +
                        ":3:33: grid.parallel.layers_per_part[0][0]: cannot apply \"parallel.layers_per_part[0]\": "
                        "\"parallel.layers_per_part\" is not set in the base scenario, so it has no item [0]"));
}

TEST_CASE("a plan the scenario rejects across fields points at the base file and names the plan",
          "[planning][errors]") {
    SweepScratch dir("cross");
    const fs::path file = dir.sweep("split", "grid:\n  parallel.pp: [1, 5]\n");
    // 48 GPUs do not split into 5 pipeline stages; the loader reports it at `gpus` in the base.
    CHECK_THAT(sweep_errors(file, dir.path / "out"),
               Contains(base_scenario() +
                        ":8:7: gpus: 48 GPUs cannot be split into pp 5 x tp 1 groups (plan 1: parallel.pp=5)"));
}

TEST_CASE("with on_invalid: mark a rejected plan gets an invalid row and the others run", "[planning][errors]") {
    SweepScratch dir("mark");
    const fs::path file = dir.sweep("mark", "on_invalid: mark\ngrid:\n  parallel.pp: [1, 5, 2]\n");
    const SweepReport report = run_quietly(file, dir.path / "out", 2);
    CHECK(report.plans == 3);
    CHECK(report.invalid == 1);
    CHECK(report.ran == 2);
    CHECK(report.ok == 2);
    const auto lines = lines_of(read_text(dir.path / "out" / "sweep.csv"));
    REQUIRE(lines.size() == 4);
    CHECK_THAT(lines[2], StartsWith("1,"));
    CHECK_THAT(lines[2], Contains(",5,invalid," + base_scenario() +
                                  ":8:7: gpus: 48 GPUs cannot be split into pp 5 x tp 1 groups,"));
}

TEST_CASE("a sweep writes one row per plan in plan order, the same CSV for any number of threads", "[planning][run]") {
    SweepScratch dir("jobs");
    const fs::path file = dir.sweep("twelve", kTwelvePlans);
    const SweepReport one = run_quietly(file, dir.path / "one", 1);
    const SweepReport three = run_quietly(file, dir.path / "three", 3);
    CHECK(one.ran == 12);
    CHECK(three.ran == 12);
    CHECK(one.ok == 12);
    const std::string csv = read_text(dir.path / "one" / "sweep.csv");
    CHECK(csv == read_text(dir.path / "three" / "sweep.csv"));

    const auto lines = lines_of(csv);
    REQUIRE(lines.size() == 13);
    CHECK_THAT(lines[0], StartsWith("plan,plan_key,parallel.pp,batch.micro_batch_size,schedule.kind,status,reason,"));
    const auto header = cells_of(lines[0]);
    const std::size_t step = column(header, "step_time_s");
    const std::size_t pp = column(header, "layout.pp");
    CHECK(column(header, "tokens_per_s_per_gpu") > step);
    CHECK(column(header, "fits_in_memory") < step);  // the summary's own order
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto cells = cells_of(lines[i]);
        REQUIRE(cells.size() == header.size());
        CHECK(cells[0] == std::to_string(i - 1));
        CHECK(cells[1].size() == 16);
        CHECK(cells[5] == "ok");
        CHECK(std::stod(cells[step]) > 0);
        CHECK(cells[pp] == cells[2]);  // the summary agrees with the varied input
    }
    // Different plans, different keys.
    std::set<std::string> keys;
    for (std::size_t i = 1; i < lines.size(); ++i) keys.insert(cells_of(lines[i])[1]);
    CHECK(keys.size() == 12);
}

TEST_CASE("a plan run in a sweep gives the summary clustersim run gives for its resolved plan", "[planning][run]") {
    SweepScratch dir("same");
    SweepOptions options;
    options.out_dir = dir.path / "out";
    options.jobs = 2;
    options.keep_runs = true;
    options.progress = ProgressStyle::none;
    REQUIRE(run_sweep(read_sweep_spec(dir.sweep("twelve", kTwelvePlans)), options).ok == 12);
    const fs::path kept = options.out_dir / "runs" / "plan-0009";
    LoadedScenario scenario = load_scenario(kept / "resolved.yaml", std::nullopt);
    RunOutput out(dir.path / "alone");
    RunOptions run_options;
    run_options.seed = scenario.seed;
    const nlohmann::ordered_json summary = scenario.runner->run(run_options, out);
    CHECK(summary.dump(2) + "\n" == read_text(kept / "summary.json"));
    CHECK(summary["layout"]["pp"] == 2);
    CHECK(summary["schedule"] == "gpipe");
}

TEST_CASE("plans that do not fit in memory are marked with the reason", "[planning][run]") {
    SweepScratch dir("fit");
    const fs::path file = dir.sweep("fit", "grid:\n  memory_reserve: [0GiB, 79GiB]\n");
    const SweepReport report = run_quietly(file, dir.path / "out", 2);
    CHECK(report.ok == 1);
    CHECK(report.does_not_fit == 1);
    const auto lines = lines_of(read_text(dir.path / "out" / "sweep.csv"));
    REQUIRE(lines.size() == 3);
    CHECK_THAT(lines[1], Contains(",0GiB,ok,,"));
    CHECK_THAT(lines[2], Contains(",79GiB,does_not_fit,\"does not fit: rank 0 needs"));
    CHECK_THAT(lines[2], Contains("not simulated\","));
}

TEST_CASE("an interrupted sweep restarted does not recompute the plans it finished", "[planning][resume]") {
    SweepScratch dir("resume");
    const fs::path file = dir.sweep("twelve", kTwelvePlans);
    const fs::path whole = dir.path / "whole";
    REQUIRE(run_quietly(file, whole, 2).ran == 12);
    const auto journal = lines_of(read_text(whole / "journal.jsonl"));
    REQUIRE(journal.size() == 12);

    // An interrupted run: five rows journaled, the sixth cut off mid-line by the crash, no CSV yet.
    const fs::path resumed = dir.path / "resumed";
    fs::create_directories(resumed);
    {
        std::ofstream out(resumed / "journal.jsonl");
        for (std::size_t i = 0; i < 5; ++i) out << journal[i] << "\n";
        out << journal[5].substr(0, journal[5].size() / 2);
    }
    const SweepReport report = run_quietly(file, resumed, 2);
    CHECK(report.reused == 5);
    CHECK(report.ran == 7);
    CHECK(read_text(resumed / "sweep.csv") == read_text(whole / "sweep.csv"));

    // Run again: everything is done.
    const SweepReport again = run_quietly(file, resumed, 2);
    CHECK(again.reused == 12);
    CHECK(again.ran == 0);
    CHECK(read_text(resumed / "sweep.csv") == read_text(whole / "sweep.csv"));

    // A failed row is not final: its plan runs again.
    {
        std::string failed = journal[3];
        const std::string ok = "\"status\":\"ok\"";
        REQUIRE(failed.find(ok) != std::string::npos);
        failed.replace(failed.find(ok), ok.size(), "\"status\":\"failed\"");
        std::ofstream(resumed / "journal.jsonl", std::ios::app) << failed << "\n";
    }
    CHECK(run_quietly(file, resumed, 2).ran == 1);
    CHECK(read_text(resumed / "sweep.csv") == read_text(whole / "sweep.csv"));

    // Without the journal, the finished CSV is enough; --fresh forgets both.
    fs::remove(resumed / "journal.jsonl");
    CHECK(run_quietly(file, resumed, 2).reused == 12);
    SweepOptions fresh;
    fresh.out_dir = resumed;
    fresh.jobs = 2;
    fresh.fresh = true;
    fresh.progress = ProgressStyle::none;
    CHECK(run_sweep(read_sweep_spec(file), fresh).ran == 12);
    CHECK(read_text(resumed / "sweep.csv") == read_text(whole / "sweep.csv"));
}

TEST_CASE("two sweeps cannot write into the same folder at once", "[planning][resume]") {
    SweepScratch dir("lock");
    const fs::path out = dir.path / "out";
    fs::create_directories(out);
    const SweepJournal holder(out / "journal.jsonl");  // as a sweep running in another process would
    try {
        (void)run_quietly(dir.sweep("lock", "grid:\n  parallel.pp: [1, 2]\n"), out, 1);
        FAIL("the second sweep ran");
    } catch (const std::runtime_error& e) {
        CHECK_THAT(e.what(), Contains("another clustersim sweep is writing to " + out.string()));
    }
}

TEST_CASE("a changed plan is recomputed: rows are matched by the key of the resolved plan", "[planning][resume]") {
    SweepScratch dir("keys");
    const fs::path out = dir.path / "out";
    REQUIRE(run_quietly(dir.sweep("first", "grid:\n  parallel.pp: [1, 2]\n"), out, 2).ran == 2);
    // Same plans in another order plus a new one: only the new one runs.
    const SweepReport second = run_quietly(dir.sweep("first", "grid:\n  parallel.pp: [2, 4, 1]\n"), out, 2);
    CHECK(second.reused == 2);
    CHECK(second.ran == 1);
    // Writing a default out changes nothing in the resolved plan, so nothing runs.
    const SweepReport explicit_default =
        run_quietly(dir.sweep("first", "set:\n  parallel.zero_stage: 1\ngrid:\n  parallel.pp: [2, 4, 1]\n"), out, 2);
    CHECK(explicit_default.ran == 0);
    // Another seed is another plan.
    CHECK(run_quietly(dir.sweep("first", "set:\n  seed: 7\ngrid:\n  parallel.pp: [2, 4, 1]\n"), out, 2).ran == 3);
}

TEST_CASE("a row reads back from the journal exactly as it was written", "[planning][journal]") {
    nlohmann::ordered_json summary = {
        {"status", "simulated"},    {"step_time_s", 0.1 + 0.2},         {"gpus", 48},
        {"fits_in_memory", true},   {"layout", {{"tp", 1}, {"pp", 2}}}, {"schedule", "1f1b"},
        {"layers_per_part", {1, 2}}};
    const PlanRow row = row_from_summary(3, "0123456789abcdef", summary);
    CHECK(row.status == PlanStatus::ok);
    CHECK(row.reason.empty());
    const std::vector<std::pair<std::string, std::string>> expected = {{"step_time_s", "0.30000000000000004"},
                                                                       {"gpus", "48"},
                                                                       {"fits_in_memory", "true"},
                                                                       {"layout.tp", "1"},
                                                                       {"layout.pp", "2"}};
    CHECK(row.metrics == expected);
    const auto back = parse_journal_line(journal_line(row));
    REQUIRE(back);
    CHECK(back->plan == 3);
    CHECK(back->key == row.key);
    CHECK(back->metrics == row.metrics);
    CHECK_FALSE(parse_journal_line(journal_line(row).substr(0, 40)));

    summary["fits_in_memory"] = false;
    summary["status"] = "does not fit: rank 0 needs 90 GiB";
    const PlanRow over = row_from_summary(4, "0123456789abcdef", summary);
    CHECK(over.status == PlanStatus::does_not_fit);
    CHECK(over.reason == "does not fit: rank 0 needs 90 GiB");
}
