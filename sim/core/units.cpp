// Parsing and printing of physical quantities with their units.
#include "units.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

namespace clustersim {
namespace {

struct UnitFactor {
    std::string_view name;
    double factor;  // multiply the number by this to get the base unit (s, B, B/s, FLOP, FLOP/s)
};

constexpr std::array kTimeUnits{
    UnitFactor{"ps", 1e-12}, UnitFactor{"ns", 1e-9}, UnitFactor{"us", 1e-6}, UnitFactor{"\xC2\xB5s", 1e-6},
    UnitFactor{"ms", 1e-3},  UnitFactor{"s", 1.0},   UnitFactor{"min", 60.0}, UnitFactor{"h", 3600.0},
};

constexpr double kKi = 1024.0;
constexpr std::array kByteUnits{
    UnitFactor{"B", 1.0},          UnitFactor{"kB", 1e3},        UnitFactor{"KB", 1e3},
    UnitFactor{"MB", 1e6},         UnitFactor{"GB", 1e9},        UnitFactor{"TB", 1e12},
    UnitFactor{"PB", 1e15},        UnitFactor{"KiB", kKi},       UnitFactor{"MiB", kKi * kKi},
    UnitFactor{"GiB", kKi * kKi * kKi}, UnitFactor{"TiB", kKi * kKi * kKi * kKi},
};

// Bits are accepted only for rates, where network people write them ("400Gbps").
constexpr std::array kBitUnits{
    UnitFactor{"b", 1.0}, UnitFactor{"Kb", 1e3}, UnitFactor{"kb", 1e3}, UnitFactor{"Mb", 1e6},
    UnitFactor{"Gb", 1e9}, UnitFactor{"Tb", 1e12}, UnitFactor{"bit", 1.0}, UnitFactor{"Kbit", 1e3},
    UnitFactor{"Mbit", 1e6}, UnitFactor{"Gbit", 1e9}, UnitFactor{"Tbit", 1e12},
};

constexpr std::array kFlopPrefixes{
    UnitFactor{"", 1.0},   UnitFactor{"K", 1e3},   UnitFactor{"M", 1e6},  UnitFactor{"G", 1e9},
    UnitFactor{"T", 1e12}, UnitFactor{"P", 1e15},  UnitFactor{"E", 1e18},
};

struct NumberAndUnit {
    double number;
    std::string_view unit;
};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits "1.5 us" into 1.5 and "us". `what` and `example` shape the error messages.
NumberAndUnit split(std::string_view text, std::string_view what, std::string_view example) {
    const std::string_view s = trim(text);
    double number = 0.0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
    if (ec != std::errc() || end == s.data()) {
        throw UnitError(fmt::format("expected {} written as a number with a unit, such as {}; found \"{}\"",
                                    what, example, text));
    }
    if (!std::isfinite(number) || number < 0) {
        throw UnitError(fmt::format("expected {} that is finite and not negative; found \"{}\"", what, text));
    }
    const std::string_view unit = trim(s.substr(static_cast<std::size_t>(end - s.data())));
    if (unit.empty()) {
        throw UnitError(fmt::format("expected {} with a unit, such as {}; found \"{}\" with no unit", what,
                                    example, text));
    }
    return {number, unit};
}

template <std::size_t N>
const UnitFactor* find(const std::array<UnitFactor, N>& table, std::string_view unit) {
    for (const auto& u : table)
        if (u.name == unit) return &u;
    return nullptr;
}

// Prints a value in the shortest form that reads back to the same double.
std::string number(double v) { return fmt::format("{}", v); }

}  // namespace

Time parse_time(std::string_view text) {
    const auto [n, unit] = split(text, "a time", "\"1.5us\", \"20ms\" or \"3s\"");
    if (const auto* u = find(kTimeUnits, unit)) {
        const double ps = n * u->factor * 1e12;
        if (!(std::abs(ps) < 9.2e18)) throw UnitError(fmt::format("time \"{}\" is too long to simulate", text));
        return Time::from_seconds(n * u->factor);
    }
    throw UnitError(fmt::format("unknown time unit \"{}\" in \"{}\"; expected one of ps, ns, us, ms, s, min, h",
                                unit, text));
}

Bytes parse_bytes(std::string_view text) {
    const auto [n, unit] = split(text, "a size", "\"80GiB\", \"4KB\" or \"512B\"");
    if (const auto* u = find(kByteUnits, unit)) return Bytes(n * u->factor);
    if (find(kBitUnits, unit)) {
        throw UnitError(fmt::format("\"{}\" is in bits but a size in bytes is expected; write B (bytes), "
                                    "not b (bits), such as \"{}{}\"",
                                    text, number(n), std::string(unit.substr(0, unit.size() - 1)) + "B"));
    }
    throw UnitError(fmt::format(
        "unknown size unit \"{}\" in \"{}\"; expected one of B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, "
        "GiB, TiB (powers of 1024)",
        unit, text));
}

Bandwidth parse_bandwidth(std::string_view text) {
    const auto [n, unit] = split(text, "a bandwidth", "\"400Gbps\", \"50GB/s\"");
    // Forms: <bytes>/s, <bytes>ps ("GBps"), <bits>/s, <bits>ps ("Gbps").
    std::string_view amount;
    if (unit.ends_with("/s")) {
        amount = unit.substr(0, unit.size() - 2);
    } else if (unit.ends_with("ps") && unit.size() > 2) {
        amount = unit.substr(0, unit.size() - 2);
    } else {
        throw UnitError(fmt::format("unknown bandwidth unit \"{}\" in \"{}\"; expected bytes per second "
                                    "(B/s, MB/s, GB/s, GiB/s, GBps) or bits per second (Mbps, Gbps, Gb/s, Tbps)",
                                    unit, text));
    }
    if (const auto* u = find(kByteUnits, amount)) return Bandwidth(n * u->factor);
    if (const auto* u = find(kBitUnits, amount)) return Bandwidth(n * u->factor / 8.0);
    throw UnitError(fmt::format("unknown bandwidth unit \"{}\" in \"{}\"; expected bytes per second "
                                "(B/s, MB/s, GB/s, GiB/s, GBps) or bits per second (Mbps, Gbps, Gb/s, Tbps)",
                                unit, text));
}

namespace {
// FLOP counts and rates share prefixes; a rate ends in "FLOPS" or "FLOP/s", a count in "FLOP" or
// "FLOPs" (lowercase s: the plural, the way papers write counts).
double flop_prefix(std::string_view prefix, std::string_view text, std::string_view what) {
    if (const auto* u = find(kFlopPrefixes, prefix)) return u->factor;
    throw UnitError(fmt::format("unknown prefix \"{}\" in {} \"{}\"; expected one of K, M, G, T, P, E", prefix,
                                what, text));
}
}  // namespace

Flops parse_flops(std::string_view text) {
    const auto [n, unit] = split(text, "an amount of work", "\"2.5TFLOP\" or \"300GFLOP\"");
    for (std::string_view suffix : {"FLOPs", "FLOP"}) {
        if (unit.ends_with(suffix)) {
            return Flops(n * flop_prefix(unit.substr(0, unit.size() - suffix.size()), text, "work"));
        }
    }
    if (unit.ends_with("FLOPS") || unit.ends_with("FLOP/s")) {
        throw UnitError(fmt::format("\"{}\" is a rate (FLOPS) but an amount of work is expected; write FLOP, "
                                    "such as \"2.5TFLOP\"",
                                    text));
    }
    throw UnitError(fmt::format("unknown unit \"{}\" in \"{}\"; expected an amount of work such as \"2.5TFLOP\"",
                                unit, text));
}

FlopRate parse_flop_rate(std::string_view text) {
    const auto [n, unit] = split(text, "a compute rate", "\"989TFLOPS\" or \"1.98PFLOP/s\"");
    for (std::string_view suffix : {"FLOPS", "FLOP/s"}) {
        if (unit.ends_with(suffix)) {
            return FlopRate(n * flop_prefix(unit.substr(0, unit.size() - suffix.size()), text, "rate"));
        }
    }
    throw UnitError(fmt::format("unknown unit \"{}\" in \"{}\"; expected a compute rate such as \"989TFLOPS\"",
                                unit, text));
}

TimeOverflow::TimeOverflow(double seconds)
    : std::overflow_error(fmt::format("a time of {:.3g} s is outside the simulator's clock (integer picoseconds, "
                                      "at most 2^63 ps = {:.4g} s, about 106 days)",
                                      seconds, 9223372036854775808.0 * 1e-12)),
      seconds_(seconds) {}

std::string to_string(Time t) {
    // Exact: integer picoseconds printed in the largest unit that keeps them whole or short.
    const std::int64_t ps = t.ps();
    const std::int64_t mag = ps < 0 ? -ps : ps;
    struct Scale { std::int64_t div; const char* name; };
    constexpr Scale scales[] = {{1000'000'000'000, "s"}, {1000'000'000, "ms"}, {1000'000, "us"}, {1000, "ns"}};
    for (const auto& s : scales) {
        if (mag >= s.div) {
            const std::int64_t whole = mag / s.div;
            std::int64_t frac = mag % s.div;
            std::string digits;
            if (frac != 0) {
                digits = fmt::format("{:0{}d}", frac, static_cast<int>(std::log10(static_cast<double>(s.div)) + 0.5));
                while (!digits.empty() && digits.back() == '0') digits.pop_back();
                digits = "." + digits;
            }
            return fmt::format("{}{}{}{}", ps < 0 ? "-" : "", whole, digits, s.name);
        }
    }
    return fmt::format("{}ps", ps);
}

std::string to_string(Bytes b) {
    const double v = b.bytes();
    const double gib = kKi * kKi * kKi;
    if (v >= gib && std::fmod(v, gib / 1024.0) == 0.0) return number(v / gib) + "GiB";
    if (v >= 1e12) return number(v / 1e12) + "TB";
    if (v >= 1e9) return number(v / 1e9) + "GB";
    if (v >= 1e6) return number(v / 1e6) + "MB";
    if (v >= 1e3) return number(v / 1e3) + "KB";
    return number(v) + "B";
}

std::string to_string(Bandwidth bw) { return number(bw.gb_per_second()) + "GB/s"; }

std::string to_string(Flops f) {
    const double v = f.flops();
    if (v >= 1e15) return number(v / 1e15) + "PFLOP";
    if (v >= 1e12) return number(v / 1e12) + "TFLOP";
    if (v >= 1e9) return number(v / 1e9) + "GFLOP";
    return number(v) + "FLOP";
}

std::string to_string(FlopRate r) { return number(r.tflops()) + "TFLOPS"; }

}  // namespace clustersim
