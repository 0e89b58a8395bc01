// Serving workloads: the requests a deployment is asked to serve, synthetic or replayed from a trace.
//
// A synthetic workload draws arrivals from a renewal process (Poisson, or Gamma with a coefficient of
// variation for burstiness) whose rate may follow a piecewise-constant profile over a period (a day),
// and draws input and output lengths from fixed, uniform, lognormal or empirical distributions. A
// trace workload replays the public Azure LLM inference trace (CSV) or the Mooncake trace (JSONL).
// Every random number comes from the run's RngStreams, so the same seed gives the same requests.
#pragma once

#include "sim/core/rng_stream.hpp"
#include "sim/core/units.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clustersim {

// One request as it arrives at the deployment.
struct Request {
    std::int64_t id = 0;
    Time arrival;
    std::int64_t input_tokens = 0;   // prompt length, cached prefix included
    std::int64_t output_tokens = 0;  // tokens to generate (at least 1)
    std::int64_t cached_tokens = 0;  // leading prompt tokens whose KV is found in the prefix cache
    // The prompt's chain of KV block hashes (a Mooncake trace's hash_ids), kept when the deployment
    // has a prefix cache (sim/serving/prefix_cache.hpp) to resolve hits against; null otherwise.
    // Shared: requests are copied as they move through the simulator.
    std::shared_ptr<const std::vector<std::uint64_t>> block_hashes;
    // Multi-turn sessions: the session (the id of its first request), this request's turn (0-based)
    // and the session's number of turns (drawn when the first turn arrives).
    std::int64_t session = -1;
    int turn = 0;
    int turns = 1;
};

// ---- length distributions -----------------------------------------------------------------------

enum class LengthKind { fixed, uniform, lognormal, empirical };

struct LengthDistribution {
    LengthKind kind = LengthKind::fixed;
    std::int64_t value = 1;  // fixed
    std::int64_t min = 1;    // uniform: inclusive bounds; lognormal: clamp
    std::int64_t max = 1;
    double median = 1;                  // lognormal: exp(mu)
    double sigma = 0;                   // lognormal: standard deviation of the log
    std::vector<std::int64_t> samples;  // empirical: drawn uniformly

    std::int64_t sample(RngStream& rng) const;
    // The expected draw, in tokens. Exact for fixed, uniform and empirical; for lognormal, the mean of
    // the clamped continuous draw (drawing rounds to whole tokens, which moves it by at most half a token).
    double mean() const;
};

// Reads one column of non-negative integers (token counts) from a CSV file with a header line.
// Problems (missing file or column, a non-integer or non-positive value) are recorded with file and
// line; the result is meaningful only if none were.
std::vector<std::int64_t> read_length_column(const std::string& path, const std::string& column,
                                             Diagnostics& diagnostics);

// Reads the length distribution at `key` of `parent` (`distribution: fixed | uniform | lognormal |
// empirical` and its parameters; sim/serving/README.md); an empirical file is relative to `dir`.
// Problems are recorded in the document's diagnostics.
LengthDistribution read_length_distribution(MapReader& parent, std::string_view key, const std::filesystem::path& dir,
                                            std::string_view meaning);

// ---- arrivals -----------------------------------------------------------------------------------

enum class ArrivalKind { poisson, gamma };

// A rate that varies over a period: `multipliers` scale the mean rate over equal segments of the
// period (24 values over 24h are hourly factors). Empty: constant rate.
struct RateProfile {
    Time period;
    std::vector<double> multipliers;
};

struct ArrivalSpec {
    ArrivalKind kind = ArrivalKind::poisson;
    double rate_per_s = 1;  // mean arrivals per second (before the profile's multipliers)
    double cv = 1;          // gamma: coefficient of variation of the inter-arrival times (1 = Poisson)
    RateProfile profile;
};

// The expected arrivals from 0 to `t_s` seconds, Lambda(t): the integral of the rate (with the profile).
double expected_arrivals(const ArrivalSpec& spec, double t_s);
// The time in seconds at which Lambda reaches `arrivals` (its inverse; with a profile, the start of a
// segment of positive rate is taken where Lambda is flat). The spec's profile needs a positive factor.
double time_of_expected_arrivals(const ArrivalSpec& spec, double arrivals);
// The mean rate over [0, t_s], Lambda(t) / t (the base rate when t_s is 0 or there is no profile).
double mean_rate_per_s(const ArrivalSpec& spec, double t_s);

// Arrivals must come within the first half of the simulator's time range (Time: 2^63 ps, about 106
// days), leaving the other half for the requests to drain and for every time computed after them.
inline constexpr double kMaxArrivalSeconds = Time::max().seconds() / 2;
// Times computed during a run (a transfer's end) must stay below this, a little short of the range.
inline constexpr double kMaxSimulatedSeconds = 0.99 * Time::max().seconds();
// "53.4 days": a time in seconds in days, for messages about the simulator's time range.
std::string days_text(double seconds);

// A time the run would need lies past the simulator's time range (Time). Thrown while a run is
// generated (arrivals, transfers); `key` names the scenario key to change (as "workload.requests"),
// so that the scenario layer reports it as an input error at that key.
class TimeRangeError : public std::runtime_error {
public:
    TimeRangeError(std::string key, const std::string& message) : std::runtime_error(message), key_(std::move(key)) {}
    const std::string& key() const { return key_; }

private:
    std::string key_;
};

// Arrival times of a renewal process (exponential or gamma inter-arrival times with mean 1) mapped
// through the cumulative rate Lambda(t) (the time-rescaling theorem, Brown et al., Neural
// Computation 14(2), 2002), so a varying rate keeps the process's burstiness.
class ArrivalProcess {
public:
    ArrivalProcess(ArrivalSpec spec, RngStream rng);
    // The next arrival in seconds (a double, so that a time past the simulator's range can be seen
    // before it is converted), and as a Time (TimeRangeError past kMaxArrivalSeconds).
    double next_seconds();
    Time next();

private:
    double unit_interval();
    // The time t at which the cumulative rate reaches `target` expected arrivals.
    double invert(double target);

    ArrivalSpec spec_;
    RngStream rng_;
    double operational_ = 0;  // expected arrivals so far
    // The profile position invert() resumes from.
    std::int64_t segment_ = 0;
    double segment_start_lambda_ = 0;
};

// Draws from Gamma(shape, scale 1) (Marsaglia and Tsang, ACM TOMS 26(3), 2000).
double sample_gamma(RngStream& rng, double shape);

// ---- workloads ----------------------------------------------------------------------------------

// Multi-turn sessions: after a turn completes, the user thinks for an exponential time and sends the
// next turn, whose prompt is the whole conversation so far (a prefix-cache hit) plus new tokens.
struct SessionSpec {
    LengthDistribution turns;      // turns per session (at least 1)
    Time think_time_mean;          // mean of the exponential pause between a reply and the next turn
    LengthDistribution new_input;  // tokens the user adds in a follow-up turn
    LengthDistribution output;     // tokens a follow-up turn asks for
    // Where the conversation's KV stays between turns: false, in a cache every instance of the first
    // pool reaches (a follow-up's whole conversation is a hit wherever it goes); true, only on the
    // instance that computed it (a hit only when the follow-up is routed back there).
    bool per_instance_cache = false;
};

struct SyntheticWorkloadSpec {
    ArrivalSpec arrival;
    LengthDistribution input;
    LengthDistribution output;
    double prefix_hit_ratio = 0;           // share of each prompt found in the prefix cache
    std::optional<std::int64_t> requests;  // stop after this many requests
    std::optional<Time> duration;          // or stop arrivals after this time (at most kMaxArrivalSeconds)
};

enum class TraceFormat { azure_csv, mooncake_jsonl };

struct TraceWorkloadSpec {
    std::string file;
    TraceFormat format = TraceFormat::azure_csv;
    double time_scale = 1;                     // arrival times are divided by this (2 = twice as fast)
    std::optional<std::int64_t> max_requests;  // replay only the first N rows
    std::int64_t mooncake_block_tokens = 512;  // tokens per hash id (Mooncake's trace README)
    double prefix_hit_ratio = 0;               // Azure rows carry no cache information: applied per request
};

// Azure LLM inference trace (github.com/Azure/AzurePublicDataset, AzureLLMInferenceDataset2023):
// header TIMESTAMP,ContextTokens,GeneratedTokens; TIMESTAMP "YYYY-MM-DD HH:MM:SS[.fraction]" or a
// number of seconds. Arrivals are relative to the first row. Rows must be in time order.
std::vector<Request> read_azure_trace(const std::string& path, Diagnostics& diagnostics);
// How a Mooncake trace's hash ids become cache hits.
enum class TraceHashIds {
    // At read time: a block counts as cached when its hash id, and every hash id before it in the
    // request, appeared in an earlier request (an unbounded prefix cache shared by the deployment).
    resolve,
    // Kept on each request (Request::block_hashes, cached_tokens 0) for the simulator's prefix cache.
    keep,
};

// Mooncake trace (github.com/kvcache-ai/Mooncake, FAST'25 traces): one JSON object per line with
// timestamp (ms), input_length, output_length and optional hash_ids (one per block of
// `block_tokens`), turned into hits as `hash_ids` says.
std::vector<Request> read_mooncake_trace(const std::string& path, std::int64_t block_tokens, Diagnostics& diagnostics,
                                         TraceHashIds hash_ids = TraceHashIds::resolve);

// The cached prefix a hit ratio gives a prompt: the ratio's share, rounded down, leaving at least
// one token to compute (the last prompt token's logits give the first output token).
std::int64_t cached_prefix(std::int64_t input_tokens, double hit_ratio);

// Requests in arrival order, one at a time (so a long synthetic run never holds all of them).
class RequestSource {
public:
    virtual ~RequestSource() = default;
    virtual std::optional<Request> next() = 0;
};

class SyntheticRequestSource : public RequestSource {
public:
    // Streams "serving.arrivals", "serving.input_tokens" and "serving.output_tokens" of `seed`.
    // next() throws TimeRangeError (key workload.requests) if an arrival would come after
    // kMaxArrivalSeconds (possible only without a duration: few requests at a very low rate).
    SyntheticRequestSource(SyntheticWorkloadSpec spec, std::uint64_t seed);
    std::optional<Request> next() override;

private:
    SyntheticWorkloadSpec spec_;
    ArrivalProcess arrivals_;
    RngStream input_rng_;
    RngStream output_rng_;
    std::int64_t issued_ = 0;
};

class VectorRequestSource : public RequestSource {
public:
    explicit VectorRequestSource(std::vector<Request> requests) : requests_(std::move(requests)) {}
    std::optional<Request> next() override;

private:
    std::vector<Request> requests_;
    std::size_t next_ = 0;
};

}  // namespace clustersim
