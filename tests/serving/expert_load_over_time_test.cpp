// Expert load over a serving run: drift and EPLB rebalancing in scenarios, the pool held while weights move, and the
// errors.
#include "sim/scenario/scenario.hpp"
#include "sim/serving/serving_simulator.hpp"
#include "tests/serving/serving_test_support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace clustersim;
using namespace clustersim::literals;
using Catch::Matchers::Contains;
using clustersim::serving_testing::errors_of;
using clustersim::serving_testing::read;
using clustersim::serving_testing::temp_path;
using clustersim::serving_testing::TempFile;

namespace {

namespace fs = std::filesystem;

// Qwen3-30B-A3B on one 8-GPU host (DP8 + EP8, 8 redundant experts), power-law routing; `expert_load`
// is the lines added under the routing keys.
std::string scenario(const std::string& expert_load, const std::string& model = "qwen3-30b-a3b",
                     const std::string& layout = "{tp: 8, attn_dp: 8, ep: 8}", int redundant = 8) {
    return fmt::format(R"(kind: serving
model: {}
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 1}}
deployment:
  mode: colocated
  colocated:
    layout: {}
    redundant_experts: {}
expert_load:
  routing: power_law
  exponent: 1.0
{}workload:
  kind: synthetic
  arrival: {{rate_per_s: 10}}
  requests: 120
  input_tokens: {{distribution: fixed, value: 512}}
  output_tokens: {{distribution: fixed, value: 32}}
)",
                       model, layout, redundant, expert_load);
}

struct Run {
    nlohmann::ordered_json summary;
    std::string expert_load_csv, resolved;
    bool csv_written = false;
};

Run run(const std::string& text, const std::string& name) {
    TempFile f(name + ".yaml", text);
    LoadedScenario s = load_scenario(f.path(), std::nullopt);
    const fs::path dir = temp_path(name);
    Run r;
    r.resolved = s.resolved_yaml;
    {
        RunOutput out(dir);
        r.summary = s.runner->run(RunOptions{}, out);
        out.commit();
    }
    r.csv_written = fs::exists(dir / "expert_load.csv");
    if (r.csv_written) r.expert_load_csv = read(dir / "expert_load.csv");
    fs::remove_all(dir);
    return r;
}

std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("a drifting expert load with periodic EPLB is reported per pool, and rebalancing keeps it lower") {
    const Run rebalanced =
        run(scenario("  drift: {interval: 1s, share: 0.25}\n  rebalance: {interval: 2s}\n"), "eplb-on");
    const Run stale = run(scenario("  drift: {interval: 1s, share: 0.25}\n"), "eplb-off");
    const auto& on = rebalanced.summary["pools"][0]["expert_load_over_time"];
    const auto& off = stale.summary["pools"][0]["expert_load_over_time"];
    const double end_s = rebalanced.summary["simulated_s"].get<double>();
    REQUIRE(end_s > 6);
    CHECK(on["drift_steps"].get<std::int64_t>() == static_cast<std::int64_t>(end_s));
    CHECK(on["rebalances"].get<std::int64_t>() == static_cast<std::int64_t>(end_s / 2));
    CHECK(on["rebalance"]["fetch_bandwidth_from"].get<std::string>() ==
          "topology: NVLink per GPU (the EP group is in one host)");
    CHECK(on["pause_s_total"].get<double>() > 0);
    CHECK(on["bytes_moved_per_instance"].get<double>() >= on["busiest_gpu_bytes_total"].get<double>());
    CHECK(on["busiest_gpu_bytes_total"].get<double>() > 0);
    CHECK(on["imbalance_initial"].get<double>() == rebalanced.summary["pools"][0]["expert_imbalance"].get<double>());
    // Both start from the same placement and drift alike; only the rebalanced one follows the loads.
    CHECK(on["imbalance_initial"].get<double>() == off["imbalance_initial"].get<double>());
    CHECK(on["imbalance_mean"].get<double>() < off["imbalance_mean"].get<double>());
    CHECK(off["imbalance_mean"].get<double>() > off["imbalance_initial"].get<double>());
    CHECK(off["rebalances"].get<std::int64_t>() == 0);
    CHECK_FALSE(off.contains("rebalance"));
    CHECK(off["pause_s_total"].get<double>() == 0);
    // One CSV row per step, the start first.
    REQUIRE(rebalanced.csv_written);
    CHECK(lines(rebalanced.expert_load_csv) ==
          static_cast<std::size_t>(2 + on["drift_steps"].get<int>() + on["rebalances"].get<int>()));
    CHECK_THAT(
        rebalanced.expert_load_csv,
        Contains("pool,time_s,event,imbalance,busiest_gpu_bytes,bytes_moved,pause_ms\ncolocated,0.000000,start,"));
    CHECK_THAT(rebalanced.expert_load_csv, Contains(",rebalance,"));
    CHECK_THAT(rebalanced.resolved, Contains("rebalance") && Contains("interval: 2s"));
}

TEST_CASE("with share 0 the timeline keeps the static imbalance, and without the keys nothing new is written") {
    const Run plain = run(scenario(""), "eplb-plain");
    const Run still = run(scenario("  drift: {interval: 1s, share: 0}\n  rebalance: {interval: 2s}\n"), "eplb-still");
    const auto& pool = plain.summary["pools"][0];
    CHECK_FALSE(pool.contains("expert_load_over_time"));
    CHECK_FALSE(plain.csv_written);
    CHECK_THAT(plain.resolved, !Contains("drift") && !Contains("rebalance"));
    // 8 redundant experts: both place by EPLB from the same loads, which never change here.
    const auto& t = still.summary["pools"][0]["expert_load_over_time"];
    CHECK(t["imbalance_initial"].get<double>() == pool["expert_imbalance"].get<double>());
    CHECK(t["imbalance_mean"].get<double>() == Approx(pool["expert_imbalance"].get<double>()));
    CHECK(t["imbalance_max"].get<double>() == Approx(pool["expert_imbalance"].get<double>()));
    CHECK(t["rebalances"].get<std::int64_t>() > 0);
    CHECK(t["bytes_moved_per_instance"].get<double>() == 0);
    CHECK(t["pause_s_total"].get<double>() == 0);
    // Priced at the level of the imbalance (a grid of 0.005): within 0.25% of the static run's iterations.
    CHECK(still.summary["tpot_ms_p50"].get<double>() ==
          Approx(plain.summary["tpot_ms_p50"].get<double>()).epsilon(0.01));
}

TEST_CASE("an instance held by its pool starts no iteration until the hold ends") {
    // A hold until 1 s: a request arriving at 0 starts its prefill at 1 s.
    struct Hold : PoolAvailability {
        Time available_from(Time now) override { return std::max(now, Time::from_seconds(1)); }
    };
    ServingConfig c;
    PoolSpec p;
    p.name = "colocated";
    p.instance.kv_capacity_tokens = 100000;
    p.instance.cost = std::make_shared<FixedBatchCostModel>(5_ms, 20_us, 50_us);
    p.availability = std::make_shared<Hold>();
    c.pools.push_back(p);
    std::vector<Request> requests(1);
    requests[0].id = 0;
    requests[0].input_tokens = 100;
    requests[0].output_tokens = 3;
    VectorRequestSource source(requests);
    Simulator sim(1);
    ServingSimulator serving(sim, c, source);
    std::vector<Time> starts;
    serving.on_iteration().subscribe([&](const IterationRecord& r) { starts.push_back(r.start); });
    serving.start();
    sim.run();
    REQUIRE(starts.size() == 3);
    CHECK(starts[0] == 1_s);
    CHECK(starts[1] == starts[0] + 5_ms + 2_ms);  // 100 prefill tokens, then decode steps back to back
    CHECK(serving.summary().completed == 1);
}

TEST_CASE("bad expert load over time is an error naming the key and what was expected") {
    auto errors = [](const std::string& text, const std::string& name) {
        TempFile f(name + ".yaml", text);
        return std::make_pair(errors_of(f.path()), f.path());
    };
    {
        const auto [e, path] = errors(scenario("  drift: {interval: 1s, share: 1.5}\n"), "share");
        CHECK_THAT(e, Contains(path + ":13:") && Contains("expert_load.drift.share") &&
                          Contains("expected a value from 0 to 1"));
    }
    {
        const auto [e, path] = errors(scenario("  drift: {interval: -5s, share: 0.1}\n"), "negative");
        CHECK_THAT(e, Contains("expert_load.drift.interval") && Contains("not negative"));
    }
    {
        const auto [e, path] = errors(scenario("  rebalance: {interval: 0s}\n"), "zero");
        CHECK_THAT(e, Contains("expert_load.rebalance.interval") && Contains("positive"));
    }
    {
        std::string text = scenario("  rebalance: {interval: 10s}\n");
        text.replace(text.find("  routing: power_law\n  exponent: 1.0\n"), 36, "");
        const auto [e, path] = errors(text, "balanced");
        CHECK_THAT(e,
                   Contains("expert_load.rebalance") && Contains("routing balanced") && Contains("routing: power_law"));
    }
    {
        std::string text = scenario("  drift: {interval: 1s, share: 0.1}\n");
        text.replace(text.find("gpu: h100-sxm"), 13,
                     "gpu: h100-sxm\nbatch_cost: {kind: fixed, base: 5ms, "
                     "per_prefill_token: 20us, per_decode_token: 50us}");
        const auto [e, path] = errors(text, "fixed");
        CHECK_THAT(e, Contains("expert_load.drift") && Contains("kind fixed"));
    }
    {
        const auto [e, path] = errors(scenario("  rebalance: {interval: 10s}\n", "llama3-8b", "{tp: 1}", 0), "dense");
        CHECK_THAT(e, Contains("expert_load.rebalance") && Contains("no routed experts"));
    }
    {
        const auto [e, path] = errors(
            scenario("  rebalance: {interval: 10s}\n", "qwen3-30b-a3b", "{tp: 8, ep: 1, expert_tp: 8}", 0), "tp");
        CHECK_THAT(e, Contains("expert_load.rebalance") && Contains("no pool has ep > 1"));
    }
    {
        const auto [e, path] = errors(scenario("  rebalance: {interval: 10s, bandwith: 10GB/s}\n"), "typo");
        CHECK_THAT(e, Contains("did you mean \"bandwidth\""));
    }
}

TEST_CASE("a rebalance's fetch bandwidth can be given, and each pause is the busiest GPU's bytes over it") {
    const Run r =
        run(scenario("  drift: {interval: 1s, share: 0.25}\n  rebalance: {interval: 2s, bandwidth: 10GB/s}\n"),
            "eplb-bandwidth");
    const auto& t = r.summary["pools"][0]["expert_load_over_time"];
    CHECK(t["rebalance"]["fetch_bandwidth_from"].get<std::string>() == "expert_load.rebalance.bandwidth");
    CHECK(t["rebalance"]["fetch_bandwidth"].get<std::string>() == "10GB/s");
    // Pauses of a few hundred ms, 2 s apart: none overlaps another or the end of the run.
    CHECK(t["pause_s_total"].get<double>() == Approx(t["busiest_gpu_bytes_total"].get<double>() / 10e9));
    CHECK(t["pause_s_total"].get<double>() > 0);
}
