// Reading a GPU spec file (kernels/gpus/*.yaml) into GpuSpec, every field declared once and validated.
#include "kernels/gpu_spec.hpp"

#include "kernels/calibration_table.hpp"
#include "sim/input/yaml_reader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

namespace clustersim {
namespace {

template <typename T>
SourcedValue<T> read_sourced(MapReader& parent, std::string_view key, std::string_view meaning, Check<T> check) {
    MapReader r = parent.child(key, meaning, true);
    SourcedValue<T> out;
    out.value = r.required<T>("value", meaning, std::move(check));
    out.source = r.required<std::string>("source", "the public document this number was read from");
    if (out.source.empty()) r.error("source", "expected the name of a public document; found an empty string");
    r.finish();
    return out;
}

template <typename T>
std::optional<SourcedValue<T>> read_optional_sourced(MapReader& parent, std::string_view key, std::string_view meaning,
                                                     Check<T> check) {
    if (!parent.has(key)) {
        parent.child(key, meaning, false);  // declares the key so finish() accepts its absence
        return std::nullopt;
    }
    return read_sourced<T>(parent, key, meaning, std::move(check));
}

}  // namespace

FlopRate GpuSpec::peak_flop_rate(const std::string& dtype) const {
    if (dtype == "fp8") return fp8_dense.value;
    return bf16_dense.value;
}

const PublishedKernelRates* GpuSpec::published_rates(const std::string& op, const std::string& dtype) const {
    for (const auto& r : kernel_rates)
        if (r.op == op && r.dtype == dtype) return &r;
    return nullptr;
}

GpuSpec load_gpu_spec(const std::string& path) {
    Diagnostics diagnostics;
    auto doc = YamlDocument::load_file(path, diagnostics);
    MapReader r = MapReader::root(doc);
    GpuSpec spec;
    spec.name = r.required<std::string>("name", "short name, the same as the file stem and calibration folder");
    const std::string stem = std::filesystem::path(path).stem().string();
    if (doc->parsed() && !spec.name.empty() && spec.name != stem)
        r.error("name", "expected the file's stem \"" + stem + "\"; found \"" + spec.name + "\"");
    spec.description = r.optional<std::string>("description", "", "the product's full name");
    spec.bf16_dense = read_sourced<FlopRate>(r, "bf16_dense", "peak dense BF16 tensor-core rate", positive<FlopRate>());
    spec.fp8_dense = read_sourced<FlopRate>(r, "fp8_dense", "peak dense FP8 tensor-core rate", positive<FlopRate>());
    spec.hbm_bandwidth = read_sourced<Bandwidth>(r, "hbm_bandwidth", "HBM bandwidth", positive<Bandwidth>());
    spec.hbm_capacity = read_sourced<Bytes>(r, "hbm_capacity", "HBM capacity", positive<Bytes>());
    spec.sm_count = read_optional_sourced<int>(r, "sm_count", "number of streaming multiprocessors", at_least(1));
    spec.l2_cache = read_optional_sourced<Bytes>(r, "l2_cache", "L2 cache size", positive<Bytes>());
    {
        MapReader e = r.child("roofline_efficiency", "fractions of the peaks reached, for the pure roofline");
        spec.compute_efficiency = e.required<double>("compute", "fraction of peak FLOP rate", in_range(0.01, 1.0));
        spec.memory_efficiency = e.required<double>("memory", "fraction of peak HBM bandwidth", in_range(0.01, 1.0));
        spec.efficiency_source = e.required<std::string>("source", "where these fractions come from");
        e.finish();
    }
    for (MapReader k : r.list_of_maps("kernel_rates", "kernels' published achieved rates on this GPU", false)) {
        PublishedKernelRates rates;
        rates.op = k.required<std::string>("op", "operator name (kernels/README.md)");
        rates.dtype = k.required<std::string>("dtype", "the operator's dtype");
        rates.compute = k.required<FlopRate>("compute", "achieved FLOP rate when compute-bound", positive<FlopRate>());
        // A source that gives only a FLOP rate (attention prefill, say) leaves the memory side to the roofline.
        if (const auto memory = k.maybe<Bandwidth>("memory", "achieved HBM bandwidth when memory-bound (default: the "
                                                             "roofline's, HBM bandwidth x its efficiency)",
                                                   positive<Bandwidth>())) {
            rates.memory = *memory;
        } else {
            rates.memory = spec.hbm_bandwidth.value * spec.memory_efficiency;
            rates.memory_from_roofline = true;
        }
        rates.source = k.required<std::string>("source", "the document that publishes these rates");
        rates.derived = k.choice("provenance", {"published", "derived"}, std::string("published"),
                                 "published: this GPU's own figures; derived: another GPU's, scaled by datasheet "
                                 "ratios") == "derived";
        const auto& ops = known_ops();
        if (!rates.op.empty() && std::find(ops.begin(), ops.end(), rates.op) == ops.end())
            k.error("op", fmt::format("expected one of the known operators ({}); found \"{}\"", fmt::join(ops, ", "), rates.op));
        else if (!rates.op.empty() && !op_accepts_dtype(rates.op, rates.dtype))
            k.error("dtype", fmt::format("operator {} does not take dtype \"{}\"; expected {}", rates.op, rates.dtype,
                                         accepted_dtypes(rates.op)));
        if (rates.compute.value() > spec.peak_flop_rate(rates.dtype).value())
            k.error("compute", "expected at most the datasheet peak of the dtype (a published rate above it is a typo)");
        if (rates.memory.value() > spec.hbm_bandwidth.value.value())
            k.error("memory", "expected at most the datasheet HBM bandwidth (a published rate above it is a typo)");
        k.finish();
        spec.kernel_rates.push_back(std::move(rates));
    }
    // One name or a list of them, in order of preference.
    constexpr std::string_view kDeriveMeaning = "GPUs whose measured and published tables are scaled for this one";
    const YAML::Node node = r.node();
    if (const YAML::Node d = node["derive_from"]; d.IsDefined() && d.IsSequence())
        spec.derive_from = r.list<std::string>("derive_from", kDeriveMeaning, false);
    else if (const std::string one = r.optional<std::string>("derive_from", "", kDeriveMeaning); !one.empty())
        spec.derive_from.push_back(one);
    for (const std::string& source : spec.derive_from)
        if (source.empty() || source == spec.name)
            r.error("derive_from", fmt::format("expected the names of other GPUs' specs; found \"{}\"", source));
    r.finish();
    diagnostics.throw_if_any();
    return spec;
}

}  // namespace clustersim
