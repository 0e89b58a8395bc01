// The `clustersim model MODEL` report: parameters, FLOPs per token, KV bytes per token and a
// per-layer breakdown, as text for people and as JSON for scripts.
#pragma once

#include "models/model_spec.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace clustersim {

struct ModelReportOptions {
    std::int64_t seq = 4096;          // sequence length for the attention FLOPs per token
    double kv_bytes_per_element = 2;  // BF16 KV cache
};

std::string model_report_text(const ModelSpec& m, const ModelReportOptions& options = {});
nlohmann::ordered_json model_report_json(const ModelSpec& m, const ModelReportOptions& options = {});

}  // namespace clustersim
