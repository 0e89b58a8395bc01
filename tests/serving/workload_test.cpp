// Workloads: arrival processes, length distributions, determinism, and the trace readers' errors.
#include "sim/serving/workload.hpp"
#include "tests/serving/serving_test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using namespace clustersim;
using namespace clustersim::literals;
using Catch::Matchers::Contains;
using clustersim::serving_testing::all_messages;
using clustersim::serving_testing::TempFile;

namespace {

std::vector<double> inter_arrivals(const ArrivalSpec& spec, int n, std::uint64_t seed = 7) {
    ArrivalProcess p(spec, RngStream(seed, "test"));
    std::vector<double> gaps;
    Time last;
    for (int i = 0; i < n; ++i) {
        const Time t = p.next();
        gaps.push_back((t - last).seconds());
        last = t;
    }
    return gaps;
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
}

double cv(const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size() - 1)) / m;
}

SyntheticWorkloadSpec chat_workload() {
    SyntheticWorkloadSpec w;
    w.arrival.rate_per_s = 5;
    w.input.kind = LengthKind::lognormal;
    w.input.median = 1000;
    w.input.sigma = 1;
    w.input.min = 1;
    w.input.max = 8000;
    w.output.kind = LengthKind::uniform;
    w.output.min = 1;
    w.output.max = 300;
    w.requests = 500;
    w.prefix_hit_ratio = 0.5;
    return w;
}

}  // namespace

TEST_CASE("poisson arrivals have the configured mean rate and a coefficient of variation of 1") {
    ArrivalSpec spec;
    spec.rate_per_s = 20;
    const auto gaps = inter_arrivals(spec, 40000);
    CHECK(mean(gaps) == Approx(1.0 / 20).epsilon(0.03));
    CHECK(cv(gaps) == Approx(1.0).epsilon(0.03));
}

TEST_CASE("gamma arrivals keep the mean rate and take the configured burstiness") {
    for (double target : {0.5, 2.0, 4.0}) {
        ArrivalSpec spec;
        spec.kind = ArrivalKind::gamma;
        spec.rate_per_s = 10;
        spec.cv = target;
        const auto gaps = inter_arrivals(spec, 60000);
        CHECK(mean(gaps) == Approx(0.1).epsilon(0.05));
        CHECK(cv(gaps) == Approx(target).epsilon(0.06));
    }
}

TEST_CASE("a rate profile shapes arrivals over the period and a zero segment gets none") {
    ArrivalSpec spec;
    spec.rate_per_s = 10;
    spec.profile.period = 40_s;
    spec.profile.multipliers = {1.0, 0.0, 3.0, 0.0};  // 10 s segments
    ArrivalProcess p(spec, RngStream(3, "test"));
    int counts[4] = {0, 0, 0, 0};
    for (Time t = p.next(); t < 400_s; t = p.next()) ++counts[static_cast<int>(t.seconds()) % 40 / 10];
    CHECK(counts[1] == 0);
    CHECK(counts[3] == 0);
    // 10 periods: expected 1,000 arrivals in segment 0 and 3,000 in segment 2.
    CHECK(counts[0] == Approx(1000).epsilon(0.1));
    CHECK(counts[2] == Approx(3000).epsilon(0.1));
}

TEST_CASE("length distributions stay in their ranges") {
    RngStream rng(1, "lengths");
    LengthDistribution uniform;
    uniform.kind = LengthKind::uniform;
    uniform.min = 10;
    uniform.max = 20;
    std::set<std::int64_t> seen;
    for (int i = 0; i < 2000; ++i) {
        const auto v = uniform.sample(rng);
        REQUIRE(v >= 10);
        REQUIRE(v <= 20);
        seen.insert(v);
    }
    CHECK(seen.size() == 11);

    LengthDistribution lognormal;
    lognormal.kind = LengthKind::lognormal;
    lognormal.median = 500;
    lognormal.sigma = 2;
    lognormal.min = 100;
    lognormal.max = 900;
    std::vector<double> draws;
    for (int i = 0; i < 4000; ++i) {
        const auto v = lognormal.sample(rng);
        REQUIRE(v >= 100);
        REQUIRE(v <= 900);
        draws.push_back(static_cast<double>(v));
    }
    std::sort(draws.begin(), draws.end());
    CHECK(draws[draws.size() / 2] == Approx(500).epsilon(0.1));

    LengthDistribution empirical;
    empirical.kind = LengthKind::empirical;
    empirical.samples = {3, 30, 300};
    for (int i = 0; i < 100; ++i) {
        const auto v = empirical.sample(rng);
        CHECK((v == 3 || v == 30 || v == 300));
    }
}

TEST_CASE("a length distribution's mean is its expected draw") {
    LengthDistribution fixed;
    fixed.value = 4383;
    CHECK(fixed.mean() == 4383.0);

    LengthDistribution uniform;
    uniform.kind = LengthKind::uniform;
    uniform.min = 10;
    uniform.max = 21;
    CHECK(uniform.mean() == 15.5);

    LengthDistribution empirical;
    empirical.kind = LengthKind::empirical;
    empirical.samples = {3, 30, 300};
    CHECK(empirical.mean() == 111.0);

    // Unclamped, a lognormal's mean is median x exp(sigma^2 / 2); clamped, the bounds pull it in.
    LengthDistribution lognormal;
    lognormal.kind = LengthKind::lognormal;
    lognormal.median = 500;
    lognormal.sigma = 0.8;
    lognormal.min = 1;
    lognormal.max = 1'000'000'000;
    CHECK(lognormal.mean() == Approx(500 * std::exp(0.32)).epsilon(1e-9));
    lognormal.sigma = 2;
    lognormal.min = 100;
    lognormal.max = 900;
    RngStream rng(7, "lengths");
    double sum = 0;
    const int draws = 200000;
    for (int i = 0; i < draws; ++i) sum += static_cast<double>(lognormal.sample(rng));
    CHECK(lognormal.mean() == Approx(sum / draws).epsilon(0.005));
    CHECK(lognormal.mean() > 100);
    CHECK(lognormal.mean() < 900);
    lognormal.sigma = 0;
    CHECK(lognormal.mean() == 500.0);
}

TEST_CASE("a synthetic workload is the same for the same seed and different for another") {
    auto draw = [](std::uint64_t seed) {
        SyntheticRequestSource source(chat_workload(), seed);
        std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>> out;
        while (auto r = source.next())
            out.emplace_back(r->arrival.ps(), r->input_tokens, r->output_tokens, r->cached_tokens);
        return out;
    };
    const auto a = draw(11);
    CHECK(a.size() == 500);
    CHECK(a == draw(11));
    CHECK(a != draw(12));
    for (const auto& [t, in, out, cached] : a) {
        CHECK(cached == static_cast<std::int64_t>(std::floor(0.5 * static_cast<double>(in))));
        CHECK(cached < in);
    }
}

TEST_CASE("a synthetic workload with a duration stops arriving after it") {
    auto w = chat_workload();
    w.requests.reset();
    w.duration = 10_s;
    SyntheticRequestSource source(w, 5);
    int n = 0;
    while (auto r = source.next()) {
        CHECK(r->arrival <= 10_s);
        ++n;
    }
    CHECK(n == Approx(50).margin(25));
}

TEST_CASE("the Azure trace reader takes the trace's timestamps, relative to the first row") {
    TempFile f("azure-good.csv",
               "TIMESTAMP,ContextTokens,GeneratedTokens\n"
               "2023-11-16 18:15:46.6805900,374,44\n"
               "2023-11-16 18:15:50.9951690,396,109\n"
               "2023-11-16 18:16:00.1805900,879,1\n");
    Diagnostics d;
    const auto requests = read_azure_trace(f.path(), d);
    REQUIRE(d.empty());
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].arrival == Time::zero());
    CHECK(requests[1].arrival.seconds() == Approx(4.314579).margin(1e-6));
    CHECK(requests[2].arrival.seconds() == Approx(13.5).margin(1e-6));
    CHECK(requests[1].input_tokens == 396);
    CHECK(requests[1].output_tokens == 109);
}

TEST_CASE("a bad row of an Azure trace is reported with its file, line and column") {
    TempFile f("azure-bad.csv",
               "TIMESTAMP,ContextTokens,GeneratedTokens\n"
               "2023-11-16 18:15:46.6805900,374,44\n"
               "2023-11-16 18:15:47.0000000,many,10\n"
               "2023-11-16 18:15:48.0000000,12\n");
    Diagnostics d;
    read_azure_trace(f.path(), d);
    const std::string text = all_messages(d);
    CHECK_THAT(text, Contains(f.path() + ":3:") && Contains("ContextTokens") && Contains("\"many\""));
    CHECK_THAT(text, Contains(f.path() + ":4:") && Contains("too few fields"));
}

TEST_CASE("an Azure trace with the wrong header names the missing column") {
    TempFile f("azure-header.csv", "time,ContextTokens,GeneratedTokens\n1,2,3\n");
    Diagnostics d;
    read_azure_trace(f.path(), d);
    CHECK_THAT(all_messages(d), Contains(":1:") && Contains("no column \"TIMESTAMP\""));
}

TEST_CASE("the Mooncake reader turns repeated hash-id prefixes into cached tokens") {
    TempFile f("mooncake-good.jsonl",
               "{\"timestamp\": 0, \"input_length\": 1500, \"output_length\": 10, \"hash_ids\": [1, 2, 3]}\n"
               "{\"timestamp\": 250, \"input_length\": 1600, \"output_length\": 20, \"hash_ids\": [1, 2, 4, 5]}\n"
               "{\"timestamp\": 1000, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [9, 1]}\n");
    Diagnostics d;
    const auto requests = read_mooncake_trace(f.path(), 512, d);
    REQUIRE(d.empty());
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].cached_tokens == 0);
    CHECK(requests[1].cached_tokens == 2 * 512);  // blocks 1 and 2 seen before
    CHECK(requests[2].cached_tokens == 0);        // block 9 is new, so nothing after it is a prefix hit
    CHECK(requests[1].arrival.seconds() == Approx(0.25));
    CHECK(requests[2].output_tokens == 5);
}

TEST_CASE("a bad line of a Mooncake trace is reported with its file and line") {
    TempFile f("mooncake-bad.jsonl",
               "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10}\n"
               "{\"timestamp\": 5, \"input_length\": 100\n"
               "{\"timestamp\": 9, \"input_length\": \"long\", \"output_length\": 1}\n"
               "{\"timestamp\": 12, \"input_length\": 100}\n");
    Diagnostics d;
    read_mooncake_trace(f.path(), 512, d);
    const std::string text = all_messages(d);
    CHECK_THAT(text, Contains(f.path() + ":2:") && Contains("not a JSON object"));
    CHECK_THAT(text, Contains(f.path() + ":3:") && Contains("input_length"));
    CHECK_THAT(text, Contains(f.path() + ":4:") && Contains("missing key \"output_length\""));
}

TEST_CASE("an empirical length file with a bad value names its line and column") {
    TempFile f("lengths.csv", "prompt,answer\n100,20\n200,-3\n");
    Diagnostics d;
    const auto good = read_length_column(f.path(), "prompt", d);
    CHECK(d.empty());
    CHECK(good == std::vector<std::int64_t>{100, 200});
    read_length_column(f.path(), "answer", d);
    CHECK_THAT(all_messages(d), Contains(f.path() + ":3:") && Contains("answer") && Contains("positive integer"));
    Diagnostics typo;
    read_length_column(f.path(), "promt", typo);
    CHECK_THAT(all_messages(typo), Contains("did you mean \"prompt\""));
}

TEST_CASE("the expected arrivals of a rate profile, their inverse and the mean rate agree") {
    ArrivalSpec spec;
    spec.rate_per_s = 2;
    spec.profile.period = 40_s;
    spec.profile.multipliers = {1, 0, 3, 0};  // 10 s segments: 20, 0, 60, 0 arrivals
    CHECK(expected_arrivals(spec, 10) == Approx(20));
    CHECK(expected_arrivals(spec, 15) == Approx(20));  // a zero segment adds nothing
    CHECK(expected_arrivals(spec, 25) == Approx(50));
    CHECK(expected_arrivals(spec, 40) == Approx(80));
    CHECK(expected_arrivals(spec, 90) == Approx(180));  // two periods and 10 s of the third
    CHECK(time_of_expected_arrivals(spec, 20) == Approx(10));
    CHECK(time_of_expected_arrivals(spec, 50) == Approx(25));  // past the zero segment
    CHECK(time_of_expected_arrivals(spec, 80) == Approx(30));  // the end of the last positive segment
    CHECK(time_of_expected_arrivals(spec, 180) == Approx(90));
    CHECK(mean_rate_per_s(spec, 40) == Approx(2.0));
    CHECK(mean_rate_per_s(spec, 10) == Approx(2.0));
    CHECK(mean_rate_per_s(spec, 30) == Approx(80.0 / 30));
    ArrivalSpec flat;
    flat.rate_per_s = 4;
    CHECK(mean_rate_per_s(flat, 100) == 4.0);
    CHECK(time_of_expected_arrivals(flat, 8) == Approx(2));
}

TEST_CASE("a trace row past the simulator's time range is a row error, not a wrapped time") {
    // 1e13 ms = 1e10 s after the first row: past the 2^63 ps (about 106 days) a Time holds.
    TempFile mooncake("far.jsonl",
                      "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 5}\n"
                      "{\"timestamp\": 1e13, \"input_length\": 10, \"output_length\": 5}\n");
    Diagnostics d;
    const auto requests = read_mooncake_trace(mooncake.path(), 512, d);
    CHECK(requests.size() == 1);
    CHECK_THAT(all_messages(d),
               Contains("far.jsonl:2") && Contains("timestamp: this row arrives 115740.7 days "
                                                   "after the first, past the simulator's time range"));
    TempFile azure("far.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n10000000000,10,5\n");
    Diagnostics a;
    CHECK(read_azure_trace(azure.path(), a).size() == 1);
    CHECK_THAT(all_messages(a), Contains("far.csv:3") && Contains("TIMESTAMP: this row arrives"));
}
