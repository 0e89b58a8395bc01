// Strong types for the physical quantities of the simulator: time, bytes, bandwidth, FLOPs, FLOP rate.
//
// Only arithmetic that means something compiles: Bytes / Bandwidth is a Time, Flops / FlopRate is a
// Time, Bandwidth * Time is Bytes, Time + Time is a Time. Simulated time is an integer count of
// picoseconds, so event ordering is exact and identical on every machine; the other quantities are
// doubles because they are divided and shared (a link's bandwidth split among flows) long before
// they become a time.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <compare>
#include <concepts>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace clustersim {

// A simulated time outside what Time can hold (2^63 ps, about 106 days, either way; or not a number).
// Raised where the time is computed, so that a wrapped value is never reported; the CLI treats it as a
// user error (the input asks for more simulated time than the simulator can count), and the scenario
// kinds and commands that know which inputs set the times rethrow it naming them.
class TimeOverflow : public std::overflow_error {
public:
    explicit TimeOverflow(double seconds);
    explicit TimeOverflow(const std::string& message) : std::overflow_error(message) {}
    double seconds() const { return seconds_; }

private:
    double seconds_ = 0;
};

// Simulated time in integer picoseconds. 2^63 ps is about 106 days of simulated time, far past any
// training step or serving day; one byte at 800 Gb/s is 10 ps, so nothing we model is below the
// resolution. Arithmetic that would leave that range throws TimeOverflow instead of wrapping.
class Time {
public:
    constexpr Time() = default;
    static constexpr Time from_ps(std::int64_t ps) { return Time(ps); }
    static constexpr Time from_ns(double ns) { return from_seconds(ns * 1e-9); }
    static constexpr Time from_us(double us) { return from_seconds(us * 1e-6); }
    static constexpr Time from_ms(double ms) { return from_seconds(ms * 1e-3); }
    // Rounds to the nearest picosecond. Throws TimeOverflow for a time of 2^63 ps or more either way
    // (a double below 2^63 is at most 2^63 - 1024, so its rounding fits) and for NaN.
    static constexpr Time from_seconds(double s) {
        const double ps = s * 1e12;
        // 2^63 as a double; NaN fails both comparisons.
        constexpr double limit = 9223372036854775808.0;
        if (!(ps < limit && ps > -limit)) throw_overflow(s);
        return Time(static_cast<std::int64_t>(ps < 0 ? ps - 0.5 : ps + 0.5));
    }
    static constexpr Time zero() { return Time(0); }
    static constexpr Time max() { return Time(std::numeric_limits<std::int64_t>::max()); }

    constexpr std::int64_t ps() const { return ps_; }
    constexpr double ns() const { return static_cast<double>(ps_) * 1e-3; }
    constexpr double us() const { return static_cast<double>(ps_) * 1e-6; }
    constexpr double ms() const { return static_cast<double>(ps_) * 1e-9; }
    constexpr double seconds() const { return static_cast<double>(ps_) * 1e-12; }

    constexpr Time operator+(Time o) const {
        std::int64_t r = 0;
        if (__builtin_add_overflow(ps_, o.ps_, &r)) throw_overflow(seconds() + o.seconds());
        return Time(r);
    }
    constexpr Time operator-(Time o) const {
        std::int64_t r = 0;
        if (__builtin_sub_overflow(ps_, o.ps_, &r)) throw_overflow(seconds() - o.seconds());
        return Time(r);
    }
    constexpr Time& operator+=(Time o) { return *this = *this + o; }
    constexpr Time& operator-=(Time o) { return *this = *this - o; }
    // Integer scaling is exact; floating-point scaling rounds to the nearest picosecond.
    template <std::integral I>
    constexpr Time operator*(I k) const {
        std::int64_t r = 0;
        if (__builtin_mul_overflow(ps_, static_cast<std::int64_t>(k), &r))
            throw_overflow(seconds() * static_cast<double>(k));
        return Time(r);
    }
    template <std::floating_point F>
    constexpr Time operator*(F k) const { return from_seconds(seconds() * static_cast<double>(k)); }
    template <std::integral I>
    constexpr Time operator/(I k) const { return Time(ps_ / static_cast<std::int64_t>(k)); }
    constexpr double operator/(Time o) const { return static_cast<double>(ps_) / static_cast<double>(o.ps_); }
    constexpr auto operator<=>(const Time&) const = default;

private:
    constexpr explicit Time(std::int64_t ps) : ps_(ps) {}
    [[noreturn]] static void throw_overflow(double seconds) { throw TimeOverflow(seconds); }
    std::int64_t ps_ = 0;
};
template <typename K>
    requires std::is_arithmetic_v<K>
constexpr Time operator*(K k, Time t) { return t * k; }

namespace detail {
// The shared arithmetic of a double-valued quantity: same-kind sums, scaling, and ratios.
template <typename Derived>
class Quantity {
public:
    constexpr Quantity() = default;
    constexpr explicit Quantity(double v) : v_(v) {}
    constexpr double value() const { return v_; }

    constexpr Derived operator+(Derived o) const { return Derived(v_ + o.value()); }
    constexpr Derived operator-(Derived o) const { return Derived(v_ - o.value()); }
    constexpr Derived& operator+=(Derived o) { v_ += o.value(); return self(); }
    constexpr Derived& operator-=(Derived o) { v_ -= o.value(); return self(); }
    constexpr Derived operator*(double k) const { return Derived(v_ * k); }
    constexpr Derived operator/(double k) const { return Derived(v_ / k); }
    constexpr double operator/(Derived o) const { return v_ / o.value(); }
    constexpr auto operator<=>(const Quantity&) const = default;
    friend constexpr Derived operator*(double k, Derived q) { return Derived(k * q.value()); }

private:
    constexpr Derived& self() { return static_cast<Derived&>(*this); }
    double v_ = 0.0;
};
}  // namespace detail

// An amount of data in bytes.
class Bytes : public detail::Quantity<Bytes> {
public:
    using Quantity::Quantity;
    constexpr double bytes() const { return value(); }
    constexpr double gib() const { return value() / (1024.0 * 1024.0 * 1024.0); }
    constexpr double gb() const { return value() * 1e-9; }
};

// A data rate in bytes per second.
class Bandwidth : public detail::Quantity<Bandwidth> {
public:
    using Quantity::Quantity;
    static constexpr Bandwidth bytes_per_second(double v) { return Bandwidth(v); }
    constexpr double bytes_per_second() const { return value(); }
    constexpr double gb_per_second() const { return value() * 1e-9; }
    constexpr double gbit_per_second() const { return value() * 8e-9; }
};

// An amount of floating-point work.
class Flops : public detail::Quantity<Flops> {
public:
    using Quantity::Quantity;
    constexpr double flops() const { return value(); }
};

// A compute rate in floating-point operations per second.
class FlopRate : public detail::Quantity<FlopRate> {
public:
    using Quantity::Quantity;
    constexpr double flops_per_second() const { return value(); }
    constexpr double tflops() const { return value() * 1e-12; }
};

// The cross-kind arithmetic that has a physical meaning.
constexpr Time operator/(Bytes b, Bandwidth bw) { return Time::from_seconds(b.value() / bw.value()); }
constexpr Bytes operator*(Bandwidth bw, Time t) { return Bytes(bw.value() * t.seconds()); }
constexpr Bytes operator*(Time t, Bandwidth bw) { return bw * t; }
constexpr Bandwidth operator/(Bytes b, Time t) { return Bandwidth(b.value() / t.seconds()); }
constexpr Time operator/(Flops f, FlopRate r) { return Time::from_seconds(f.value() / r.value()); }
constexpr Flops operator*(FlopRate r, Time t) { return Flops(r.value() * t.seconds()); }
constexpr Flops operator*(Time t, FlopRate r) { return r * t; }
constexpr FlopRate operator/(Flops f, Time t) { return FlopRate(f.value() / t.seconds()); }

// Human-readable forms that parse back to the same quantity (used in resolved scenarios and logs).
std::string to_string(Time t);
std::string to_string(Bytes b);
std::string to_string(Bandwidth bw);
std::string to_string(Flops f);
std::string to_string(FlopRate r);

// Parsers for quantities written in input files. The unit is mandatory: "400Gbps", "50GB/s",
// "1.5us", "80GiB", "989TFLOPS". Whitespace between number and unit is allowed. Bits ("b") and
// bytes ("B") are told apart by case, decimal (GB) and binary (GiB) prefixes by the "i". On a bad
// string they throw UnitError with a message saying what was expected.
class UnitError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
Time parse_time(std::string_view text);
Bytes parse_bytes(std::string_view text);
Bandwidth parse_bandwidth(std::string_view text);
Flops parse_flops(std::string_view text);
FlopRate parse_flop_rate(std::string_view text);

namespace literals {
constexpr Time operator""_ps(unsigned long long v) { return Time::from_ps(static_cast<std::int64_t>(v)); }
constexpr Time operator""_ns(unsigned long long v) { return Time::from_ps(static_cast<std::int64_t>(v) * 1000); }
constexpr Time operator""_ns(long double v) { return Time::from_ns(static_cast<double>(v)); }
constexpr Time operator""_us(unsigned long long v) { return Time::from_ps(static_cast<std::int64_t>(v) * 1000'000); }
constexpr Time operator""_us(long double v) { return Time::from_us(static_cast<double>(v)); }
constexpr Time operator""_ms(unsigned long long v) { return Time::from_ps(static_cast<std::int64_t>(v) * 1000'000'000); }
constexpr Time operator""_ms(long double v) { return Time::from_ms(static_cast<double>(v)); }
constexpr Time operator""_s(unsigned long long v) { return Time::from_ps(static_cast<std::int64_t>(v) * 1000'000'000'000); }
constexpr Time operator""_s(long double v) { return Time::from_seconds(static_cast<double>(v)); }

constexpr Bytes operator""_B(unsigned long long v) { return Bytes(static_cast<double>(v)); }
constexpr Bytes operator""_KB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1e3); }
constexpr Bytes operator""_MB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1e6); }
constexpr Bytes operator""_GB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1e9); }
constexpr Bytes operator""_KiB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1024.0); }
constexpr Bytes operator""_MiB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1024.0 * 1024.0); }
constexpr Bytes operator""_GiB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1024.0 * 1024.0 * 1024.0); }

constexpr Bandwidth operator""_Gbps(unsigned long long v) { return Bandwidth(static_cast<double>(v) * 1e9 / 8.0); }
constexpr Bandwidth operator""_Gbps(long double v) { return Bandwidth(static_cast<double>(v) * 1e9 / 8.0); }
constexpr Bandwidth operator""_GBps(unsigned long long v) { return Bandwidth(static_cast<double>(v) * 1e9); }
constexpr Bandwidth operator""_GBps(long double v) { return Bandwidth(static_cast<double>(v) * 1e9); }

constexpr Flops operator""_GFLOP(unsigned long long v) { return Flops(static_cast<double>(v) * 1e9); }
constexpr Flops operator""_TFLOP(unsigned long long v) { return Flops(static_cast<double>(v) * 1e12); }
constexpr FlopRate operator""_TFLOPS(unsigned long long v) { return FlopRate(static_cast<double>(v) * 1e12); }
constexpr FlopRate operator""_TFLOPS(long double v) { return FlopRate(static_cast<double>(v) * 1e12); }
}  // namespace literals

}  // namespace clustersim

// fmt prints quantities the way input files write them ("1.5us", "50GB/s").
template <typename Q>
    requires(std::is_same_v<Q, clustersim::Time> || std::is_same_v<Q, clustersim::Bytes> ||
             std::is_same_v<Q, clustersim::Bandwidth> || std::is_same_v<Q, clustersim::Flops> ||
             std::is_same_v<Q, clustersim::FlopRate>)
struct fmt::formatter<Q> : fmt::formatter<std::string> {
    auto format(const Q& q, fmt::format_context& ctx) const {
        return fmt::formatter<std::string>::format(clustersim::to_string(q), ctx);
    }
};
