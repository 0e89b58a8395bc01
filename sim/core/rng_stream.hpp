// RngStream: a deterministic random number stream for one simulation component.
//
// Each component asks the Simulator for its own stream by name, so adding a component, or drawing
// more numbers in one, never shifts the numbers another component sees. The generator is
// xoshiro256** seeded through SplitMix64 from (run seed, FNV-1a hash of the name); the
// distributions are written here rather than taken from <random>, whose distributions differ
// between standard libraries and would break bit-identical outputs across machines.
#pragma once

#include <cstdint>
#include <string_view>

namespace clustersim {

class RngStream {
public:
    RngStream(std::uint64_t run_seed, std::string_view component);

    std::uint64_t next_u64();
    // Uniform in [0, 1) with 53 random bits.
    double uniform01();
    // Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }
    // Uniform integer in [0, n); n must be positive.
    std::uint64_t uniform_int(std::uint64_t n);
    // Exponential with the given mean.
    double exponential(double mean);
    // Standard normal (Box-Muller, one value per call).
    double normal();

private:
    std::uint64_t s_[4];
};

// Stable 64-bit FNV-1a hash of a string: the same on every platform, unlike std::hash.
std::uint64_t stable_hash(std::string_view text);

}  // namespace clustersim
