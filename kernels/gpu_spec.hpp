// A GPU's datasheet figures (peak dense FLOP rates, HBM bandwidth and size, SMs, L2), each with its source.
//
// The kernel cost model uses these for its roofline (bounds and fallback) and to scale a measured
// profile to another GPU ("derived" profiles). The figures come from kernels/gpus/<name>.yaml, where
// every number names the vendor document it was read from.
#pragma once

#include "sim/core/units.hpp"

#include <optional>
#include <string>
#include <vector>

namespace clustersim {

// A number from a GPU spec file together with the document it came from.
template <typename T>
struct SourcedValue {
    T value{};
    std::string source;
};

// A kernel's achieved rates as its authors publish them for this GPU ("up to" figures): the cost model
// prices an operator that no table covers as max(FLOPs / compute, bytes / memory) with provenance
// `published`, in place of the datasheet roofline at roofline_efficiency.
struct PublishedKernelRates {
    std::string op;     // a name of known_ops() (kernels/calibration_table.hpp)
    std::string dtype;
    FlopRate compute;   // achieved when compute-bound
    Bandwidth memory;   // achieved when memory-bound
    bool memory_from_roofline = false;  // no published memory rate: the roofline's (HBM x its efficiency)
    std::string source;
    bool derived = false;  // scaled from another GPU's published rates by datasheet ratios (provenance derived)
};

struct GpuSpec {
    std::string name;         // file stem, e.g. "h100-sxm"; also the calibration folder's name
    std::string description;  // e.g. "NVIDIA H100 SXM5 80GB"
    SourcedValue<FlopRate> bf16_dense;   // peak dense BF16 tensor-core rate (not the 2:4-sparsity figure)
    SourcedValue<FlopRate> fp8_dense;    // peak dense FP8 tensor-core rate
    SourcedValue<Bandwidth> hbm_bandwidth;
    SourcedValue<Bytes> hbm_capacity;
    std::optional<SourcedValue<int>> sm_count;     // absent where no public document states it
    std::optional<SourcedValue<Bytes>> l2_cache;   // absent where no public document states it
    // Fraction of the peaks a well-written kernel reaches, for the pure roofline used when no table
    // covers an operator (see kernels/README.md). Both in (0, 1].
    double compute_efficiency = 1.0;
    double memory_efficiency = 1.0;
    std::string efficiency_source;
    std::vector<PublishedKernelRates> kernel_rates;
    // GPUs whose own measured and published tables are scaled to this one (by datasheet ratios) for the
    // operators it has no table of its own for; in order of preference, empty if none.
    std::vector<std::string> derive_from;

    // Peak dense tensor-core rate for a dtype name ("bf16", "fp8"); other dtypes use the BF16 rate.
    FlopRate peak_flop_rate(const std::string& dtype) const;
    // The published rates for an op and dtype, or nullptr.
    const PublishedKernelRates* published_rates(const std::string& op, const std::string& dtype) const;
};

// Loads kernels/gpus/<name>.yaml-style files; throws InputError with every problem found.
GpuSpec load_gpu_spec(const std::string& path);

}  // namespace clustersim
