// The published validation set: rows of real measurements read from published.csv, with their values
// and tolerances parsed into numbers that a prediction can be checked against.
//
// The file is ../shared/validation/published.csv (see its README): one row per measurement, columns
// id, kind, figure, value, unit, tolerance, configuration, source; fields with commas are quoted.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace clustersim {

// A published value: one number ("1543"), a range ("3.1-4.6", the measurement varied between the two),
// or text that is neither (the exact rows list several values, "PP4: 2; PP8: 6; PP16: 14").
struct PublishedValue {
    std::string text;            // as written in the file
    std::optional<double> low;   // the number, or the range's lower end; empty when not numeric
    std::optional<double> high;  // equal to low for a single number
    bool numeric() const { return low.has_value(); }
    bool is_range() const { return numeric() && *high != *low; }
};

// Parses a published value; non-numeric text gives a value with no numbers (never throws).
PublishedValue parse_published_value(const std::string& text);

// How far a prediction may stray from the published value.
struct Tolerance {
    enum class Kind {
        relative,  // "10%": a fraction of the published value
        points,    // "5 points": an absolute distance in the row's unit (percentage points for a % figure)
        exact,     // "exact": equal up to floating-point rounding
    };
    Kind kind = Kind::exact;
    double amount = 0;  // the fraction (0.10 for "10%") or the points; 0 for exact
    std::string text;   // as written in the file
};

// Parses "10%", "5 points" or "exact"; returns nullopt for anything else.
std::optional<Tolerance> parse_tolerance(const std::string& text);

// The interval of predictions a tolerance accepts around a published number or range: the range
// widened by the tolerance on both sides.
struct AcceptedInterval {
    double low = 0;
    double high = 0;
    bool contains(double x) const { return x >= low && x <= high; }
};
AcceptedInterval accepted_interval(const PublishedValue& value, const Tolerance& tolerance);

// Whether a prediction meets a numeric published value within its tolerance.
bool within_tolerance(double predicted, const PublishedValue& value, const Tolerance& tolerance);

// The signed relative error of a prediction, (predicted - published) / published, against the nearest
// point of the published range: zero anywhere inside a range, as for a single number hit exactly.
double relative_error(double predicted, const PublishedValue& value);

struct PublishedRow {
    std::string id;
    std::string kind;  // training, network, serving, exact
    std::string figure;
    PublishedValue value;
    std::string unit;
    Tolerance tolerance;
    std::string configuration;
    std::string source;
    int line = 0;  // line in the file, for messages
};

struct PublishedSet {
    std::filesystem::path file;
    std::vector<PublishedRow> rows;  // in file order
    const PublishedRow* find(const std::string& id) const;
};

// Reads and checks the whole file; throws InputError listing every malformed row (bad tolerance,
// non-numeric value with a non-exact tolerance, duplicate or missing id, wrong column count).
PublishedSet read_published_set(const std::filesystem::path& file);

}  // namespace clustersim
