// Reading published.csv with fast-cpp-csv-parser and parsing its values and tolerances.
#include "sim/validation/published_set.hpp"

#include "sim/input/diagnostics.hpp"

#include <libfccp/csv.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

namespace clustersim {
namespace {

// Quoted fields with commas inside ("EP8 within one H800 node, ..."), as RFC 4180 writes them.
using Reader = io::CSVReader<8, io::trim_chars<' ', '\t'>, io::double_quote_escape<',', '"'>, io::throw_on_overflow,
                             io::no_comment>;

// Parses a whole string as a number; nullopt if anything is left over.
std::optional<double> parse_number(std::string_view text) {
    double x = 0;
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, x);
    if (text.empty() || ec != std::errc() || p != end || !std::isfinite(x)) return std::nullopt;
    return x;
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace

PublishedValue parse_published_value(const std::string& text) {
    PublishedValue value;
    value.text = text;
    const std::string t = trim(text);
    if (auto x = parse_number(t)) {
        value.low = value.high = *x;
        return value;
    }
    // A range "LOW-HIGH": split at a '-' that follows a digit (spaces aside), so a leading minus sign
    // stays a sign.
    for (std::size_t i = 1; i < t.size(); ++i) {
        if (t[i] != '-') continue;
        const auto before = t.find_last_not_of(' ', i - 1);
        if (before == std::string::npos || !std::isdigit(static_cast<unsigned char>(t[before]))) continue;
        const auto low = parse_number(trim(std::string_view(t).substr(0, i)));
        const auto high = parse_number(trim(std::string_view(t).substr(i + 1)));
        if (low && high && *low <= *high) {
            value.low = *low;
            value.high = *high;
        }
        break;
    }
    return value;
}

std::optional<Tolerance> parse_tolerance(const std::string& text) {
    const std::string t = trim(text);
    Tolerance tolerance;
    tolerance.text = text;
    if (t == "exact") return tolerance;
    if (t.size() > 1 && t.back() == '%') {
        const auto x = parse_number(trim(std::string_view(t).substr(0, t.size() - 1)));
        if (!x || *x <= 0 || *x >= 100) return std::nullopt;
        tolerance.kind = Tolerance::Kind::relative;
        tolerance.amount = *x / 100;
        return tolerance;
    }
    for (std::string_view suffix : {"points", "point"}) {
        if (t.size() > suffix.size() && t.ends_with(suffix)) {
            const auto x = parse_number(trim(std::string_view(t).substr(0, t.size() - suffix.size())));
            if (!x || *x <= 0) return std::nullopt;
            tolerance.kind = Tolerance::Kind::points;
            tolerance.amount = *x;
            return tolerance;
        }
    }
    return std::nullopt;
}

AcceptedInterval accepted_interval(const PublishedValue& value, const Tolerance& tolerance) {
    const double low = value.low.value();
    const double high = value.high.value();
    switch (tolerance.kind) {
        case Tolerance::Kind::relative:
            return {low * (1 - tolerance.amount), high * (1 + tolerance.amount)};
        case Tolerance::Kind::points:
            return {low - tolerance.amount, high + tolerance.amount};
        case Tolerance::Kind::exact:
            break;
    }
    // "Exact" figures (bubble sizes in chunk-times) are computed in floating point; allow rounding only.
    const double slack = 1e-9 * std::max({1.0, std::abs(low), std::abs(high)});
    return {low - slack, high + slack};
}

bool within_tolerance(double predicted, const PublishedValue& value, const Tolerance& tolerance) {
    return accepted_interval(value, tolerance).contains(predicted);
}

double relative_error(double predicted, const PublishedValue& value) {
    const double nearest = std::clamp(predicted, value.low.value(), value.high.value());
    return (predicted - nearest) / nearest;
}

const PublishedRow* PublishedSet::find(const std::string& id) const {
    for (const auto& row : rows)
        if (row.id == id) return &row;
    return nullptr;
}

PublishedSet read_published_set(const std::filesystem::path& file) {
    PublishedSet set;
    set.file = file;
    Diagnostics diagnostics;
    const std::string name = file.string();
    auto error = [&](int line, const std::string& column, const std::string& message) {
        diagnostics.error({name, line, 0}, column, message);
    };
    std::set<std::string> seen;
    try {
        Reader reader(name);
        reader.read_header(io::ignore_no_column, "id", "kind", "figure", "value", "unit", "tolerance", "configuration",
                           "source");
        PublishedRow row;
        std::string value;
        std::string tolerance;
        while (
            reader.read_row(row.id, row.kind, row.figure, value, row.unit, tolerance, row.configuration, row.source)) {
            row.line = static_cast<int>(reader.get_file_line());
            if (row.id.empty()) error(row.line, "id", "every row needs an id");
            if (!seen.insert(row.id).second) error(row.line, "id", fmt::format("row id \"{}\" appears twice", row.id));
            row.value = parse_published_value(value);
            if (auto t = parse_tolerance(tolerance)) {
                row.tolerance = *t;
                // A non-numeric value can only be compared for equality, item by item.
                if (!row.value.numeric() && t->kind != Tolerance::Kind::exact)
                    error(row.line, "value",
                          fmt::format("expected a number or a range LOW-HIGH for a {} tolerance; found \"{}\"",
                                      tolerance, value));
                if (row.value.numeric() && t->kind == Tolerance::Kind::relative && !(*row.value.low > 0))
                    error(row.line, "value",
                          fmt::format("a relative tolerance needs a positive published value; found {}", value));
                if (t->kind == Tolerance::Kind::points && row.unit != "%")
                    error(row.line, "tolerance",
                          fmt::format("a tolerance in points needs a figure in %; the unit is \"{}\"", row.unit));
            } else {
                error(row.line, "tolerance",
                      fmt::format("expected \"N%\", \"N points\" or \"exact\"; found \"{}\"", tolerance));
            }
            set.rows.push_back(row);
        }
    } catch (const io::error::base& e) {
        // Unreadable file, wrong header, a row with too few or too many columns, an unclosed quote.
        const auto* located = dynamic_cast<const io::error::with_file_line*>(&e);
        error(located ? located->file_line : 0, "", e.what());
    }
    if (set.rows.empty() && diagnostics.empty()) error(0, "", "the file has a header but no rows");
    diagnostics.throw_if_any();
    return set;
}

}  // namespace clustersim
