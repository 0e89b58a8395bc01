// Deterministic per-component random streams (xoshiro256** by Blackman and Vigna, public domain).
#include "rng_stream.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace clustersim {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

std::uint64_t stable_hash(std::string_view text) {
    std::uint64_t h = 0xCBF29CE484222325ULL;
    for (unsigned char c : text) {
        h ^= c;
        h *= 0x100000001B3ULL;
    }
    return h;
}

RngStream::RngStream(std::uint64_t run_seed, std::string_view component) {
    std::uint64_t state = run_seed ^ stable_hash(component);
    for (auto& word : s_) word = splitmix64(state);
}

std::uint64_t RngStream::next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double RngStream::uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::uint64_t RngStream::uniform_int(std::uint64_t n) {
    if (n == 0) throw std::invalid_argument("RngStream::uniform_int needs a positive bound");
    // Lemire's nearly divisionless method: unbiased and platform-independent.
    __extension__ typedef unsigned __int128 U128;
    U128 m = static_cast<U128>(next_u64()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
        const std::uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = static_cast<U128>(next_u64()) * n;
            low = static_cast<std::uint64_t>(m);
        }
    }
    return static_cast<std::uint64_t>(m >> 64);
}

double RngStream::exponential(double mean) { return -mean * std::log1p(-uniform01()); }

double RngStream::normal() {
    const double u1 = 1.0 - uniform01();  // in (0, 1], so the log is finite
    const double u2 = uniform01();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace clustersim
