// Tests of the training plan search: which combinations are dropped and why, the best plan and its
// scenario, plans over memory and plans the loader rejects, resuming, and errors in plan files.
#include "sim/planning/training_plan.hpp"
#include "sim/planning/sweep_table.hpp"
#include "sim/scenario/scenario.hpp"
#include "sweep_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>

using namespace clustersim;
using namespace clustersim::testing;
using Catch::Matchers::Contains;

namespace {

const fs::path kMegatronPlan = fs::path(CLUSTERSIM_SOURCE_DIR) / "scenarios/plans/megatron-gpt-1700m-training.yaml";
const fs::path kDeepSeekPlan = fs::path(CLUSTERSIM_SOURCE_DIR) / "scenarios/plans/deepseek-v3-training.yaml";

// Writes a plan file over the tests' base scenario (GPT 1.7B on 48 H100, 8 per host, 24 layers,
// global batch 192); returns its path.
fs::path plan_file(const SweepScratch& dir, const std::string& name, const std::string& rest) {
    const fs::path file = dir.path / (name + ".yaml");
    std::ofstream(file) << "kind: training_plan\nbase: " << base_scenario() << "\n" << rest;
    return file;
}

std::string plan_errors(const fs::path& file) {
    try {
        (void)expand_training_plan(read_training_plan_spec(file));
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

TrainingPlanResult search_quietly(const fs::path& file, const fs::path& out, int jobs = 2) {
    PlanOptions options;
    options.out_dir = out;
    options.jobs = jobs;
    options.progress = ProgressStyle::none;
    return search_training_plan(file, options, nullptr);
}

double number(const PlanRow& row, const std::string& name) {
    for (const auto& [column, cell] : row.metrics)
        if (column == name) return std::stod(cell);
    FAIL("the row has no " << name);
    return 0;
}

std::string cell(const PlanRow& row, const std::string& name) {
    for (const auto& [column, text] : row.metrics)
        if (column == name) return text;
    return "";
}

bool row_fits(const PlanRow& row) {
    return row.status == PlanStatus::ok && cell(row, "fits_in_memory") == "true";
}

// The records of a CSV file (RFC 4180 quoting: the reason column holds commas).
std::vector<std::vector<std::string>> csv_records(const std::string& text) {
    std::vector<std::vector<std::string>> records(1);
    std::string field;
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted && c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == ',') {
            records.back().push_back(std::move(field));
            field.clear();
        } else if (!quoted && c == '\n') {
            records.back().push_back(std::move(field));
            field.clear();
            records.emplace_back();
        } else {
            field += c;
        }
    }
    if (records.back().empty()) records.pop_back();
    return records;
}

// The cells of plans.csv by column name, one map per line after the header.
std::vector<std::map<std::string, std::string>> plans_csv_records(const fs::path& path) {
    const auto records = csv_records(read_text(path));
    REQUIRE_FALSE(records.empty());
    const auto& header = records.front();
    std::vector<std::map<std::string, std::string>> out;
    for (std::size_t i = 1; i < records.size(); ++i) {
        REQUIRE(records[i].size() == header.size());
        std::map<std::string, std::string> record;
        for (std::size_t c = 0; c < header.size(); ++c) record[header[c]] = records[i][c];
        out.push_back(record);
    }
    return out;
}

// The search of the hand-checked enumeration test: 2 x 2 x 3 x 3 = 36 combinations.
constexpr const char* kHandChecked = R"(search:
  tp: [1, 16]
  pp: [2, 5]
  schedule: [1f1b, interleaved-1f1b, dualpipe]
  micro_batch_size: [1, 4, 5]
)";

}  // namespace

TEST_CASE("the search drops exactly the combinations the training loader cannot take, by first reason",
          "[planning][training_plan]") {
    SweepScratch dir("tplan-enum");
    const TrainingPlanSearch search =
        expand_training_plan(read_training_plan_spec(plan_file(dir, "hand", kHandChecked)));
    // By hand, on 48 GPUs with 8 per host, 24 layers and a global batch of 192 sequences:
    //  - tp 16 spans two hosts: 2 pp x 3 schedules x 3 micro-batch sizes = 18;
    //  - tp 1 x pp 5 does not divide 48: 3 x 3 = 9;
    //  - tp 1, pp 2 (dp 24): micro-batch 5 does not divide 192 / 24 = 8 sequences: 3 schedules;
    //    micro-batch 4 gives 2 micro-batches, fewer than DualPipe's 2 x pp = 4: 1;
    //    left: micro-batch 1 (8 micro-batches) with all three schedules, micro-batch 4 with 1F1B and interleaved.
    REQUIRE(search.combinations.size() == 36);
    const auto dropped = [&](DropReason r) { return search.dropped_by_reason[static_cast<std::size_t>(r)]; };
    CHECK(dropped(DropReason::tp_exceeds_host) == 18);
    CHECK(dropped(DropReason::gpus_not_divisible) == 9);
    CHECK(dropped(DropReason::batch_not_divisible) == 3);
    CHECK(dropped(DropReason::too_few_micro_batches) == 1);
    std::size_t total = 0;
    for (const std::size_t n : search.dropped_by_reason) total += n;
    CHECK(total == 31);
    REQUIRE(search.sweep.plans.size() == 5);

    std::vector<std::string> kept;
    for (const auto& c : search.combinations) {
        CHECK(c.dropped.has_value() != c.plan.has_value());
        if (c.plan)
            kept.push_back(fmt::format("tp{} pp{} dp{} {} mbs{} m{}", c.tp, c.pp, c.dp, c.schedule, c.micro_batch_size,
                                       c.micro_batches));
    }
    CHECK(kept == std::vector<std::string>{"tp1 pp2 dp24 1f1b mbs1 m8", "tp1 pp2 dp24 1f1b mbs4 m2",
                                           "tp1 pp2 dp24 interleaved-1f1b mbs1 m8",
                                           "tp1 pp2 dp24 interleaved-1f1b mbs4 m2", "tp1 pp2 dp24 dualpipe mbs1 m8"});
    // Combinations are numbered with tp slowest and the micro-batch size fastest.
    CHECK(search.combinations[1].micro_batch_size == 4);
    CHECK(search.combinations[3].schedule == "interleaved-1f1b");
    // The plans override only the searched paths, and the schedule's chunks per rank with it.
    CHECK(search.sweep.columns == std::vector<std::string>{"parallel.tp", "parallel.pp", "schedule.kind",
                                                           "schedule.virtual_stages", "batch.micro_batch_size"});
    CHECK(search.sweep.plans[2].cells == std::vector<std::string>{"1", "2", "interleaved-1f1b", "2", "1"});
    CHECK(search.sweep.plans[0].cells == std::vector<std::string>{"1", "2", "1f1b", "default", "1"});
}

TEST_CASE("the search's own MoE, layer and schedule rules match the loader's", "[planning][training_plan]") {
    SweepScratch dir("tplan-rules");
    // A dense model takes no EP; 24 layers cannot fill interleaved's 16 x 2 parts; DualPipe needs an even pp.
    const TrainingPlanSearch search = expand_training_plan(read_training_plan_spec(plan_file(dir, "rules", R"(search:
  ep: [1, 2]
  pp: [3, 16]
  schedule: [dualpipe, interleaved-1f1b]
)")));
    // By hand (48 GPUs, tp 1, global batch 192): pp 3 gives dp 16 and 12 micro-batches, pp 16 dp 3 and 64.
    REQUIRE(search.combinations.size() == 8);
    const auto dropped = [&](DropReason r) { return search.dropped_by_reason[static_cast<std::size_t>(r)]; };
    CHECK(dropped(DropReason::ep_not_dividing_stage) == 2);    // ep 2 with pp 16: dp 3 x tp 1 ranks per stage
    CHECK(dropped(DropReason::ep_not_dividing_experts) == 2);  // ep 2 with pp 3: the model has no experts
    CHECK(dropped(DropReason::dualpipe_odd_pp) == 1);          // DualPipe, pp 3
    CHECK(dropped(DropReason::too_few_layers) == 1);           // interleaved, pp 16: 32 parts for 24 layers
    REQUIRE(search.sweep.plans.size() == 2);                   // interleaved pp 3, DualPipe pp 16
    CHECK(search.combinations[1].plan.has_value());  // pp 3, ep 1, interleaved (pp slowest, then ep, schedule)
    CHECK(search.combinations[4].plan.has_value());  // pp 16, ep 1, DualPipe
}

TEST_CASE("the base's layer split is kept where a plan has as many parts, and the even default used elsewhere",
          "[planning][training_plan]") {
    SweepScratch dir("tplan-split");
    const fs::path base = dir.path / "split-base.yaml";
    std::string text = read_text(base_scenario());
    const std::string published = "parallel: {tp: 1, pp: 1, zero_stage: 1}";
    REQUIRE(text.find(published) != std::string::npos);
    text.replace(text.find(published), published.size(),
                 "parallel: {tp: 1, pp: 2, zero_stage: 1, layers_per_part: [10, 14]}");
    std::ofstream(base) << text;
    const fs::path file = dir.path / "split.yaml";
    std::ofstream(file)
        << "kind: training_plan\nbase: split-base.yaml\nsearch:\n  pp: [2, 4]\n  schedule: [1f1b, dualpipev]\n";
    const TrainingPlanSearch search = expand_training_plan(read_training_plan_spec(file));
    // pp 2 with 1F1B has 2 parts: the base's split; DualPipeV on pp 2 and everything on pp 4 have 4 or 8.
    REQUIRE(search.sweep.plans.size() == 4);
    CHECK(search.sweep.columns.back() == "parallel.layers_per_part");
    CHECK(search.combinations[0].base_split);
    CHECK(search.sweep.plans[0].cells.back() == "base");
    for (std::size_t p = 1; p < 4; ++p) {
        CHECK_FALSE(search.combinations[p].base_split);
        CHECK(search.sweep.plans[p].cells.back() == "default");
    }
}

TEST_CASE("best.yaml names the base's model and topology files so that it runs from the output folder",
          "[planning][training_plan]") {
    SweepScratch dir("tplan-paths");
    fs::create_directories(dir.path / "files");
    fs::create_directories(dir.path / "plans");
    fs::copy_file(fs::path(CLUSTERSIM_SOURCE_DIR) / "models/megatron-gpt-1700m.yaml", dir.path / "files/gpt.yaml");
    fs::copy_file(fs::path(CLUSTERSIM_SOURCE_DIR) / "topologies/h100-ib-rail.yaml", dir.path / "files/ib.yaml");
    std::string text = read_text(base_scenario());
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"model: megatron-gpt-1700m", "model: gpt.yaml"}, {"file: h100-ib-rail", "file: ib.yaml"}}) {
        REQUIRE(text.find(from) != std::string::npos);
        text.replace(text.find(from), from.size(), to);
    }
    std::ofstream(dir.path / "files/base.yaml") << text;
    const fs::path file = dir.path / "plans/paths.yaml";
    std::ofstream(file) << "kind: training_plan\nbase: ../files/base.yaml\nsearch: {micro_batch_size: [2]}\n";
    const TrainingPlanResult result = search_quietly(file, dir.path / "out");
    REQUIRE_FALSE(result.best_yaml.empty());
    const std::string best = read_text(result.best_yaml);
    CHECK_THAT(best, Contains("model: " + (dir.path / "files/gpt.yaml").string()));
    CHECK_THAT(best, Contains("file: " + (dir.path / "files/ib.yaml").string()));
    CHECK_NOTHROW(load_scenario(result.best_yaml, std::nullopt));
}

TEST_CASE("the best plan is the fitting plan with the most tokens/s/GPU, and best.yaml reproduces it",
          "[planning][training_plan]") {
    SweepScratch dir("tplan-best");
    const fs::path out = dir.path / "out";
    const TrainingPlanResult result = search_quietly(kMegatronPlan, out);
    const auto& rows = result.sweep.rows;
    REQUIRE(rows.size() == result.search.sweep.plans.size());
    REQUIRE_FALSE(result.ranked.empty());

    // The ranking holds exactly the fitting rows, best first, and the first has the highest tokens/s/GPU.
    std::size_t fitting = 0;
    double highest = 0;
    std::size_t argmax = 0;
    for (std::size_t p = 0; p < rows.size(); ++p) {
        if (!row_fits(rows[p])) continue;
        ++fitting;
        if (number(rows[p], "tokens_per_s_per_gpu") > highest) {
            highest = number(rows[p], "tokens_per_s_per_gpu");
            argmax = p;
        }
    }
    CHECK(result.ranked.size() == fitting);
    CHECK(result.ranked.front() == argmax);
    for (std::size_t r = 1; r < result.ranked.size(); ++r)
        CHECK(number(rows[result.ranked[r - 1]], "tokens_per_s_per_gpu") >=
              number(rows[result.ranked[r]], "tokens_per_s_per_gpu"));

    // plans.csv accounts for every combination, and names the same best plan.
    const auto records = plans_csv_records(result.plans_csv);
    REQUIRE(records.size() == result.search.combinations.size());
    std::size_t dropped = 0;
    for (const auto& r : records) dropped += r.at("status") == "dropped" ? 1 : 0;
    CHECK(dropped + result.search.sweep.plans.size() == records.size());
    const auto first = std::find_if(records.begin(), records.end(), [](const auto& r) { return r.at("rank") == "1"; });
    REQUIRE(first != records.end());
    CHECK(first->at("plan") == std::to_string(argmax));
    CHECK(first->at("tokens_per_s_per_gpu") == cell(rows[argmax], "tokens_per_s_per_gpu"));

    // The report names it with its numbers.
    const std::string report = read_text(result.report_md);
    CHECK_THAT(report, Contains("## Why the best plan wins"));
    CHECK_THAT(report, Contains(fmt::format("{:.1f}", highest)));
    CHECK_THAT(result.outcome.headline, Contains(fmt::format("{:.1f} tokens/s/GPU", highest)));

    // best.yaml, run from its own folder as `clustersim run` would, gives the row's numbers exactly.
    REQUIRE(fs::exists(result.best_yaml));
    CHECK_THAT(read_text(result.best_yaml), Contains("# The best plan of the training plan search"));
    LoadedScenario best = load_scenario(result.best_yaml, std::nullopt);
    RunOutput run_out(dir.path / "best-run");
    RunOptions run_options;
    run_options.seed = best.seed;
    const nlohmann::ordered_json summary = best.runner->run(run_options, run_out);
    CHECK(fmt::format("{}", summary["tokens_per_s_per_gpu"].get<double>()) ==
          cell(rows[argmax], "tokens_per_s_per_gpu"));
    CHECK(fmt::format("{}", summary["step_time_s"].get<double>()) == cell(rows[argmax], "step_time_s"));
}

TEST_CASE("a search run again reuses every row and recomputes nothing", "[planning][training_plan]") {
    SweepScratch dir("tplan-resume");
    const fs::path out = dir.path / "out";
    const fs::path file = plan_file(dir, "resume", kHandChecked);
    const TrainingPlanResult first = search_quietly(file, out);
    CHECK(first.sweep.ran == 5);
    CHECK(first.sweep.reused == 0);
    const std::string csv = read_text(first.plans_csv);
    const std::string best = read_text(first.best_yaml);

    const TrainingPlanResult again = search_quietly(file, out, 1);
    CHECK(again.sweep.ran == 0);
    CHECK(again.sweep.reused == 5);
    CHECK(read_text(again.plans_csv) == csv);
    CHECK(read_text(again.best_yaml) == best);

    PlanOptions fresh;
    fresh.out_dir = out;
    fresh.jobs = 2;
    fresh.fresh = true;
    fresh.progress = ProgressStyle::none;
    CHECK(search_training_plan(file, fresh, nullptr).sweep.ran == 5);
}

TEST_CASE("plans over memory are reported with their memory and never ranked", "[planning][training_plan]") {
    SweepScratch dir("tplan-memory");
    // 50 GiB of the H100's 74.5 GiB kept free: micro-batches of one sequence fit, of four do not.
    const fs::path file = plan_file(dir, "memory", R"(set:
  memory_reserve: 50GiB
search:
  pp: [1, 2]
  micro_batch_size: [1, 4]
)");
    const TrainingPlanResult result = search_quietly(file, dir.path / "out");
    const auto& rows = result.sweep.rows;
    std::size_t over = 0;
    for (std::size_t p = 0; p < rows.size(); ++p) {
        if (rows[p].status != PlanStatus::does_not_fit) continue;
        ++over;
        CHECK(number(rows[p], "peak_memory_gib_per_gpu") > number(rows[p], "memory_capacity_gib"));
        CHECK(std::find(result.ranked.begin(), result.ranked.end(), p) == result.ranked.end());
    }
    REQUIRE(over > 0);
    CHECK(over < rows.size());
    CHECK(result.ranked.size() == rows.size() - over);
    const std::string report = read_text(result.report_md);
    CHECK_THAT(report, Contains(fmt::format("## Plans that do not fit in memory ({})", over)));
    for (const auto& r : plans_csv_records(result.plans_csv)) {
        if (r.at("status") == "does_not_fit") {
            CHECK_FALSE(r.at("over_memory_gib").empty());
        }
    }
}

TEST_CASE("a plan the training loader rejects is an invalid row with its message at the plan file",
          "[planning][training_plan][errors]") {
    SweepScratch dir("tplan-invalid");
    const fs::path file = plan_file(dir, "invalid", R"(set:
  communication_sms: -1
search:
  pp: [1, 2]
)");
    const TrainingPlanResult result = search_quietly(file, dir.path / "out");
    REQUIRE(result.sweep.rows.size() == 2);
    for (const auto& row : result.sweep.rows) {
        CHECK(row.status == PlanStatus::invalid);
        CHECK_THAT(row.reason, Contains(file.string() + ":4:22: set.communication_sms: the scenario rejects "
                                                        "\"communication_sms\" = -1: expected a value of at least 0"));
    }
    CHECK(result.ranked.empty());
    CHECK(result.best_yaml.empty());
    CHECK_FALSE(fs::exists(dir.path / "out" / "best.yaml"));
    CHECK_THAT(read_text(result.report_md), Contains("No plan fits in memory"));
}

TEST_CASE("a TP degree the loader rejects for its NVLink domain is an invalid row with the reason",
          "[planning][training_plan][errors]") {
    // tp 3 on hosts of 8 GPUs: TP groups would span two hosts. The search's own filter only drops a tp
    // wider than a host; the loader's rule is what marks the row (it used to run and fail).
    SweepScratch dir("tplan-tp3");
    const fs::path file = plan_file(dir, "tp3", R"(search:
  tp: [3]
  pp: [1]
)");
    const TrainingPlanResult result = search_quietly(file, dir.path / "out");
    REQUIRE(result.sweep.rows.size() == 1);
    const auto& row = result.sweep.rows.front();
    CHECK(row.status == PlanStatus::invalid);
    CHECK_THAT(row.reason, Contains("parallel.tp") && Contains("tp 3 does not divide the 8 GPUs of an NVLink domain"));
    CHECK(result.sweep.failed == 0);
    CHECK(result.ranked.empty());
}

TEST_CASE("errors in a plan file name the file, line, column and key", "[planning][training_plan][errors]") {
    SweepScratch dir("tplan-errors");
    const fs::path typo = plan_file(dir, "typo", "search:\n  ppp: [2, 4]\n  schedule: [1f1b, dualpipev, zbp1]\n");
    const std::string typos = plan_errors(typo);
    CHECK_THAT(typos, Contains(typo.string() + ":4:3: search.ppp: unknown key \"ppp\" (did you mean \"pp\"?)"));
    CHECK_THAT(typos, Contains(typo.string() + ":5:31: search.schedule[2]: expected one of: gpipe, 1f1b, "
                                               "interleaved-1f1b, zb1p, dualpipe, dualpipev; found \"zbp1\" (did "
                                               "you mean \"zb1p\"?)"));

    const fs::path values = plan_file(dir, "values", "tops: 3\nsearch:\n  tp: []\n  pp: [2, 0, 2]\n  zero_stage: 1\n");
    const std::string bad = plan_errors(values);
    CHECK_THAT(bad, Contains(values.string() + ":3:1: tops: unknown key \"tops\" (did you mean \"top\"?)"));
    CHECK_THAT(bad, Contains(values.string() + ":5:7: search.tp: the list of tp values is empty"));
    CHECK_THAT(bad, Contains(values.string() + ":6:11: search.pp[1]: expected a value of at least 1; found 0"));
    CHECK_THAT(bad, Contains(values.string() + ":6:14: search.pp[2]: 2 is listed twice (first as search.pp[0])"));
    CHECK_THAT(bad, Contains(values.string() + ":7:15: search.zero_stage: expected a list"));

    const fs::path clash =
        plan_file(dir, "clash", "set:\n  parallel.pp: 4\nsearch:\n  pp: [2]\n  virtual_stages: [2]\n");
    const std::string clashes = plan_errors(clash);
    CHECK_THAT(clashes, Contains(clash.string() + ":4:16: set.parallel.pp: \"parallel.pp\" is varied by the search"));
    CHECK_THAT(clashes, Contains(clash.string() + ":7:19: search.virtual_stages: virtual_stages is tried with "
                                                  "interleaved-1f1b only"));

    SweepScratch other("tplan-errors-base");
    const fs::path missing = other.path / "missing.yaml";
    std::ofstream(missing) << "kind: training_plan\nbase: nowhere.yaml\nsearch: {pp: [1]}\n";
    CHECK_THAT(plan_errors(missing), Contains(missing.string() + ":2:7: base: the base scenario \"nowhere.yaml\" is "
                                                                 "not a file"));
    const fs::path kind = other.path / "kind.yaml";
    std::ofstream(kind) << "kind: serving_plan\nbase: " << base_scenario() << "\nsearch: {pp: [1]}\n";
    CHECK_THAT(plan_errors(kind), Contains(kind.string() + ":1:7: kind: expected one of: training_plan; found "
                                                           "\"serving_plan\""));
    const fs::path serving = other.path / "serving.yaml";
    std::ofstream(serving) << "kind: training_plan\nbase: " << CLUSTERSIM_SOURCE_DIR
                           << "/scenarios/serving/llama3-70b-h100-colocated.yaml\nsearch: {pp: [1]}\n";
    CHECK_THAT(plan_errors(serving), Contains(serving.string() + ":2:7: base: the base scenario is a \"serving\" "
                                                                 "scenario; a training_plan searches over a training "
                                                                 "scenario"));
    const fs::path gpus = other.path / "gpus.yaml";
    std::ofstream(gpus) << "kind: training_plan\nbase: " << base_scenario() << "\ngpus: 96\nsearch: {pp: [1]}\n";
    CHECK_THAT(plan_errors(gpus), Contains(gpus.string() + ":3:7: gpus: 96 GPUs exceed the base topology's 48"));
}

// A whole search with progress lines, by default the DeepSeek-V3 search of scenarios/plans (a few
// minutes on two cores); CLUSTERSIM_PLAN and CLUSTERSIM_PLAN_OUT name another plan file and folder:
//   training_plan_tests "[.plan]"
TEST_CASE("a whole plan search, timed", "[.plan]") {
    const char* plan = std::getenv("CLUSTERSIM_PLAN");
    const char* out = std::getenv("CLUSTERSIM_PLAN_OUT");
    PlanOptions options;
    options.out_dir = out ? fs::path(out) : fs::temp_directory_path() / "clustersim-deepseek-v3-training";
    options.jobs = 2;
    options.progress = ProgressStyle::lines;
    const auto started = std::chrono::steady_clock::now();
    const TrainingPlanResult result = search_training_plan(plan ? fs::path(plan) : kDeepSeekPlan, options, nullptr);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    WARN(result.outcome.headline << "\n  " << seconds << " s of wall time");
    REQUIRE_FALSE(result.ranked.empty());
    // best.yaml reproduces its row.
    LoadedScenario best = load_scenario(result.best_yaml, std::nullopt);
    RunOutput run_out(fs::temp_directory_path() / "clustersim-plan-best-run");
    RunOptions run_options;
    run_options.seed = best.seed;
    const nlohmann::ordered_json summary = best.runner->run(run_options, run_out);
    const PlanRow& row = result.sweep.rows[result.ranked.front()];
    CHECK(fmt::format("{}", summary["tokens_per_s_per_gpu"].get<double>()) == cell(row, "tokens_per_s_per_gpu"));
    CHECK(fmt::format("{}", summary["step_time_s"].get<double>()) == cell(row, "step_time_s"));
}
