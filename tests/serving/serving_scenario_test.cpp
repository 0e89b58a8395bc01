// The `serving` scenario kind: loading with clear errors, running, and the shipped scenarios.
#include "sim/scenario/scenario.hpp"
#include "tests/serving/serving_test_support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace clustersim;
using Catch::Matchers::Contains;
using clustersim::serving_testing::errors_of;
using clustersim::serving_testing::read;
using clustersim::serving_testing::temp_path;
using clustersim::serving_testing::TempFile;

namespace {

namespace fs = std::filesystem;

const std::string kFixedScenario = R"(kind: serving
model: llama3-8b
gpu: h100-sxm
topology: {file: h100-ib-rail, hosts: 1}
batch_cost: {kind: fixed, base: 5ms, per_prefill_token: 20us, per_decode_token: 50us}
deployment:
  mode: colocated
  colocated:
    instances: 2
    layout: {tp: 1}
    max_batch: 32
workload:
  kind: synthetic
  arrival: {process: gamma, rate_per_s: 5, cv: 2}
  requests: 200
  input_tokens: {distribution: uniform, min: 100, max: 2000}
  output_tokens: {distribution: fixed, value: 50}
slo: {ttft: 1s, tpot: 60ms}
)";

std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("a serving scenario runs and writes its summary, requests and iterations") {
    TempFile f("fixed.yaml", kFixedScenario);
    LoadedScenario s = load_scenario(f.path(), std::nullopt);
    const fs::path dir = temp_path("run");
    nlohmann::ordered_json summary;
    {
        RunOutput out(dir);
        RunOptions options;
        options.trace = true;
        summary = s.runner->run(options, out);
        out.commit();
    }
    for (const char* key :
         {"ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99", "e2e_s_p50",
          "e2e_s_p90", "e2e_s_p99", "output_tokens_per_s_per_request_mean", "input_tokens_per_s_per_node_prefill",
          "output_tokens_per_s_per_node_decode", "tokens_per_s_per_gpu", "goodput_requests_per_s",
          "kv_cache_utilization_mean", "completed_requests", "provenance"})
        CHECK(summary.contains(key));
    CHECK(summary["completed_requests"].get<int>() == 200);
    CHECK(lines(read(dir / "requests.csv")) == 201);
    CHECK(lines(read(dir / "iterations.csv")) > 1);
    const std::string svg = read(dir / "latency.svg");
    CHECK_THAT(svg, Contains("<svg") && Contains("TTFT") && Contains("</svg>"));
    const auto trace = nlohmann::json::parse(read(dir / "trace.json"));
    CHECK(trace.dump().find("request 199") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("the same serving scenario and seed give identical outputs") {
    TempFile f("fixed-determinism.yaml", kFixedScenario);
    auto run_once = [&](const std::string& name) {
        LoadedScenario s = load_scenario(f.path(), std::nullopt);
        const fs::path dir = temp_path(name);
        {
            RunOutput out(dir);
            s.runner->run(RunOptions{}, out);
            out.commit();
        }
        std::string text = read(dir / "requests.csv") + read(dir / "iterations.csv") + read(dir / "summary.json");
        fs::remove_all(dir);
        return text;
    };
    CHECK(run_once("clustersim-serving-test-a") == run_once("clustersim-serving-test-b"));
}

TEST_CASE("a typo in a serving scenario is an error naming the file, line and the right key") {
    std::string text = kFixedScenario;
    text.replace(text.find("max_batch"), 9, "max_bacth");
    TempFile f("typo.yaml", text);
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains(f.path() + ":11:") && Contains("max_bacth") && Contains("did you mean \"max_batch\""));
}

TEST_CASE("a serving scenario with bad values reports them all with their keys") {
    std::string text = kFixedScenario;
    text.replace(text.find("process: gamma"), 14, "process: gama");
    text.replace(text.find("min: 100"), 8, "min: -4");
    TempFile f("bad-values.yaml", text);
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains("workload.arrival.process") && Contains("gamma"));
    CHECK_THAT(errors, Contains("workload.input_tokens.min"));
}

TEST_CASE("weights that do not fit are reported against the deployment") {
    std::string text = kFixedScenario;
    text.replace(text.find("model: llama3-8b"), 16, "model: llama3-70b");
    TempFile f("too-big.yaml", text);
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains("deployment") && Contains("do not fit"));
}

TEST_CASE("a trace workload with a bad row points at the trace file and line") {
    TempFile trace("bad-trace.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n0.0,100,10\n0.5,100,zero\n");
    std::string text = kFixedScenario;
    const auto start = text.find("workload:");
    const auto end = text.find("slo:");
    text.replace(start, end - start, "workload:\n  kind: trace\n  format: azure_csv\n  file: " + trace.path() + "\n");
    TempFile f("trace.yaml", text);
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains(trace.path() + ":3:") && Contains("GeneratedTokens"));
}

TEST_CASE("every shipped serving scenario loads") {
    const fs::path dir = fs::path(CLUSTERSIM_SOURCE_DIR) / "scenarios" / "serving";
    int count = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".yaml") continue;
        INFO(e.path().string());
        CHECK(errors_of(e.path().string()).empty());
        ++count;
    }
    CHECK(count >= 1);
}

TEST_CASE("the default serving scenario, priced at the execution level, is deterministic") {
    const std::string path = std::string(CLUSTERSIM_SOURCE_DIR) + "/scenarios/serving/llama3-70b-h100-colocated.yaml";
    auto run_once = [&](const std::string& name) {
        LoadedScenario s = load_scenario(path, std::nullopt);
        const fs::path dir = temp_path(name);
        nlohmann::ordered_json summary;
        {
            RunOutput out(dir);
            summary = s.runner->run(RunOptions{}, out);
            out.commit();
        }
        std::string text = read(dir / "requests.csv") + read(dir / "summary.json");
        fs::remove_all(dir);
        return std::make_pair(text, summary);
    };
    const auto [a, summary] = run_once("clustersim-serving-test-default-a");
    const auto [b, unused] = run_once("clustersim-serving-test-default-b");
    CHECK(a == b);
    CHECK(summary["completed_requests"].get<std::int64_t>() + summary["rejected_requests"].get<std::int64_t>() ==
          summary["arrived_requests"].get<std::int64_t>());
    CHECK(summary["provenance"]["colocated"]["distinct_shapes"].get<std::int64_t>() > 0);
}

namespace {

// A serving scenario given as text, run: the scenario with every default filled in, and its summary.
struct TextRun {
    std::string resolved_yaml;
    nlohmann::ordered_json summary;
};

// Runs a serving scenario given as text (outputs in a temporary folder, removed).
TextRun run_text(const std::string& name, const std::string& text) {
    TempFile f(name + ".yaml", text);
    LoadedScenario s = load_scenario(f.path(), std::nullopt);
    const fs::path dir = temp_path(name);
    TextRun run{s.resolved_yaml, {}};
    {
        RunOutput out(dir);
        run.summary = s.runner->run(RunOptions{}, out);
        out.commit();
    }
    fs::remove_all(dir);
    return run;
}

nlohmann::ordered_json run_summary(const std::string& name, const std::string& text) {
    return run_text(name, text).summary;
}

}  // namespace

TEST_CASE("a skewed expert load raises the busiest GPU's share, and EPLB's redundant experts lower it") {
    auto imbalance = [](int redundant) {
        const std::string text = fmt::format(R"(kind: serving
model: qwen3-30b-a3b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 1}}
deployment:
  mode: colocated
  colocated:
    layout: {{tp: 8, attn_dp: 8, ep: 8}}
    redundant_experts: {}
expert_load: {{routing: power_law, exponent: 0.8}}
workload:
  kind: synthetic
  arrival: {{rate_per_s: 2}}
  requests: 10
  input_tokens: {{distribution: fixed, value: 512}}
  output_tokens: {{distribution: fixed, value: 8}}
)",
                                             redundant);
        return run_summary(fmt::format("skew-{}", redundant), text)["pools"][0]["expert_imbalance"].get<double>();
    };
    const double plain = imbalance(0);
    const double eplb = imbalance(8);
    CHECK(plain > 1.05);
    CHECK(eplb < plain);
    CHECK(eplb >= 1.0);
}

TEST_CASE("routing noise of small decode batches slows an expert-parallel deployment, and can be turned off") {
    auto run = [](const char* noise) {
        const std::string text = fmt::format(R"(kind: serving
model: qwen3-30b-a3b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 1}}
deployment:
  mode: colocated
  colocated:
    layout: {{tp: 8, attn_dp: 8, ep: 8}}
expert_load: {{routing: balanced, batch_noise: {}}}
workload:
  kind: synthetic
  arrival: {{rate_per_s: 4}}
  requests: 12
  input_tokens: {{distribution: fixed, value: 256}}
  output_tokens: {{distribution: fixed, value: 32}}
)",
                                             noise);
        return run_summary(fmt::format("noise-{}", noise), text);
    };
    const auto noisy = run("true");
    const auto quiet = run("false");
    // Balanced routing: the expected loads are even, and only the noise of a few tokens per GPU unbalances them.
    CHECK(noisy["pools"][0]["expert_imbalance"].get<double>() == Approx(1.0));
    CHECK(noisy["provenance"]["colocated"]["routing_noise"]["mean_factor"].get<double>() > 1.1);
    CHECK_FALSE(quiet["provenance"]["colocated"].contains("routing_noise"));
    CHECK(noisy["tpot_ms_p50"].get<double>() > quiet["tpot_ms_p50"].get<double>());
}

TEST_CASE("a batch_noise that is not a boolean is an error") {
    std::string text = kFixedScenario;
    text += "expert_load: {routing: balanced, batch_noise: sometimes}\n";
    TempFile f("bad-noise.yaml", text);
    CHECK_THAT(errors_of(f.path()), Contains("batch_noise"));
}

TEST_CASE("power-law routing without an exponent is an error") {
    std::string text = kFixedScenario;
    text += "expert_load: {routing: power_law}\n";
    TempFile f("no-exponent.yaml", text);
    CHECK_THAT(errors_of(f.path()), Contains("expert_load") && Contains("needs an `exponent`"));
}

TEST_CASE("a scenario with multi-turn sessions writes follow-up turns to requests.csv") {
    std::string text = kFixedScenario;
    const std::string anchor = "  output_tokens: {distribution: fixed, value: 50}\n";
    text.replace(text.find(anchor), anchor.size(),
                 anchor +
                     "  sessions:\n    turns: {distribution: fixed, value: 3}\n    think_time: 10s\n"
                     "    new_input_tokens: {distribution: fixed, value: 40}\n"
                     "    output_tokens: {distribution: fixed, value: 30}\n");
    TempFile f("sessions.yaml", text);
    LoadedScenario s = load_scenario(f.path(), std::nullopt);
    const fs::path dir = temp_path("sessions");
    nlohmann::ordered_json summary;
    {
        RunOutput out(dir);
        summary = s.runner->run(RunOptions{}, out);
        out.commit();
    }
    CHECK(summary["arrived_requests"].get<int>() == 3 * 200);
    CHECK(summary["completed_requests"].get<int>() == 3 * 200);
    CHECK(read(dir / "requests.csv").find(",2,completed,") != std::string::npos);  // third turns
    fs::remove_all(dir);
}

namespace {

// One colocated instance whose decode step costs 5 ms + 50 us per token: a decoding request runs at
// 1 / (5 ms + 50 us x batch), so 50 tokens/s needs a batch near 300.
std::string load_search_scenario(const std::string& load) {
    return R"(kind: serving
model: llama3-8b
gpu: h100-sxm
topology: {file: h100-ib-rail, hosts: 1}
batch_cost: {kind: fixed, base: 5ms, per_prefill_token: 5us, per_decode_token: 50us}
deployment:
  mode: colocated
  colocated:
    instances: 1
    layout: {tp: 1}
    max_batch: 100000
    token_budget: 100000
    kv_capacity_tokens: 10000000   # not binding: the load alone sets the batch
workload:
  kind: synthetic
  arrival: {process: poisson, rate_per_s: 10}
  duration: 60s
  input_tokens: {distribution: fixed, value: 100}
  output_tokens: {distribution: fixed, value: 200}
warmup: 20s
iterations_csv: false
)" + load;
}

nlohmann::ordered_json run_scenario(const std::string& path, const std::string& name) {
    LoadedScenario s = load_scenario(path, std::nullopt);
    RunOutput out(temp_path(name));
    RunOptions options;
    return s.runner->run(options, out);
}

}  // namespace

TEST_CASE("the speed of a decoding request counts the window only, by Little's law") {
    TempFile f("speed.yaml", load_search_scenario(""));
    const auto j = run_scenario(f.path(), "speed");
    const double speed = j["output_tokens_per_s_per_decoding_request"].get<double>();
    // At 10 requests/s of 200 tokens each about 10 x 200 / speed requests decode at once; the speed
    // is 1 / (5 ms + 50 us x batch) up to the prefill tokens of mixed iterations.
    REQUIRE(speed > 0);
    const double batch = 10.0 * 200.0 / speed;
    CHECK(speed == Approx(1.0 / (5e-3 + 50e-6 * batch)).epsilon(0.05));
    CHECK(j["offered_rate_per_s"].get<double>() == 10.0);
    CHECK_FALSE(j.contains("load_search"));
    // A steady state: as many leave as arrive over the window.
    CHECK(std::abs(j["in_system_growth_per_s"].get<double>()) < 0.5);
}

TEST_CASE("a load search finds the arrival rate at which a decoding request runs at the target speed") {
    TempFile f("search.yaml", load_search_scenario(R"(load:
  search: output_speed_per_request
  target: 50
  min: 5
  max: 200
  tolerance: 0.01
  max_runs: 30
)"));
    const auto j = run_scenario(f.path(), "search");
    REQUIRE(j.contains("load_search"));
    const auto& l = j["load_search"];
    CHECK(l["converged"].get<bool>());
    CHECK(l["runs"].size() >= 3);
    // The final run is at the rate found, and its speed is the target.
    CHECK(j["offered_rate_per_s"].get<double>() == l["rate_per_s"].get<double>());
    CHECK(j["output_tokens_per_s_per_decoding_request"].get<double>() == Approx(50).epsilon(0.01));
    // 50 tokens/s: steps of 20 ms, a batch of (20 - 5) / 0.05 = 300 less the prefill share, so about
    // 300 x 50 / 200 = 75 requests/s.
    CHECK(l["rate_per_s"].get<double>() == Approx(75).epsilon(0.1));
    // The decode throughput is the offered load: 199 decode tokens per request, on 1/8 of a node.
    CHECK(j["output_tokens_per_s_per_node_decode"].get<double>() / 8 ==
          Approx(l["rate_per_s"].get<double>() * 199).epsilon(0.05));
}

TEST_CASE("a load search reports a bracket that does not straddle the target, and needs a synthetic workload") {
    TempFile f("bracket.yaml",
               load_search_scenario(R"(load: {search: output_speed_per_request, target: 50, min: 1, max: 2}
)"));
    LoadedScenario s = load_scenario(f.path(), std::nullopt);
    RunOutput out(temp_path("bracket"));
    CHECK_THROWS_WITH(s.runner->run(RunOptions{}, out), Contains("widen the bracket"));
    TempFile g("bad-load.yaml",
               load_search_scenario(R"(load: {search: output_speed_per_request, target: 50, min: 3, max: 2, speed: 1}
)"));
    const std::string errors = errors_of(g.path());
    CHECK_THAT(errors, Contains("max must be above min"));
    CHECK_THAT(errors, Contains("speed"));
}

TEST_CASE("a load search over the decode concurrency runs that many requests at once, closed loop") {
    // 200 requests/s is far above what 300 requests at 50 tokens/s serve (75/s), so the instance
    // always has waiting requests and runs exactly max_batch of them.
    std::string text = load_search_scenario(R"(load:
  search: output_speed_per_request
  over: decode_concurrency
  target: 50
  min: 10
  max: 2000
)");
    text.replace(text.find("rate_per_s: 10"), 14, "rate_per_s: 200");
    TempFile f("concurrency.yaml", text);
    const auto j = run_scenario(f.path(), "concurrency");
    const auto& l = j["load_search"];
    CHECK(l["over"] == "decode_concurrency");
    CHECK(l["converged"].get<bool>());
    const double n = l["decode_concurrency"].get<double>();
    CHECK(j["pools"][0]["max_batch"].get<double>() == n);
    CHECK(j["output_tokens_per_s_per_decoding_request"].get<double>() == Approx(50).epsilon(0.01));
    // Steps of 20 ms hold 300 tokens less the prompts of the requests admitted in them.
    CHECK(n == Approx(300).epsilon(0.1));
    // Throughput = concurrency x speed (Little's law), on 1/8 of a node.
    CHECK(j["output_tokens_per_s_per_node_decode"].get<double>() / 8 == Approx(n * 50).epsilon(0.02));
    // Arrivals beyond what it serves pile up: 200 arrive per second and n x 50 / 200 leave.
    CHECK(j["in_system_growth_per_s"].get<double>() == Approx(200 - n * 50 / 200).epsilon(0.1));
}

TEST_CASE("a load search can target the decode throughput per node instead of the speed") {
    // The converse of the speed search above: 300 requests at 50 tokens/s on 1/8 of a node deliver
    // 120,000 tokens/s per node.
    std::string text = load_search_scenario(R"(load:
  search: output_tokens_per_s_per_node_decode
  over: decode_concurrency
  target: 120000
  min: 10
  max: 2000
  tolerance: 0.005
)");
    text.replace(text.find("rate_per_s: 10"), 14, "rate_per_s: 200");
    TempFile f("throughput.yaml", text);
    const auto j = run_scenario(f.path(), "throughput");
    const auto& l = j["load_search"];
    CHECK(l["search"] == "output_tokens_per_s_per_node_decode");
    CHECK(l["converged"].get<bool>());
    CHECK(j["output_tokens_per_s_per_node_decode"].get<double>() == Approx(120000).epsilon(0.005));
    // Little's law ties them: tokens/s on 1/8 of a node = concurrency x speed (the prompts admitted
    // in each step make it a little slower than 50 tokens/s at this throughput).
    const double n = l["decode_concurrency"].get<double>();
    const double speed = j["output_tokens_per_s_per_decoding_request"].get<double>();
    CHECK(120000.0 / 8 == Approx(n * speed).epsilon(0.01));
    CHECK(speed == Approx(1.0 / (5e-3 + 50e-6 * n)).epsilon(0.1));
}

TEST_CASE("a scenario reads the KV-aware router and per-instance session caches") {
    std::string text = kFixedScenario;
    const std::string anchor = "  output_tokens: {distribution: fixed, value: 50}\n";
    text.replace(text.find(anchor), anchor.size(),
                 anchor +
                     "  sessions:\n    turns: {distribution: fixed, value: 3}\n    think_time: 10s\n"
                     "    new_input_tokens: {distribution: fixed, value: 40}\n"
                     "    output_tokens: {distribution: fixed, value: 30}\n    cache: per_instance\n");
    text.replace(text.find("    max_batch: 32\n"), 17, "    max_batch: 32\n    router: kv_aware\n");
    TempFile f("kv-aware.yaml", text);
    const auto j = run_scenario(f.path(), "kv-aware");
    CHECK(j["pools"][0]["router"] == "kv_aware");
    CHECK(j["completed_requests"].get<int>() == 3 * 200);
    TempFile g("bad-cache.yaml", [&] {
        std::string bad = text;
        bad.replace(bad.find("cache: per_instance"), 19, "cache: everywhere");
        return bad;
    }());
    CHECK_THAT(errors_of(g.path()), Contains("per_instance"));
}

namespace {

// One prefill and one decode instance of 8 GPUs each (16 GPUs: 2 hosts of h100-ib-rail).
std::string disaggregated_scenario(int hosts, const std::string& kv_transfer) {
    return fmt::format(R"(kind: serving
model: llama3-8b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: {}}}
batch_cost: {{kind: fixed, base: 5ms, per_prefill_token: 20us, per_decode_token: 50us}}
deployment:
  mode: disaggregated
  prefill:
    layout: {{tp: 8}}
  decode:
    layout: {{tp: 8}}
{}workload:
  kind: synthetic
  arrival: {{process: poisson, rate_per_s: 5}}
  requests: 100
  input_tokens: {{distribution: uniform, min: 100, max: 2000}}
  output_tokens: {{distribution: fixed, value: 20}}
)",
                       hosts, kv_transfer.empty() ? "" : "  kv_transfer: " + kv_transfer + "\n");
}

}  // namespace

TEST_CASE("a disaggregated scenario moves KV as network flows when its topology holds it, else over FIFO links") {
    auto kv_of = [](int hosts, const std::string& kv, const std::string& name) {
        TempFile f(name + ".yaml", disaggregated_scenario(hosts, kv));
        LoadedScenario s = load_scenario(f.path(), std::nullopt);
        RunOutput out(temp_path(name));
        const auto summary = s.runner->run(RunOptions{}, out);
        CHECK(summary["completed_requests"].get<int>() == 100);
        return std::make_pair(s.resolved_yaml, summary["kv_transfer"]);
    };
    const auto [network_yaml, network] = kv_of(2, "", "kv-network");
    CHECK_THAT(network_yaml, Contains("model: network"));
    CHECK(network["model"] == "network");
    CHECK(network["transfers"].get<int>() == 100);
    CHECK(network["flows"].get<int>() == 100 * 8);  // attention TP8: one flow per rank
    CHECK(network["ms_mean"].get<double>() > 0);
    CHECK(network["busiest_link_utilization"].get<double>() > 0);
    CHECK(network["busiest_link_utilization"].get<double>() < 1);
    // One host cannot hold both instances: the FIFO link, as before.
    const auto [small_yaml, small] = kv_of(1, "", "kv-small");
    CHECK_THAT(small_yaml, Contains("model: fifo"));
    CHECK(small["model"] == "fifo");
    CHECK_FALSE(small.contains("busiest_link"));
    // FIFO keys choose the FIFO link.
    const auto [fifo_yaml, fifo] = kv_of(2, "{bandwidth: 100GB/s}", "kv-fifo");
    CHECK(fifo["model"] == "fifo");
    // Both see the same requests; the network's 8 x 50 GB/s beat the FIFO's 100 GB/s.
    CHECK(network["ms_mean"].get<double>() < fifo["ms_mean"].get<double>());
}

TEST_CASE("the network KV transfer on too small a topology is an error at the topology key naming the hosts needed") {
    TempFile f("kv-too-small.yaml", disaggregated_scenario(1, "{model: network}"));
    CHECK_THAT(errors_of(f.path()), Contains(f.path() + ":4:") && Contains("topology") &&
                                        Contains("prefill 1 x 8 + decode 1 x 8 = 16 GPUs need 2 hosts of 8 GPUs") &&
                                        Contains("model: fifo"));
}

TEST_CASE("KV transfer bandwidth and latency apply to the FIFO model only") {
    TempFile f("kv-network-bandwidth.yaml",
               disaggregated_scenario(2, "{model: network, bandwidth: 100GB/s, latency: 5us}"));
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains("deployment.kv_transfer.bandwidth") && Contains("applies to model fifo only"));
    CHECK_THAT(errors, Contains("deployment.kv_transfer.latency"));
    TempFile g("kv-bad-model.yaml", disaggregated_scenario(2, "{model: netwrok}"));
    CHECK_THAT(errors_of(g.path()), Contains("did you mean \"network\""));
}

// ---- prefix caches --------------------------------------------------------------------------------

namespace {

// kFixedScenario with multi-turn sessions and `prefix_cache` (empty: none) under the colocated pool.
std::string prefix_cache_scenario(const std::string& prefix_cache, const std::string& session_extra = "") {
    std::string text = kFixedScenario;
    const std::string anchor = "  output_tokens: {distribution: fixed, value: 50}\n";
    text.replace(text.find(anchor), anchor.size(),
                 anchor +
                     "  sessions:\n    turns: {distribution: fixed, value: 3}\n    think_time: 10s\n"
                     "    new_input_tokens: {distribution: fixed, value: 40}\n"
                     "    output_tokens: {distribution: fixed, value: 30}\n" +
                     session_extra);
    if (!prefix_cache.empty())
        text.replace(text.find("    max_batch: 32\n"), 17,
                     "    max_batch: 32\n    router: kv_aware\n    prefix_cache: " + prefix_cache + "\n");
    return text;
}

}  // namespace

TEST_CASE("a scenario's prefix cache reports its hit rate, evictions and load times in summary.json") {
    // Llama 3 8B in BF16 on one GPU keeps 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 128 KiB per
    // token: 1 GiB holds 8,192 tokens.
    TempFile f("prefix-cache.yaml",
               prefix_cache_scenario("{capacity: 1GiB, scope: per_instance, load_bandwidth: 25GB/s}"));
    const auto j = run_scenario(f.path(), "prefix-cache");
    REQUIRE(j.contains("prefix_cache"));
    const auto& c = j["prefix_cache"];
    CHECK(c["scope"] == "per_instance");
    CHECK(c["capacity_tokens"].get<std::int64_t>() == 8192);
    CHECK(c["block_tokens"].get<std::int64_t>() == 16);
    CHECK(c["capacity_blocks"].get<std::int64_t>() == 512);
    CHECK(c["block_identities"] == "sessions");
    CHECK(c["hit_rate"].get<double>() > 0);
    CHECK(c["hit_rate"].get<double>() < 1);
    CHECK(c["evicted_blocks"].get<std::int64_t>() > 0);
    CHECK(c["held_blocks"].get<std::int64_t>() <= 2 * 512);
    CHECK(c["load_bandwidth"] == "25GB/s");
    CHECK(c["loads"].get<std::int64_t>() > 0);
    CHECK(c["load_ms_mean"].get<double>() > 0);
    CHECK(j["completed_requests"].get<int>() == 3 * 200);
    // Without the key, no prefix-cache block (and the outputs of every scenario are as before).
    TempFile g("no-prefix-cache.yaml", prefix_cache_scenario(""));
    CHECK_FALSE(run_scenario(g.path(), "no-prefix-cache").contains("prefix_cache"));
}

TEST_CASE("a Mooncake trace with a prefix cache keeps its hash ids for the cache, in the trace's blocks") {
    TempFile trace("prefix-cache-trace.jsonl",
                   "{\"timestamp\": 0, \"input_length\": 1500, \"output_length\": 10, \"hash_ids\": [1, 2, 3]}\n"
                   "{\"timestamp\": 2000, \"input_length\": 1600, \"output_length\": 20, \"hash_ids\": [1, 2, 4, 5]}\n"
                   "{\"timestamp\": 4000, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [9, 1]}\n");
    auto scenario = [&](const std::string& prefix_cache) {
        std::string text = kFixedScenario;
        const auto start = text.find("workload:");
        const auto end = text.find("slo:");
        text.replace(start, end - start,
                     "workload:\n  kind: trace\n  format: mooncake_jsonl\n  file: " + trace.path() + "\n");
        if (!prefix_cache.empty())
            text.replace(text.find("    max_batch: 32\n"), 17,
                         "    max_batch: 32\n    prefix_cache: " + prefix_cache + "\n");
        return text;
    };
    TempFile f("mooncake-cache.yaml", scenario("{capacity: 100000, scope: shared}"));
    const auto j = run_scenario(f.path(), "mooncake-cache");
    const auto& c = j["prefix_cache"];
    CHECK(c["block_identities"] == "trace_hash_ids");
    CHECK(c["block_tokens"].get<std::int64_t>() == 512);
    CHECK(c["capacity_blocks"].get<std::int64_t>() == 195);
    // Blocks 1 and 2 of the second request are cached, as the unbounded resolution has it.
    CHECK(c["cached_tokens"].get<double>() == 1024);
    CHECK(c["hit_rate"].get<double>() == Approx(1024.0 / (1500 + 1600 + 700)));
    // A capacity below one 512-token block of the trace is an error.
    TempFile g("mooncake-tiny-cache.yaml", scenario("{capacity: 500}"));
    CHECK_THAT(errors_of(g.path()), Contains("deployment.colocated.prefix_cache.capacity") &&
                                        Contains("less than one block of 512 tokens") &&
                                        Contains("the trace's block_tokens"));
}

TEST_CASE("a prefix cache under the decode pool is an error naming the pools that prefill") {
    TempFile f("decode-prefix-cache.yaml",
               disaggregated_scenario(2, "").replace(
                   disaggregated_scenario(2, "").find("  decode:\n    layout: {tp: 8}\n"), 31,
                   "  decode:\n    layout: {tp: 8}\n    prefix_cache: {capacity: 100000}\n"));
    CHECK_THAT(errors_of(f.path()), Contains(f.path() + ":12:") && Contains("deployment.decode.prefix_cache") &&
                                        Contains("belongs to the pool that prefills"));
}

TEST_CASE("a prefix-cache capacity that is neither tokens nor a size is an error with both forms") {
    TempFile f("bad-capacity.yaml", prefix_cache_scenario("{capacity: lots}"));
    CHECK_THAT(errors_of(f.path()),
               Contains(f.path() + ":13:") && Contains("deployment.colocated.prefix_cache.capacity") &&
                   Contains("a token count (such as 2000000) or a size with a unit") && Contains("\"lots\""));
    TempFile g("zero-capacity.yaml", prefix_cache_scenario("{capacity: 0}"));
    CHECK_THAT(errors_of(g.path()), Contains("prefix_cache.capacity") && Contains("positive token count"));
    TempFile h("missing-capacity.yaml", prefix_cache_scenario("{scope: shared}"));
    CHECK_THAT(errors_of(h.path()), Contains("missing required key \"capacity\""));
}

TEST_CASE("a prefix-cache capacity in bytes below one block is an error giving the KV bytes per token") {
    TempFile f("tiny-capacity.yaml", prefix_cache_scenario("{capacity: 1MiB}"));  // 8 tokens of 128 KiB
    CHECK_THAT(errors_of(f.path()),
               Contains("prefix_cache.capacity") && Contains("holds 8 tokens at 131.072KB per token") &&
                   Contains("less than one block of 16 tokens") && Contains("the pool's block_tokens"));
}

TEST_CASE("a prefix cache's scope and load bandwidth are checked") {
    TempFile f("bad-scope.yaml", prefix_cache_scenario("{capacity: 100000, scope: global}"));
    CHECK_THAT(errors_of(f.path()), Contains("prefix_cache.scope") && Contains("per_instance") && Contains("shared"));
    TempFile g("bad-load.yaml", prefix_cache_scenario("{capacity: 100000, load_bandwidth: 0GB/s}"));
    CHECK_THAT(errors_of(g.path()), Contains("prefix_cache.load_bandwidth") && Contains("positive"));
    TempFile h("typo-load.yaml", prefix_cache_scenario("{capacity: 100000, load_bandwith: 10GB/s}"));
    CHECK_THAT(errors_of(h.path()), Contains("did you mean \"load_bandwidth\""));
}

TEST_CASE("sessions.cache together with a prefix cache is an error: the cache's scope says where KV stays") {
    TempFile f("sessions-and-prefix-cache.yaml",
               prefix_cache_scenario("{capacity: 100000}", "    cache: per_instance\n"));
    CHECK_THAT(errors_of(f.path()), Contains("workload.sessions.cache") &&
                                        Contains("deployment.colocated.prefix_cache") &&
                                        Contains("remove sessions.cache"));
}

// ---- EP communication ---------------------------------------------------------------------------

namespace {

// Qwen3-30B-A3B on 2 H100 hosts as one colocated EP16 instance; `ep_communication` (empty: the default)
// and `hosts` vary.
// `pool`: colocated, or prefill (a prefill pool alone, which may be larger than its topology: the
// topology then gives link bandwidths only; a colocated deployment must fit it).
std::string ep16_scenario(const std::string& ep_communication, int hosts = 2, const std::string& pool = "colocated") {
    return fmt::format(R"(kind: serving
model: qwen3-30b-a3b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: {}}}
deployment:
  mode: {}
  {}:
    layout: {{tp: 16, attn_dp: 16, ep: 16}}
    max_batch: 256
    token_budget: 16384
{}workload:
  kind: synthetic
  arrival: {{rate_per_s: 20}}
  requests: 40
  input_tokens: {{distribution: fixed, value: 1024}}
  output_tokens: {{distribution: fixed, value: 16}}
)",
                       hosts, pool == "colocated" ? "colocated" : "prefill_only", pool,
                       ep_communication.empty() ? "" : "    ep_communication: " + ep_communication + "\n");
}

}  // namespace

TEST_CASE("EP dispatch and combine are priced by the network model by default, and provenance says which method") {
    const auto [default_yaml, by_default] = run_text("ep-default", ep16_scenario(""));
    const auto [network_yaml, network] = run_text("ep-network", ep16_scenario("network"));
    const auto [estimate_yaml, estimate] = run_text("ep-estimate", ep16_scenario("estimate"));
    CHECK_THAT(default_yaml, Contains("ep_communication: network"));
    const auto ep = network["provenance"]["colocated"]["ep_communication"];
    CHECK(ep["method"] == "network");
    CHECK(ep["kernels"] == "auto");  // colocated: low-latency for decode-only iterations, else normal
    CHECK(ep["shapes_low_latency"].get<int>() > 0);
    CHECK(ep["shapes_normal"].get<int>() > 0);
    REQUIRE(ep["curves"].size() == 4);  // normal and low-latency, dispatch and combine
    CHECK(ep["curves"][0]["ep"] == 16);
    CHECK(network["provenance"]["colocated"]["time_shares"].contains("ep_communication_network"));
    CHECK(estimate["provenance"]["colocated"]["ep_communication"]["method"] == "estimate");
    CHECK(estimate["provenance"]["colocated"]["ep_communication"]["reason"] == "ep_communication: estimate, as given");
    CHECK_FALSE(estimate["provenance"]["colocated"]["time_shares"].contains("ep_communication_network"));
    // The same requests, other iteration times.
    CHECK(by_default["ttft_ms_p50"] == network["ttft_ms_p50"]);
    CHECK(network["completed_requests"] == estimate["completed_requests"]);
    CHECK(network["ttft_ms_p50"].get<double>() != estimate["ttft_ms_p50"].get<double>());
    CHECK(network["tpot_ms_p50"].get<double>() != estimate["tpot_ms_p50"].get<double>());
}

TEST_CASE("EP communication falls back to the estimate where the topology cannot hold the EP group, and says why") {
    const auto [resolved, summary] = run_text("ep-small", ep16_scenario("", 1, "prefill"));
    CHECK_THAT(resolved, Contains("ep_communication: estimate"));
    const auto ep = summary["provenance"]["prefill"]["ep_communication"];
    CHECK(ep["method"] == "estimate");
    CHECK_THAT(ep["reason"].get<std::string>(),
               Contains("default: estimate") && Contains("cannot hold the EP16 group"));
}

TEST_CASE("a bad ep_communication is an error at its key; network on too small a topology says why") {
    // A colocated deployment larger than its topology is an error of its own (serving_time_range_test.cpp).
    TempFile c("ep-colocated-too-small.yaml", ep16_scenario("network", 1));
    CHECK_THAT(errors_of(c.path()), Contains("topology: the colocated deployment needs 1 x 16 = 16 GPUs, 2 hosts"));
    TempFile f("ep-typo.yaml", ep16_scenario("netwrok"));
    CHECK_THAT(errors_of(f.path()), Contains(f.path() + ":11:") && Contains("deployment.colocated.ep_communication") &&
                                        Contains("expected one of: network, estimate") &&
                                        Contains("did you mean \"network\""));
    TempFile g("ep-too-small.yaml", ep16_scenario("network", 1, "prefill"));
    CHECK_THAT(errors_of(g.path()), Contains(g.path() + ":11:") && Contains("ep_communication") &&
                                        Contains("cannot hold the EP16 group") && Contains("use estimate"));
}

// ---- dense_tp and vocab_tp ---------------------------------------------------------------------------

namespace {

// DeepSeek-V3 as DeepSeek's prefill unit (EP32, attention and shared experts DP32), colocated, with a
// fixed cost model: only the memory accounting matters here. `layout_keys` is added to the layout.
std::string prefill_unit_scenario(const std::string& layout_keys) {
    return fmt::format(R"(kind: serving
model: deepseek-v3
gpu: h800-sxm
precision: fp8
topology: {{file: h800-ib-rail, hosts: 4}}
batch_cost: {{kind: fixed, base: 5ms, per_prefill_token: 20us, per_decode_token: 50us}}
deployment:
  mode: colocated
  colocated:
    layout: {{tp: 32, attn_dp: 32, ep: 32{}}}
workload:
  kind: synthetic
  arrival: {{rate_per_s: 2}}
  requests: 4
  input_tokens: {{distribution: fixed, value: 512}}
  output_tokens: {{distribution: fixed, value: 4}}
)",
                       layout_keys);
}

}  // namespace

TEST_CASE("dense_tp 1 keeps a whole dense FFN per GPU: the KV cache loses that memory") {
    auto capacity = [](const std::string& dense_tp, const std::string& name) {
        const auto [resolved, summary] = run_text(name, prefill_unit_scenario(dense_tp.empty() ? "" : ", dense_tp: " + dense_tp));
        CHECK(summary["pools"][0]["layout"]["dense_tp"] == (dense_tp.empty() ? 32 : std::stoi(dense_tp)));
        return std::make_pair(resolved, summary["pools"][0]["kv_capacity_tokens"].get<double>());
    };
    const auto [split_yaml, split] = capacity("", "dense-split");
    const auto [whole_yaml, whole] = capacity("1", "dense-whole");
    CHECK_THAT(split_yaml, Contains("dense_tp: 32"));
    // 31/32 of the first 3 layers' dense FFN (3 x 3 x 7,168 x 18,432 FP8 bytes) more per GPU, over the
    // KV bytes of one token per GPU (61 layers x 576 BF16 values), for each of the 32 attention ranks.
    const double extra = 3.0 * 3 * 7168 * 18432 * 31 / 32;
    const double kv_per_token = 61.0 * 576 * 2;
    CHECK(split - whole == Approx(extra / kv_per_token * 32).epsilon(0.001));
}

TEST_CASE("a dense_tp that does not divide tp is an error at the layout") {
    TempFile f("dense-bad.yaml", prefill_unit_scenario(", dense_tp: 3"));
    CHECK_THAT(errors_of(f.path()), Contains(f.path() + ":10:") && Contains("deployment.colocated.layout") &&
                                        Contains("dense_tp 3 must divide tp 32"));
}

TEST_CASE("vocab_tp 1 keeps a whole embedding and LM head per GPU: the KV cache loses that memory") {
    const auto [split_yaml, split] = run_text("vocab-split", prefill_unit_scenario(""));
    const auto [whole_yaml, whole] = run_text("vocab-whole", prefill_unit_scenario(", vocab_tp: 1"));
    CHECK_THAT(split_yaml, Contains("vocab_tp: 32"));
    CHECK(split["pools"][0]["layout"]["vocab_tp"] == 32);
    CHECK(whole["pools"][0]["layout"]["vocab_tp"] == 1);
    // 31/32 of the 129,280 x 7,168 embedding and LM head more per GPU (FP8 bytes, as every weight of
    // this scenario), over the KV bytes of one token per GPU, for each of the 32 attention ranks.
    const double extra = 2.0 * 129280 * 7168 * 31 / 32;
    const double kv_per_token = 61.0 * 576 * 2;
    CHECK(split["pools"][0]["kv_capacity_tokens"].get<double>() - whole["pools"][0]["kv_capacity_tokens"].get<double>() ==
          Approx(extra / kv_per_token * 32).epsilon(0.001));
    TempFile f("vocab-bad.yaml", prefill_unit_scenario(", vocab_tp: 5"));
    CHECK_THAT(errors_of(f.path()), Contains(f.path() + ":10:") && Contains("vocab_tp 5 must divide tp 32"));
}

TEST_CASE("a CUDA-graph batch size above what a rank decodes at once is an error naming the limit") {
    std::string text = kFixedScenario;
    text.replace(text.find("    max_batch: 32\n"), 18, "    max_batch: 32\n    cuda_graph_batch_sizes: [8, 16, 64]\n");
    TempFile f("graphs.yaml", text);
    CHECK_THAT(errors_of(f.path()), Contains(f.path() + ":") && Contains("cuda_graph_batch_sizes") &&
                                        Contains("64 is above the 32 requests a rank decodes at once"));
    text.replace(text.find("[8, 16, 64]"), 11, "[8, 16, 32]");
    TempFile ok("graphs-ok.yaml", text);
    CHECK(errors_of(ok.path()).empty());
}
