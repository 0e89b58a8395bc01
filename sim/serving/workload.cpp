// Synthetic arrivals and lengths, and the readers of the Azure and Mooncake request traces.
#include "sim/serving/workload.hpp"

#include <libfccp/csv.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <unordered_set>

namespace clustersim {
namespace {

// Traces can have millions of rows; past this many problems the rest add nothing.
constexpr std::size_t kMaxRowErrors = 20;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
}

std::optional<std::int64_t> parse_int(std::string_view s) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<double> parse_double(std::string_view s) {
    if (s.empty()) return std::nullopt;
    try {
        std::size_t used = 0;
        const double v = std::stod(std::string(s), &used);
        if (used != s.size() || !std::isfinite(v)) return std::nullopt;
        return v;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// Days since 1970-01-01 of a civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

// "2023-11-16 18:15:46.6805900" (the Azure trace's form) or a plain number of seconds.
std::optional<double> parse_timestamp_seconds(std::string_view s) {
    if (auto v = parse_double(s)) return v;
    if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':')
        return std::nullopt;
    const auto year = parse_int(s.substr(0, 4));
    const auto month = parse_int(s.substr(5, 2));
    const auto day = parse_int(s.substr(8, 2));
    const auto hour = parse_int(s.substr(11, 2));
    const auto minute = parse_int(s.substr(14, 2));
    const auto second = parse_double(s.substr(17));
    if (!year || !month || !day || !hour || !minute || !second || *month < 1 || *month > 12 || *day < 1 || *day > 31 ||
        *hour > 23 || *minute > 59 || *second < 0 || *second >= 61)
        return std::nullopt;
    const std::int64_t days = days_from_civil(*year, static_cast<int>(*month), static_cast<int>(*day));
    return static_cast<double>(days) * 86400.0 + static_cast<double>(*hour * 3600 + *minute * 60) + *second;
}

// CSV files are read with fast-cpp-csv-parser (libfccp-dev), as sim/moe reads its tables: the named
// columns in any order, other columns ignored, fields trimmed, RFC 4180 quotes, blank lines skipped.
template <std::size_t N>
using CsvReader = io::CSVReader<static_cast<unsigned>(N), io::trim_chars<' ', '\t'>, io::double_quote_escape<',', '"'>,
                                io::throw_on_overflow, io::empty_line_comment>;

// The first line of a file, for messages about its header.
std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return std::string(trim(line));
}

// Opens `path` and reads its header, which must name `columns`. On a problem (a missing file or
// column) the error goes to `diagnostics`, naming the closest header name, and nothing is returned.
template <std::size_t N>
std::unique_ptr<CsvReader<N>> open_csv(const std::string& path, const std::array<std::string, N>& columns,
                                       const std::string& expected, Diagnostics& diagnostics) {
    if (!std::ifstream(path)) {
        diagnostics.error({path, 0, 0}, "", "cannot open the file");
        return nullptr;
    }
    try {
        auto in = std::make_unique<CsvReader<N>>(path);
        std::apply(
            [&](const auto&... c) { in->read_header(io::ignore_extra_column | io::ignore_missing_column, c...); },
            columns);
        for (const auto& c : columns) {
            if (in->has_column(c)) continue;
            const std::string header = first_line(path);
            std::vector<std::string> names;
            for (std::size_t start = 0; start <= header.size();) {
                const std::size_t comma = std::min(header.find(',', start), header.size());
                names.emplace_back(trim(std::string_view(header).substr(start, comma - start)));
                start = comma + 1;
            }
            const std::string near = closest_match(c, names);
            diagnostics.error({path, 1, 0}, c,
                              fmt::format("no column \"{}\" in the header \"{}\"{}; expected {}", c, header,
                                          near.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", near), expected));
            return nullptr;
        }
        return in;
    } catch (const io::error::base& e) {
        diagnostics.error({path, 1, 0}, "",
                          fmt::format("cannot read the header ({}); expected {}", e.what(), expected));
        return nullptr;
    }
}

// Records a row problem unless too many were recorded already.
void row_error(Diagnostics& d, std::size_t& count, const std::string& file, int line, const std::string& key,
               const std::string& message) {
    if (count < kMaxRowErrors) d.error({file, line, 0}, key, message);
    if (count == kMaxRowErrors) d.error({file, line, 0}, "", "too many problems; the rest of the file was not checked");
    ++count;
}

// Reads the next row's fields; false at the end. A malformed row is recorded and skipped.
template <std::size_t N>
bool next_row(CsvReader<N>& in, std::array<std::string, N>& fields, Diagnostics& diagnostics, std::size_t& errors,
              const std::string& path) {
    while (true) {
        try {
            return std::apply([&](auto&... f) { return in.read_row(f...); }, fields);
        } catch (const io::error::too_few_columns&) {
            row_error(diagnostics, errors, path, static_cast<int>(in.get_file_line()), "",
                      "too few fields for the header's columns");
        } catch (const io::error::too_many_columns&) {
            row_error(diagnostics, errors, path, static_cast<int>(in.get_file_line()), "",
                      "too many fields for the header's columns");
        } catch (const io::error::base& e) {
            row_error(diagnostics, errors, path, static_cast<int>(in.get_file_line()), "",
                      fmt::format("malformed row: {}", e.what()));
        }
    }
}

}  // namespace

std::int64_t LengthDistribution::sample(RngStream& rng) const {
    switch (kind) {
        case LengthKind::fixed:
            return value;
        case LengthKind::uniform:
            return min + static_cast<std::int64_t>(rng.uniform_int(static_cast<std::uint64_t>(max - min + 1)));
        case LengthKind::lognormal: {
            const double v = std::round(median * std::exp(sigma * rng.normal()));
            return std::clamp(static_cast<std::int64_t>(std::min(v, 1e15)), min, max);
        }
        case LengthKind::empirical:
            return samples[rng.uniform_int(samples.size())];
    }
    return value;
}

double LengthDistribution::mean() const {
    switch (kind) {
        case LengthKind::fixed:
            return static_cast<double>(value);
        case LengthKind::uniform:
            return 0.5 * static_cast<double>(min + max);
        case LengthKind::lognormal: {
            const double lo = static_cast<double>(min), hi = static_cast<double>(max);
            if (sigma == 0) return std::clamp(median, lo, hi);
            // E[clamp(X, lo, hi)] for ln X ~ N(mu, sigma^2): the clamped tails at their bounds plus the
            // partial mean of X between them, exp(mu + sigma^2 / 2) [Phi(b - sigma) - Phi(a - sigma)].
            const auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
            const double mu = std::log(median);
            const double a = (std::log(lo) - mu) / sigma, b = (std::log(hi) - mu) / sigma;
            return lo * phi(a) + hi * (1 - phi(b)) +
                   std::exp(mu + sigma * sigma / 2) * (phi(b - sigma) - phi(a - sigma));
        }
        case LengthKind::empirical: {
            double sum = 0;
            for (const std::int64_t v : samples) sum += static_cast<double>(v);
            return samples.empty() ? 0.0 : sum / static_cast<double>(samples.size());
        }
    }
    return static_cast<double>(value);
}

std::vector<std::int64_t> read_length_column(const std::string& path, const std::string& column,
                                             Diagnostics& diagnostics) {
    std::vector<std::int64_t> out;
    const auto in = open_csv<1>(path, {column}, fmt::format("a header naming the column \"{}\"", column), diagnostics);
    if (!in) return out;
    std::size_t errors = 0;
    std::array<std::string, 1> f;
    while (next_row(*in, f, diagnostics, errors, path)) {
        const auto v = parse_int(f[0]);
        if (!v || *v < 1) {
            row_error(diagnostics, errors, path, static_cast<int>(in->get_file_line()), column,
                      fmt::format("expected a positive integer token count; found \"{}\"", f[0]));
            continue;
        }
        out.push_back(*v);
    }
    if (out.empty() && errors == 0)
        diagnostics.error({path, static_cast<int>(in->get_file_line()), 0}, column, "the column has no values");
    return out;
}

LengthDistribution read_length_distribution(MapReader& parent, std::string_view key, const std::filesystem::path& dir,
                                            std::string_view meaning) {
    MapReader r = parent.child(key, meaning);
    LengthDistribution d;
    const std::string kind = r.choice("distribution", {"fixed", "uniform", "lognormal", "empirical"}, std::nullopt,
                                      "how token counts are drawn");
    if (kind == "fixed") {
        d.kind = LengthKind::fixed;
        d.value = r.required<std::int64_t>("value", "tokens of every request", at_least<std::int64_t>(1));
    } else if (kind == "uniform") {
        d.kind = LengthKind::uniform;
        d.min = r.required<std::int64_t>("min", "fewest tokens (inclusive)", at_least<std::int64_t>(1));
        d.max = r.required<std::int64_t>("max", "most tokens (inclusive)", at_least<std::int64_t>(1));
        if (d.max < d.min) r.error("max", fmt::format("max {} is below min {}", d.max, d.min));
    } else if (kind == "lognormal") {
        d.kind = LengthKind::lognormal;
        d.median = r.required<double>("median", "median tokens, exp(mu)", positive<double>());
        d.sigma = r.required<double>("sigma", "standard deviation of the log of the token count", in_range(0.0, 10.0));
        d.min = r.optional<std::int64_t>("min", 1, "draws below are raised to this", at_least<std::int64_t>(1));
        d.max =
            r.optional<std::int64_t>("max", 1'000'000, "draws above are lowered to this", at_least<std::int64_t>(1));
        if (d.max < d.min) r.error("max", fmt::format("max {} is below min {}", d.max, d.min));
    } else if (kind == "empirical") {
        d.kind = LengthKind::empirical;
        const std::string file = r.required<std::string>("file", "CSV file with a header and a column of token counts");
        const std::string column = r.required<std::string>("column", "the column to draw from");
        if (!file.empty() && !column.empty()) {
            const std::filesystem::path path =
                std::filesystem::path(file).is_absolute() ? std::filesystem::path(file) : dir / file;
            d.samples = read_length_column(path.string(), column, r.document()->diagnostics());
        }
    }
    r.finish();
    return d;
}

// ---- arrivals -----------------------------------------------------------------------------------

double sample_gamma(RngStream& rng, double shape) {
    if (shape < 1) {
        // Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia and Tsang, section 6).
        const double u = 1.0 - rng.uniform01();  // in (0, 1]
        return sample_gamma(rng, shape + 1) * std::pow(u, 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
        double x = 0, v = 0;
        do {
            x = rng.normal();
            v = 1.0 + c * x;
        } while (v <= 0);
        v = v * v * v;
        const double u = rng.uniform01();
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
}

ArrivalProcess::ArrivalProcess(ArrivalSpec spec, RngStream rng) : spec_(std::move(spec)), rng_(rng) {}

double ArrivalProcess::unit_interval() {
    if (spec_.kind == ArrivalKind::poisson || spec_.cv == 1.0) return rng_.exponential(1.0);
    // Gamma with mean 1 and coefficient of variation cv: shape 1/cv^2, scale cv^2.
    const double shape = 1.0 / (spec_.cv * spec_.cv);
    return sample_gamma(rng_, shape) / shape;
}

double ArrivalProcess::invert(double target) {
    const auto& p = spec_.profile;
    if (p.multipliers.empty()) return target / spec_.rate_per_s;
    const auto n = static_cast<std::int64_t>(p.multipliers.size());
    const double segment_s = p.period.seconds() / static_cast<double>(n);
    while (true) {
        const double m = p.multipliers[static_cast<std::size_t>(segment_ % n)];
        const double in_segment = spec_.rate_per_s * m * segment_s;
        if (m > 0 && segment_start_lambda_ + in_segment >= target)
            return static_cast<double>(segment_) * segment_s +
                   (target - segment_start_lambda_) / (spec_.rate_per_s * m);
        segment_start_lambda_ += in_segment;
        ++segment_;
    }
}

double ArrivalProcess::next_seconds() {
    operational_ += unit_interval();
    return invert(operational_);
}

Time ArrivalProcess::next() {
    const double t = next_seconds();
    if (!(t <= kMaxArrivalSeconds))
        throw TimeRangeError("workload.arrival.rate_per_s",
                             fmt::format("an arrival at {} would come past {}, half of the simulator's time range",
                                         days_text(t), days_text(kMaxArrivalSeconds)));
    return Time::from_seconds(t);
}

double expected_arrivals(const ArrivalSpec& spec, double t_s) {
    const auto& p = spec.profile;
    if (p.multipliers.empty()) return spec.rate_per_s * t_s;
    const auto n = static_cast<double>(p.multipliers.size());
    const double period_s = p.period.seconds();
    const double segment_s = period_s / n;
    double per_period = 0;
    for (double m : p.multipliers) per_period += m;
    per_period *= spec.rate_per_s * segment_s;
    const double periods = std::floor(t_s / period_s);
    double lambda = periods * per_period;
    double rest = t_s - periods * period_s;
    for (double m : p.multipliers) {
        if (!(rest > 0)) break;
        lambda += spec.rate_per_s * m * std::min(rest, segment_s);
        rest -= segment_s;
    }
    return lambda;
}

double time_of_expected_arrivals(const ArrivalSpec& spec, double arrivals) {
    const auto& p = spec.profile;
    if (p.multipliers.empty()) return arrivals / spec.rate_per_s;
    const double period_s = p.period.seconds();
    const double segment_s = period_s / static_cast<double>(p.multipliers.size());
    const double per_period = expected_arrivals(spec, period_s);
    // Whole periods first (the last one left to the walk, so that a multiple lands in its segment).
    const double periods = std::max(0.0, std::ceil(arrivals / per_period) - 1);
    double lambda = periods * per_period;
    double t = periods * period_s;
    for (double m : p.multipliers) {
        const double in_segment = spec.rate_per_s * m * segment_s;
        if (m > 0 && lambda + in_segment >= arrivals) return t + (arrivals - lambda) / (spec.rate_per_s * m);
        lambda += in_segment;
        t += segment_s;
    }
    return t;
}

double mean_rate_per_s(const ArrivalSpec& spec, double t_s) {
    if (spec.profile.multipliers.empty() || !(t_s > 0)) return spec.rate_per_s;
    return expected_arrivals(spec, t_s) / t_s;
}

std::string days_text(double seconds) {
    return fmt::format("{:.1f} days", seconds / 86400.0);
}

// ---- traces -------------------------------------------------------------------------------------

std::int64_t cached_prefix(std::int64_t input_tokens, double hit_ratio) {
    const auto cached = static_cast<std::int64_t>(std::floor(hit_ratio * static_cast<double>(input_tokens)));
    return std::clamp<std::int64_t>(cached, 0, input_tokens - 1);
}

std::vector<Request> read_azure_trace(const std::string& path, Diagnostics& diagnostics) {
    std::vector<Request> out;
    const auto in = open_csv<3>(path, {"TIMESTAMP", "ContextTokens", "GeneratedTokens"},
                                "the Azure LLM trace columns TIMESTAMP,ContextTokens,GeneratedTokens", diagnostics);
    if (!in) return out;
    std::size_t errors = 0;
    double first = 0, previous = 0;
    std::array<std::string, 3> f;
    while (next_row(*in, f, diagnostics, errors, path)) {
        const int line_no = static_cast<int>(in->get_file_line());
        const auto t = parse_timestamp_seconds(f[0]);
        const auto input = parse_int(f[1]);
        const auto output = parse_int(f[2]);
        if (!t) {
            row_error(diagnostics, errors, path, line_no, "TIMESTAMP",
                      fmt::format("expected a time \"YYYY-MM-DD HH:MM:SS.fraction\" or seconds; found \"{}\"", f[0]));
            continue;
        }
        if (!input || *input < 1) {
            row_error(diagnostics, errors, path, line_no, "ContextTokens",
                      fmt::format("expected a positive integer; found \"{}\"", f[1]));
            continue;
        }
        if (!output || *output < 1) {
            row_error(diagnostics, errors, path, line_no, "GeneratedTokens",
                      fmt::format("expected a positive integer; found \"{}\"", f[2]));
            continue;
        }
        if (out.empty()) first = previous = *t;
        if (*t < previous) {
            row_error(
                diagnostics, errors, path, line_no, "TIMESTAMP",
                fmt::format("rows must be in time order; this row is {:.6f} s before the previous one", previous - *t));
            continue;
        }
        if (!(*t - first < Time::max().seconds())) {
            row_error(diagnostics, errors, path, line_no, "TIMESTAMP",
                      fmt::format("this row arrives {} after the first, past the simulator's time range (about 106 "
                                  "days); replay a shorter part of the trace",
                                  days_text(*t - first)));
            continue;
        }
        previous = *t;
        Request r;
        r.id = static_cast<std::int64_t>(out.size());
        r.arrival = Time::from_seconds(*t - first);
        r.input_tokens = *input;
        r.output_tokens = *output;
        out.push_back(r);
    }
    if (out.empty() && errors == 0)
        diagnostics.error({path, static_cast<int>(in->get_file_line()), 0}, "", "the trace has no requests");
    return out;
}

std::vector<Request> read_mooncake_trace(const std::string& path, std::int64_t block_tokens, Diagnostics& diagnostics,
                                         TraceHashIds hash_ids) {
    std::vector<Request> out;
    std::ifstream in(path);
    if (!in) {
        diagnostics.error({path, 0, 0}, "", "cannot open the trace file");
        return out;
    }
    std::unordered_set<std::int64_t> seen;  // only looked up, never iterated
    std::size_t errors = 0;
    int line_no = 0;
    double first = 0, previous = 0;
    std::string line;
    while (std::getline(in, line)) {
        ++line_no;
        if (trim(line).empty()) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
            row_error(diagnostics, errors, path, line_no, "", fmt::format("not a JSON object: {}", e.what()));
            continue;
        }
        if (!j.is_object()) {
            row_error(diagnostics, errors, path, line_no, "", "expected one JSON object per line");
            continue;
        }
        auto number = [&](const char* key, bool integer) -> std::optional<double> {
            if (!j.contains(key)) {
                row_error(diagnostics, errors, path, line_no, key,
                          fmt::format("missing key \"{}\" (Mooncake rows have timestamp, input_length, "
                                      "output_length, hash_ids)",
                                      key));
                return std::nullopt;
            }
            const auto& v = j[key];
            if (!v.is_number() || (integer && !v.is_number_integer())) {
                row_error(diagnostics, errors, path, line_no, key,
                          fmt::format("expected {}; found {}", integer ? "an integer" : "a number", v.dump()));
                return std::nullopt;
            }
            return v.get<double>();
        };
        const auto t = number("timestamp", false);
        const auto input = number("input_length", true);
        const auto output = number("output_length", true);
        if (!t || !input || !output) continue;
        if (*input < 1 || *output < 1) {
            row_error(diagnostics, errors, path, line_no, *input < 1 ? "input_length" : "output_length",
                      "expected a positive token count");
            continue;
        }
        if (out.empty()) first = previous = *t;
        if (*t < previous) {
            row_error(diagnostics, errors, path, line_no, "timestamp", "rows must be in time order");
            continue;
        }
        if (!((*t - first) * 1e-3 < Time::max().seconds())) {
            row_error(diagnostics, errors, path, line_no, "timestamp",
                      fmt::format("this row arrives {} after the first, past the simulator's time range (about 106 "
                                  "days); replay a shorter part of the trace",
                                  days_text((*t - first) * 1e-3)));
            continue;
        }
        previous = *t;
        Request r;
        r.id = static_cast<std::int64_t>(out.size());
        r.arrival = Time::from_seconds((*t - first) * 1e-3);  // Mooncake timestamps are milliseconds
        r.input_tokens = static_cast<std::int64_t>(*input);
        r.output_tokens = static_cast<std::int64_t>(*output);
        if (j.contains("hash_ids")) {
            const auto& ids = j["hash_ids"];
            if (!ids.is_array()) {
                row_error(diagnostics, errors, path, line_no, "hash_ids", "expected a list of integers");
                continue;
            }
            std::int64_t hit_blocks = 0;
            bool prefix = true;
            bool bad = false;
            std::vector<std::uint64_t> chain;
            for (const auto& id : ids) {
                if (!id.is_number_integer()) {
                    bad = true;
                    break;
                }
                const auto h = id.get<std::int64_t>();
                if (hash_ids == TraceHashIds::keep) {
                    chain.push_back(static_cast<std::uint64_t>(h));
                    continue;
                }
                if (prefix && seen.contains(h))
                    ++hit_blocks;
                else
                    prefix = false;
                seen.insert(h);
            }
            if (bad) {
                row_error(diagnostics, errors, path, line_no, "hash_ids", "expected a list of integers");
                continue;
            }
            if (hash_ids == TraceHashIds::keep)
                r.block_hashes = std::make_shared<const std::vector<std::uint64_t>>(std::move(chain));
            else
                r.cached_tokens = std::clamp<std::int64_t>(hit_blocks * block_tokens, 0, r.input_tokens - 1);
        }
        out.push_back(r);
    }
    if (out.empty() && errors == 0) diagnostics.error({path, line_no, 0}, "", "the trace has no requests");
    return out;
}

// ---- sources ------------------------------------------------------------------------------------

SyntheticRequestSource::SyntheticRequestSource(SyntheticWorkloadSpec spec, std::uint64_t seed)
    : spec_(std::move(spec)),
      arrivals_(spec_.arrival, RngStream(seed, "serving.arrivals")),
      input_rng_(seed, "serving.input_tokens"),
      output_rng_(seed, "serving.output_tokens") {}

std::optional<Request> SyntheticRequestSource::next() {
    if (spec_.requests && issued_ >= *spec_.requests) return std::nullopt;
    Request r;
    const double t = arrivals_.next_seconds();
    if (!(t <= kMaxArrivalSeconds)) {
        if (spec_.duration) return std::nullopt;  // a duration is at most kMaxArrivalSeconds (read_workload)
        throw TimeRangeError(
            "workload.requests",
            fmt::format("request {} would arrive at {}, past {} (half of the simulator's time range of about 106 "
                        "days, the rest left for the requests to drain): raise rate_per_s or lower requests",
                        issued_, days_text(t), days_text(kMaxArrivalSeconds)));
    }
    r.arrival = Time::from_seconds(t);
    if (spec_.duration && r.arrival > *spec_.duration) return std::nullopt;
    r.id = issued_++;
    r.input_tokens = std::max<std::int64_t>(1, spec_.input.sample(input_rng_));
    r.output_tokens = std::max<std::int64_t>(1, spec_.output.sample(output_rng_));
    r.cached_tokens = cached_prefix(r.input_tokens, spec_.prefix_hit_ratio);
    return r;
}

std::optional<Request> VectorRequestSource::next() {
    if (next_ >= requests_.size()) return std::nullopt;
    return requests_[next_++];
}

}  // namespace clustersim
