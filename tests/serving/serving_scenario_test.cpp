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
using clustersim::serving_testing::temp_path;
using clustersim::serving_testing::TempFile;

namespace {

namespace fs = std::filesystem;

std::string errors_of(const std::string& path) {
    try {
        load_scenario(path, std::nullopt);
    } catch (const InputError& e) {
        std::string out;
        for (const auto& d : e.diagnostics()) out += format(d) + "\n";
        return out;
    }
    return "";
}

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

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

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
        TempFile f(fmt::format("skew-{}.yaml", redundant), text);
        LoadedScenario s = load_scenario(f.path(), std::nullopt);
        const fs::path dir = temp_path(fmt::format("skew-{}", redundant));
        nlohmann::ordered_json summary;
        {
            RunOutput out(dir);
            summary = s.runner->run(RunOptions{}, out);
            out.commit();
        }
        fs::remove_all(dir);
        return summary["pools"][0]["expert_imbalance"].get<double>();
    };
    const double plain = imbalance(0);
    const double eplb = imbalance(8);
    CHECK(plain > 1.05);
    CHECK(eplb < plain);
    CHECK(eplb >= 1.0);
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
