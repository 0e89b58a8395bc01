// The serving capacity search (sim/planning/serving_plan.hpp): the best plan is the fewest GPUs that
// meet the objectives, checked whole; best.yaml reproduces its run; every candidate is accounted for;
// bad plan files are reported with line and key.
#include "sim/planning/serving_plan.hpp"

#include "sim/scenario/run_output.hpp"
#include "sim/scenario/scenario.hpp"
#include "sweep_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

using namespace clustersim;
using namespace clustersim::testing;

namespace {

std::string small_plan() {
    return std::string(CLUSTERSIM_SOURCE_DIR) + "/scenarios/plans/llama3-70b-h100-small.yaml";
}

std::string error_text(const fs::path& file) {
    try {
        read_serving_plan(file);
    } catch (const InputError& e) {
        std::string all;
        for (const auto& d : e.diagnostics()) all += format(d) + "\n";
        return all;
    }
    return "";
}

}  // namespace

TEST_CASE("the serving search picks the fewest GPUs meeting the objectives, and best.yaml reproduces its run") {
    SweepScratch scratch("serving-plan");
    PlanOptions options;
    options.out_dir = scratch.path / "out";
    options.jobs = 2;
    options.progress = ProgressStyle::none;
    const ServingPlanSpec spec = read_serving_plan(small_plan());
    const ServingPlanResult result = search_serving_plan(spec, options);

    REQUIRE(result.best);
    const ServingPlanRow& best = result.rows[*result.best];
    CHECK(best.meets);
    // Among the plans meeting the objectives, none has fewer GPUs than the best... unless it was
    // tried whole and failed.
    for (const auto& row : result.rows) {
        if (!row.meets || row.gpus >= best.gpus) continue;
        CHECK(std::any_of(result.verified.begin(), result.verified.end(),
                          [&](const VerifiedPlan& v) { return v.plan == row.plan && !v.meets; }));
    }
    // Each plan's pools: a prefill pool alone meets the TTFT objective, a decode pool the TPOT one.
    for (const auto& row : result.rows) {
        if (!row.meets) continue;
        CHECK(row.ttft_ms <= spec.ttft_slo->ms());
        CHECK(row.tpot_ms <= spec.tpot_slo->ms());
    }
    // Every counted plan uses at least the fewest instances of its candidates.
    for (const auto& row : result.rows) {
        const auto& first = row.mode == "colocated" ? result.colocated : result.prefill;
        CHECK(row.first_instances >= *first[static_cast<std::size_t>(row.first_candidate)].fewest);
    }

    // The whole-deployment run meets the objectives, and best.yaml run again gives the same numbers.
    const VerifiedPlan& v = result.verified.back();
    REQUIRE(v.meets);
    CHECK(v.summary["ttft_ms_p90"].get<double>() <= 1000.0);
    CHECK(v.summary["tpot_ms_p90"].get<double>() <= 50.0);
    REQUIRE(fs::is_regular_file(options.out_dir / "best.yaml"));
    LoadedScenario again = load_scenario(options.out_dir / "best.yaml", std::nullopt);
    RunOutput out(scratch.path / "rerun");
    RunOptions run_options;
    run_options.seed = again.seed;
    const auto summary = again.runner->run(run_options, out);
    for (const char* key : {"ttft_ms_p90", "tpot_ms_p90", "tokens_per_s_per_gpu", "goodput_requests_per_s",
                            "completed_requests", "output_tokens_per_s_per_decoding_request"})
        CHECK(summary[key] == v.summary[key]);

    // Every candidate is accounted for: TP2 cannot hold Llama 3 70B's long prompts in its KV cache.
    for (const auto* list : {&result.prefill, &result.decode, &result.colocated})
        for (const auto& c : *list) {
            const bool sized = c.fewest.has_value();
            CHECK(sized != (!c.infeasible.empty() || !c.invalid.empty()));
            if (c.description.find("tp: 2}") != std::string::npos) {
                CHECK_FALSE(sized);
                CHECK(c.infeasible.find("KV cache") != std::string::npos);
            }
        }
    const std::string report = read_text(options.out_dir / "report.md");
    CHECK(report.find(fmt::format("**Answer.** Plan {}:", best.plan)) != std::string::npos);
    CHECK(lines_of(read_text(options.out_dir / "plans.csv")).size() == result.rows.size() + 1);
}

TEST_CASE("a whole deployment larger than the base's fabric runs on the fabric grown to hold it") {
    SweepScratch scratch("serving-plan-grown");
    // The small search's base on one host: its best plans need more.
    YAML::Node base =
        YAML::LoadFile(std::string(CLUSTERSIM_SOURCE_DIR) + "/scenarios/serving/llama3-70b-h100-colocated.yaml");
    base["topology"]["hosts"] = 1;
    std::ofstream(scratch.path / "one-host.yaml") << YAML::Dump(base) << "\n";
    YAML::Node plan = YAML::LoadFile(small_plan());
    plan["base"] = "one-host.yaml";
    plan.remove("colocated");
    std::ofstream(scratch.path / "plan.yaml") << YAML::Dump(plan) << "\n";
    PlanOptions options;
    options.out_dir = scratch.path / "out";
    options.jobs = 2;
    options.progress = ProgressStyle::none;
    const ServingPlanResult result = search_serving_plan(read_serving_plan(scratch.path / "plan.yaml"), options);
    REQUIRE(result.best);
    const ServingPlanRow& best = result.rows[*result.best];
    REQUIRE(best.gpus > 8);
    const YAML::Node written = YAML::LoadFile((options.out_dir / "best.yaml").string());
    CHECK(written["topology"]["hosts"].as<int>() == (best.gpus + 7) / 8);
    // On a fabric that holds it, the deployment's KV moves as flows on the network model.
    CHECK(result.verified.back().summary["kv_transfer"]["model"] == "network");
}

TEST_CASE("a bad serving plan file is reported with line and key") {
    SweepScratch scratch("serving-plan-errors");
    const fs::path file = scratch.path / "bad.yaml";
    std::ofstream(file) << "kind: serving_plan\n"
                           "base: "
                        << CLUSTERSIM_SOURCE_DIR
                        << "/scenarios/serving/llama3-70b-h100-colocated.yaml\n"
                           "load: {rate_per_s: -3}\n"
                           "slo: {tpot: 50ms, percentile: 95}\n"
                           "colocated:\n"
                           "  grid:\n"
                           "    layout: {tp: 4}\n"
                           "    max_bach: [1]\n"
                           "prefill: {grid: {layout: [{tp: 4}]}}\n"
                           "verfy: 2\n";
    const std::string errors = error_text(file);
    CHECK(errors.find("bad.yaml:3:") != std::string::npos);  // the negative rate
    CHECK(errors.find("load.rate_per_s") != std::string::npos);
    CHECK(errors.find("slo.percentile") != std::string::npos);
    CHECK(errors.find("bad.yaml:7:") != std::string::npos);  // a value that is not a list
    CHECK(errors.find("colocated.grid.layout") != std::string::npos);
    CHECK(errors.find("needs both `prefill` and `decode`") != std::string::npos);
    CHECK(errors.find("verify") != std::string::npos);  // did you mean

    // A base that is not a serving scenario with a synthetic workload.
    std::ofstream(file) << "kind: serving_plan\n"
                           "base: "
                        << CLUSTERSIM_SOURCE_DIR
                        << "/scenarios/training/megatron-gpt-1700m.yaml\n"
                           "load: {rate_per_s: 3}\n"
                           "slo: {tpot: 50ms}\n"
                           "colocated: {grid: {max_batch: [8]}}\n";
    CHECK(error_text(file).find("is not a serving scenario") != std::string::npos);

    // A load given twice over, or not at all.
    const std::string base =
        std::string("base: ") + CLUSTERSIM_SOURCE_DIR + "/scenarios/serving/llama3-70b-h100-colocated.yaml\n";
    std::ofstream(file) << "kind: serving_plan\n"
                        << base
                        << "load: {rate_per_s: 3, input_tokens_per_day: 1e9}\n"
                           "slo: {tpot: 50ms}\n"
                           "colocated: {grid: {max_batch: [8]}}\n";
    std::string errors2 = error_text(file);
    CHECK(errors2.find("bad.yaml:3:") != std::string::npos);
    CHECK(errors2.find("give exactly one of rate_per_s, input_tokens_per_day and output_tokens_per_day; found 2") !=
          std::string::npos);
    std::ofstream(file) << "kind: serving_plan\n"
                        << base
                        << "load: {}\n"
                           "slo: {tpot: 50ms}\n"
                           "colocated: {grid: {max_batch: [8]}}\n";
    CHECK(error_text(file).find("found 0") != std::string::npos);

    // A base whose rate varies over a day cannot be sized for one rate.
    YAML::Node diurnal =
        YAML::LoadFile(std::string(CLUSTERSIM_SOURCE_DIR) + "/scenarios/serving/llama3-70b-h100-colocated.yaml");
    diurnal["workload"]["arrival"]["rate_profile"]["period"] = "24h";
    diurnal["workload"]["arrival"]["rate_profile"]["multipliers"] = std::vector<double>{0.5, 1.5};
    std::ofstream(scratch.path / "diurnal.yaml") << YAML::Dump(diurnal) << "\n";
    std::ofstream(file) << "kind: serving_plan\nbase: diurnal.yaml\n"
                           "load: {rate_per_s: 3}\n"
                           "slo: {tpot: 50ms}\n"
                           "colocated: {grid: {max_batch: [8]}}\n";
    CHECK(error_text(file).find("only the start of the arrival's rate_profile") != std::string::npos);
}

TEST_CASE("a load in tokens a day is served as requests per second at the base's mean length") {
    SweepScratch scratch("serving-plan-daily");
    const fs::path file = scratch.path / "daily.yaml";
    // The base draws prompts from a lognormal (median 1,020, sigma 1, within 16 and 16,384 tokens)
    // and outputs from another (median 129, sigma 1, within 1 and 4,096).
    const std::string base =
        std::string("base: ") + CLUSTERSIM_SOURCE_DIR + "/scenarios/serving/llama3-70b-h100-colocated.yaml\n";
    const auto plan_with = [&](const std::string& load) {
        std::ofstream(file) << "kind: serving_plan\n"
                            << base << "load: {" << load << "}\n"
                            << "slo: {tpot: 50ms}\n"
                               "colocated: {grid: {max_batch: [8]}}\n";
        return read_serving_plan(file);
    };
    const ServingPlanSpec by_input = plan_with("input_tokens_per_day: 1.0e10");
    CHECK(by_input.load.basis == "input_tokens_per_day");
    // The mean prompt is the lognormal's median x exp(1/2), a little less for the clamp at 16,384
    // (LengthDistribution::mean, tested in tests/serving).
    CHECK(by_input.load.mean_tokens < 1020 * std::exp(0.5));
    CHECK(by_input.load.mean_tokens == Approx(1020 * std::exp(0.5)).epsilon(0.02));
    CHECK(by_input.rate_per_s == Approx(1.0e10 / 86400.0 / by_input.load.mean_tokens).epsilon(1e-12));
    const ServingPlanSpec by_output = plan_with("output_tokens_per_day: 1.0e9");
    CHECK(by_output.load.basis == "output_tokens_per_day");
    CHECK(by_output.load.mean_tokens < 129 * std::exp(0.5));
    CHECK(by_output.load.mean_tokens == Approx(129 * std::exp(0.5)).epsilon(0.02));
    CHECK(by_output.rate_per_s == Approx(1.0e9 / 86400.0 / by_output.load.mean_tokens).epsilon(1e-12));
    const ServingPlanSpec by_rate = plan_with("rate_per_s: 5");
    CHECK(by_rate.load.basis.empty());
    CHECK(by_rate.rate_per_s == 5.0);
}
