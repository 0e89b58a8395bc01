// Synthetic arrivals and lengths, and the readers of the Azure and Mooncake request traces.
#include "sim/serving/workload.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string_view>
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

std::vector<std::string_view> split_csv(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = line.find(',', start);
        out.push_back(
            trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
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

// Records a row problem unless too many were recorded already.
void row_error(Diagnostics& d, std::size_t& count, const std::string& file, int line, const std::string& key,
               const std::string& message) {
    if (count < kMaxRowErrors) d.error({file, line, 0}, key, message);
    if (count == kMaxRowErrors) d.error({file, line, 0}, "", "too many problems; the rest of the file was not checked");
    ++count;
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

std::vector<std::int64_t> read_length_column(const std::string& path, const std::string& column,
                                             Diagnostics& diagnostics) {
    std::vector<std::int64_t> out;
    std::ifstream in(path);
    if (!in) {
        diagnostics.error({path, 0, 0}, "", "cannot open the file");
        return out;
    }
    std::string line;
    if (!std::getline(in, line)) {
        diagnostics.error({path, 1, 0}, "", "the file is empty; expected a header line naming the columns");
        return out;
    }
    const auto header = split_csv(line);
    const auto it = std::find(header.begin(), header.end(), column);
    if (it == header.end()) {
        std::vector<std::string> names(header.begin(), header.end());
        const std::string near = closest_match(column, names);
        diagnostics.error({path, 1, 0}, column,
                          fmt::format("no column \"{}\" in the header \"{}\"{}", column, std::string(trim(line)),
                                      near.empty() ? "" : fmt::format("; did you mean \"{}\"?", near)));
        return out;
    }
    const auto index = static_cast<std::size_t>(it - header.begin());
    std::size_t errors = 0;
    int line_no = 1;
    while (std::getline(in, line)) {
        ++line_no;
        if (trim(line).empty()) continue;
        const auto fields = split_csv(line);
        if (fields.size() != header.size()) {
            row_error(diagnostics, errors, path, line_no, "",
                      fmt::format("expected {} fields as in the header; found {}", header.size(), fields.size()));
            continue;
        }
        const auto v = parse_int(fields[index]);
        if (!v || *v < 1) {
            row_error(diagnostics, errors, path, line_no, column,
                      fmt::format("expected a positive integer token count; found \"{}\"", std::string(fields[index])));
            continue;
        }
        out.push_back(*v);
    }
    if (out.empty() && errors == 0) diagnostics.error({path, line_no, 0}, column, "the column has no values");
    return out;
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

Time ArrivalProcess::next() {
    operational_ += unit_interval();
    return Time::from_seconds(invert(operational_));
}

// ---- traces -------------------------------------------------------------------------------------

std::int64_t cached_prefix(std::int64_t input_tokens, double hit_ratio) {
    const auto cached = static_cast<std::int64_t>(std::floor(hit_ratio * static_cast<double>(input_tokens)));
    return std::clamp<std::int64_t>(cached, 0, input_tokens - 1);
}

std::vector<Request> read_azure_trace(const std::string& path, Diagnostics& diagnostics) {
    std::vector<Request> out;
    std::ifstream in(path);
    if (!in) {
        diagnostics.error({path, 0, 0}, "", "cannot open the trace file");
        return out;
    }
    std::string line;
    if (!std::getline(in, line)) {
        diagnostics.error({path, 1, 0}, "",
                          "the trace is empty; expected the header TIMESTAMP,ContextTokens,GeneratedTokens");
        return out;
    }
    const auto header = split_csv(line);
    const std::vector<std::string> wanted = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"};
    std::vector<std::size_t> index;
    for (const auto& name : wanted) {
        const auto it = std::find(header.begin(), header.end(), name);
        if (it == header.end()) {
            diagnostics.error({path, 1, 0}, name,
                              fmt::format("the header \"{}\" has no column \"{}\"; expected the Azure LLM trace "
                                          "columns TIMESTAMP,ContextTokens,GeneratedTokens",
                                          std::string(trim(line)), name));
            return out;
        }
        index.push_back(static_cast<std::size_t>(it - header.begin()));
    }
    std::size_t errors = 0;
    int line_no = 1;
    double first = 0, previous = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (trim(line).empty()) continue;
        const auto fields = split_csv(line);
        if (fields.size() != header.size()) {
            row_error(diagnostics, errors, path, line_no, "",
                      fmt::format("expected {} fields as in the header; found {}", header.size(), fields.size()));
            continue;
        }
        const auto t = parse_timestamp_seconds(fields[index[0]]);
        const auto input = parse_int(fields[index[1]]);
        const auto output = parse_int(fields[index[2]]);
        if (!t) {
            row_error(diagnostics, errors, path, line_no, "TIMESTAMP",
                      fmt::format("expected a time \"YYYY-MM-DD HH:MM:SS.fraction\" or seconds; found \"{}\"",
                                  std::string(fields[index[0]])));
            continue;
        }
        if (!input || *input < 1) {
            row_error(diagnostics, errors, path, line_no, "ContextTokens",
                      fmt::format("expected a positive integer; found \"{}\"", std::string(fields[index[1]])));
            continue;
        }
        if (!output || *output < 1) {
            row_error(diagnostics, errors, path, line_no, "GeneratedTokens",
                      fmt::format("expected a positive integer; found \"{}\"", std::string(fields[index[2]])));
            continue;
        }
        if (out.empty()) first = previous = *t;
        if (*t < previous) {
            row_error(
                diagnostics, errors, path, line_no, "TIMESTAMP",
                fmt::format("rows must be in time order; this row is {:.6f} s before the previous one", previous - *t));
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
    if (out.empty() && errors == 0) diagnostics.error({path, line_no, 0}, "", "the trace has no requests");
    return out;
}

std::vector<Request> read_mooncake_trace(const std::string& path, std::int64_t block_tokens, Diagnostics& diagnostics) {
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
            for (const auto& id : ids) {
                if (!id.is_number_integer()) {
                    bad = true;
                    break;
                }
                const auto h = id.get<std::int64_t>();
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
    r.arrival = arrivals_.next();
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
