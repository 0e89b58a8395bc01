// Serving scenarios at the edges of what can be measured: times past the simulator's range, a warm-up
// that leaves nothing to measure, rate profiles (their mean offered rate, zero stretches) and
// deployments larger than their topology, each a clear input error or a flagged result.
#include "sim/scenario/scenario.hpp"
#include "sim/serving/workload.hpp"
#include "tests/serving/serving_test_support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <string>

using namespace clustersim;
using Catch::Matchers::Contains;
using clustersim::serving_testing::errors_of;
using clustersim::serving_testing::temp_path;
using clustersim::serving_testing::TempFile;

namespace {

namespace fs = std::filesystem;

// A colocated deployment priced by the fixed cost model (fast), with `workload` and `extra` keys.
std::string colocated(const std::string& workload, const std::string& extra = "", int instances = 2, int hosts = 1) {
    return fmt::format(R"(kind: serving
model: llama3-8b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: {}}}
batch_cost: {{kind: fixed, base: 5ms, per_prefill_token: 20us, per_decode_token: 50us}}
deployment:
  mode: colocated
  colocated:
    instances: {}
    layout: {{tp: 4}}
workload:
  kind: synthetic
{}  input_tokens: {{distribution: fixed, value: 200}}
  output_tokens: {{distribution: fixed, value: 20}}
slo: {{ttft: 1s, tpot: 60ms}}
{})",
                       hosts, instances, workload, extra);
}

// A disaggregated deployment with a FIFO KV link of `bandwidth` and a decode KV cache of `decode_tokens`.
std::string disaggregated(const std::string& bandwidth, int decode_tokens, int requests) {
    return fmt::format(R"(kind: serving
model: llama3-8b
gpu: h100-sxm
topology: {{file: h100-ib-rail, hosts: 1}}
batch_cost: {{kind: fixed, base: 5ms, per_prefill_token: 20us, per_decode_token: 50us}}
deployment:
  mode: disaggregated
  prefill: {{instances: 1, layout: {{tp: 1}}}}
  decode: {{instances: 1, layout: {{tp: 1}}, kv_capacity_tokens: {}}}
  kv_transfer: {{model: fifo, bandwidth: {}, latency: 5us}}
workload:
  kind: synthetic
  arrival: {{process: poisson, rate_per_s: 5}}
  requests: {}
  input_tokens: {{distribution: fixed, value: 1000}}
  output_tokens: {{distribution: fixed, value: 10}}
)",
                       decode_tokens, bandwidth, requests);
}

nlohmann::ordered_json run_summary(const std::string& file) {
    LoadedScenario s = load_scenario(file, std::nullopt);
    const fs::path dir = temp_path("time-range-run");
    nlohmann::ordered_json summary;
    {
        RunOutput out(dir);
        summary = s.runner->run(RunOptions{}, out);
    }
    fs::remove_all(dir.string() + ".partial");
    return summary;
}

// The message of the input error a run ends with ("" if it ends otherwise).
std::string run_error(const std::string& file) {
    try {
        run_summary(file);
    } catch (const InputError& e) {
        std::string out;
        for (const auto& d : e.diagnostics()) out += format(d) + "\n";
        return out;
    }
    return "";
}

}  // namespace

TEST_CASE("few requests at a very low rate are an input error at workload.requests, not a wrapped time") {
    TempFile f("low-rate.yaml", colocated("  arrival: {process: poisson, rate_per_s: 0.000001}\n  requests: 10\n"));
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains("low-rate.yaml:") && Contains("workload.requests: 10 requests at 1e-06 per second") &&
                           Contains("115.7 days") && Contains("raise rate_per_s or lower requests"));
}

TEST_CASE("a synthetic stream stops with a TimeRangeError at workload.requests past half the time range") {
    SyntheticWorkloadSpec spec;
    spec.arrival.rate_per_s = 1e-10;  // the first arrival is expected at 1e10 s, far past 4.6e6 s
    spec.input.value = 10;
    spec.output.value = 10;
    spec.requests = 1;
    SyntheticRequestSource source(spec, 1);
    try {
        source.next();
        FAIL("expected a TimeRangeError");
    } catch (const TimeRangeError& e) {
        CHECK(e.key() == "workload.requests");
        CHECK_THAT(std::string(e.what()), Contains("request 0 would arrive at") && Contains("past 53.4 days"));
    }
    // With a duration the same stream simply ends.
    spec.duration = Time::from_seconds(100);
    SyntheticRequestSource bounded(spec, 1);
    CHECK_FALSE(bounded.next().has_value());
}

TEST_CASE("a duration past half the simulator's time range is an error at workload.duration") {
    TempFile f("long-duration.yaml", colocated("  arrival: {process: poisson, rate_per_s: 1}\n  duration: 2000h\n"));
    CHECK_THAT(errors_of(f.path()), Contains("workload.duration: arrivals until 83.3 days would run past 53.4 days") &&
                                        Contains("lower duration"));
}

TEST_CASE("a trace stretched past the time range by time_scale is an error at time_scale") {
    TempFile trace("stretched.jsonl",
                   "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10}\n"
                   "{\"timestamp\": 1000, \"input_length\": 100, \"output_length\": 10}\n");
    const std::string workload = fmt::format(R"(workload:
  kind: trace
  file: {}
  format: mooncake_jsonl
  time_scale: 1e-12
)",
                                             trace.path());
    std::string text = colocated("  arrival: {process: poisson, rate_per_s: 1}\n  requests: 1\n");
    text = text.substr(0, text.find("workload:")) + workload + "slo: {ttft: 1s, tpot: 60ms}\n";
    TempFile f("stretched.yaml", text);
    CHECK_THAT(errors_of(f.path()), Contains("workload.time_scale: the trace's last request arrives 1 s after its "
                                             "first; divided by time_scale 1e-12") &&
                                        Contains("raise time_scale"));
}

TEST_CASE("a FIFO KV link too slow to move one decode cache is an error at kv_transfer.bandwidth") {
    TempFile f("slow-link.yaml", disaggregated("1B/s", 100000, 3));
    CHECK_THAT(errors_of(f.path()),
               Contains("deployment.kv_transfer.bandwidth: moving a decode instance's whole KV cache (100000 tokens") &&
                   Contains("raise the bandwidth"));
}

TEST_CASE("KV transfers that queue past the time range end the run with an error at kv_transfer.bandwidth") {
    // Each transfer of 1001 tokens x 128 KiB takes about 7.6 days at 200 B/s, a whole decode cache about
    // 30 days (accepted); 20 of them one after the other pass the simulator's range.
    TempFile f("queued-link.yaml", disaggregated("200B/s", 4000, 20));
    REQUIRE(errors_of(f.path()).empty());
    CHECK_THAT(run_error(f.path()), Contains("queued-link.yaml:") &&
                                        Contains("deployment.kv_transfer.bandwidth: the KV transfer of request") &&
                                        Contains("past the simulator's time range") && Contains("raise the bandwidth"));
}

TEST_CASE("a warm-up that outlasts a synthetic workload's duration is an error at warmup") {
    TempFile f("warmup-duration.yaml",
               colocated("  arrival: {process: poisson, rate_per_s: 8}\n  duration: 15s\n", "warmup: 20s\n"));
    CHECK_THAT(errors_of(f.path()), Contains("warmup: the warm-up (20s) must end before the workload's duration "
                                             "(15s) ends the arrivals") &&
                                        Contains("lower warmup or raise duration"));
}

TEST_CASE("a run where no request arrives after the warm-up reports null metrics and a warning") {
    TempFile f("warmup-requests.yaml",
               colocated("  arrival: {process: poisson, rate_per_s: 8}\n  requests: 5\n", "warmup: 20s\n"));
    const auto summary = run_summary(f.path());
    CHECK(summary["arrived_requests"] == 5);
    CHECK(summary["measured_requests"] == 0);
    for (const char* key : {"ttft_ms_p90", "tpot_ms_p50", "e2e_s_p99", "goodput_requests_per_s", "tokens_per_s_per_gpu",
                            "output_tokens_per_s_per_node_decode", "output_tokens_per_s_per_decoding_request"})
        CHECK(summary[key].is_null());
    REQUIRE(summary.contains("warnings"));
    CHECK_THAT(summary["warnings"][0].get<std::string>(),
               Contains("no request arrived after the warm-up (20s; the last arrived at") && Contains("lower warmup"));
}

TEST_CASE("a measured run reports measured_requests and no warnings") {
    TempFile f("measured.yaml",
               colocated("  arrival: {process: poisson, rate_per_s: 8}\n  duration: 10s\n", "warmup: 2s\n"));
    const auto summary = run_summary(f.path());
    CHECK(summary["measured_requests"].get<int>() > 0);
    CHECK(summary["measured_requests"].get<int>() < summary["arrived_requests"].get<int>());
    CHECK(summary["ttft_ms_p90"].is_number());
    CHECK_FALSE(summary.contains("warnings"));
    CHECK(summary["offered_rate_per_s"] == 8.0);
    CHECK_FALSE(summary.contains("base_rate_per_s"));
}

TEST_CASE("a rate profile that is zero over the whole run, or after the warm-up, is an error at its multipliers") {
    TempFile zero("profile-zero.yaml",
                  colocated("  arrival: {process: poisson, rate_per_s: 8, rate_profile: {period: 24h, "
                            "multipliers: [0, 0, 1, 0]}}\n  duration: 10min\n",
                            "warmup: 20s\n"));
    CHECK_THAT(errors_of(zero.path()),
               Contains("workload.arrival.rate_profile.multipliers: the rate is 0 over the whole run") &&
                   Contains("no request would arrive"));
    TempFile late("profile-late.yaml",
                  colocated("  arrival: {process: poisson, rate_per_s: 8, rate_profile: {period: 60s, "
                            "multipliers: [1, 0, 0]}}\n  duration: 40s\n",
                            "warmup: 20s\n"));
    CHECK_THAT(errors_of(late.path()),
               Contains("multipliers: the rate is 0 from the warm-up's end (20s) to the end of arrivals (40s)"));
}

TEST_CASE("offered_rate_per_s is the rate profile's mean over the arrivals, with the base rate beside it") {
    TempFile f("profile-mean.yaml",
               colocated("  arrival: {process: poisson, rate_per_s: 2, rate_profile: {period: 40s, "
                         "multipliers: [1, 3]}}\n  duration: 40s\n",
                         "warmup: 5s\n"));
    const auto summary = run_summary(f.path());
    CHECK(summary["offered_rate_per_s"].get<double>() == Approx(4.0));  // (1 x 20 s + 3 x 20 s) x 2 / 40 s
    CHECK(summary["base_rate_per_s"] == 2.0);
}

TEST_CASE("a negative rate factor is named as such") {
    TempFile f("profile-negative.yaml", colocated("  arrival: {process: poisson, rate_per_s: 2, rate_profile: {period: "
                                                  "60s, multipliers: [1, -1]}}\n  duration: 40s\n"));
    const std::string errors = errors_of(f.path());
    CHECK_THAT(errors, Contains("multipliers: negative factors are not allowed (found -1 at position 2)"));
    CHECK_THAT(errors, !Contains("at least one positive factor"));
}

TEST_CASE("a colocated deployment larger than its topology is an error at topology") {
    TempFile f("too-big.yaml", colocated("  arrival: {process: poisson, rate_per_s: 8}\n  duration: 10s\n", "", 10));
    CHECK_THAT(errors_of(f.path()), Contains("topology: the colocated deployment needs 10 x 4 = 40 GPUs, 5 hosts of 8 "
                                             "GPUs, and the topology has 1 (8 GPUs); raise topology.hosts"));
    TempFile fits("fits.yaml", colocated("  arrival: {process: poisson, rate_per_s: 8}\n  duration: 10s\n", "", 10, 5));
    CHECK(errors_of(fits.path()).empty());
}
