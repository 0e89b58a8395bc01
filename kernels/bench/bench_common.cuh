// Shared pieces of the CUDA microbenchmarks: error checks, random fills, buffer rotation past L2,
// CUDA-graph timing with events, and the calibration-row collector that writes the CSV tables.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace clustersim::bench {

inline void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
#define CS_CUDA(call) ::clustersim::bench::check((call), #call)

// One calibration row: the 13 shape columns (0 = empty) plus the measured percentiles.
struct Row {
    std::string op, dtype;
    std::int64_t m = 0, n = 0, k = 0, groups = 0, batch = 0, heads = 0, kv_heads = 0, head_dim = 0, seq = 0,
                 context = 0, bytes = 0;
    double p50 = 0, p10 = 0, p90 = 0;
    std::int64_t reps = 0;
};

// Rows by op, in the order they were measured; main() writes one CSV per op.
struct Collector {
    std::map<std::string, std::vector<Row>> rows;
    std::map<std::string, std::string> skipped;  // benchmark name -> why
};

// A device buffer freed on scope exit.
struct DeviceBuffer {
    void* ptr = nullptr;
    std::size_t size = 0;
    explicit DeviceBuffer(std::size_t bytes) : size(bytes) { CS_CUDA(cudaMalloc(&ptr, std::max<std::size_t>(bytes, 256))); }
    ~DeviceBuffer() { cudaFree(ptr); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    template <typename T>
    T* as() const { return static_cast<T*>(ptr); }
};

// Fills with uniform values in [lo, hi) from a hash of the index (never zeros: zeros run faster).
void fill_bf16(void* p, std::size_t count, float lo, float hi, std::uint32_t seed, cudaStream_t s);
void fill_fp8(void* p, std::size_t count, std::uint32_t seed, cudaStream_t s);
void fill_f32(void* p, std::size_t count, float lo, float hi, std::uint32_t seed, cudaStream_t s);

// How many copies of a working set of `bytes` to rotate through so that the set in use is evicted
// from L2 before it is reused: enough to cover three times the L2 size, at most `max_copies`.
inline int rotation_copies(std::size_t bytes, std::size_t l2_bytes, int max_copies = 64) {
    if (bytes == 0) return 1;
    const std::size_t need = (3 * l2_bytes + bytes - 1) / bytes;
    return static_cast<int>(std::clamp<std::size_t>(need, 1, static_cast<std::size_t>(max_copies)));
}

struct Timing {
    double p10_us = 0, p50_us = 0, p90_us = 0;
    std::int64_t reps = 0;
};

// Times `enqueue(stream, i)` as production runs it: the calls are captured `inner` at a time into a
// CUDA graph (so CPU launch latency does not count), i rotating through the buffer copies; the graph
// is replayed for warm-up, then once per benchmark iteration between two CUDA events. Each
// iteration's time over `inner` is one sample; the percentiles are over the samples.
Timing time_graph(benchmark::State& state, cudaStream_t stream, const std::function<void(cudaStream_t, int)>& enqueue);

double percentile(std::vector<double> v, double q);

}  // namespace clustersim::bench
