// Reading a ModelSpec from a model file (models/*.yaml) or from a Hugging Face config.json.
//
// Model files declare every key through MapReader, so a typo gets "did you mean" and every error
// carries file:line:col and the key path. config.json files are third-party: unknown fields are
// ignored, missing required ones are errors naming the file and the key.
#pragma once

#include "models/model_spec.hpp"
#include "sim/input/diagnostics.hpp"
#include "sim/input/yaml_reader.hpp"

#include <string>
#include <vector>

namespace clustersim {

// Reads a model from the mapping `r` (the root of a model file, or a `model:` block of a scenario).
ModelSpec read_model(MapReader& r);

// Reads a model file. Problems are recorded in `diagnostics`; the result is meaningful only if none were.
ModelSpec load_model_yaml(const std::string& path, Diagnostics& diagnostics);
ModelSpec load_model_yaml_string(const std::string& text, const std::string& name, Diagnostics& diagnostics);

// Reads a Hugging Face config.json (model_type deepseek_v3, llama4, llama4_text, qwen3_moe, llama,
// mixtral, qwen2). Problems are recorded in `diagnostics`.
ModelSpec load_hf_config(const std::string& path, Diagnostics& diagnostics);
ModelSpec load_hf_config_string(const std::string& text, const std::string& name, Diagnostics& diagnostics);

// `name_or_path` is a model name ("deepseek-v3" -> models/deepseek-v3.yaml, looked up in ./models,
// $CLUSTERSIM_SOURCE_DIR/models and the source tree the binary was built from), a path to a model
// YAML, or a path to a config.json. Problems are recorded in `diagnostics`.
ModelSpec load_model(const std::string& name_or_path, Diagnostics& diagnostics);
// The same, throwing InputError with every problem found.
ModelSpec load_model_or_throw(const std::string& name_or_path);

// The names of the models shipped in models/ (file stems, sorted).
std::vector<std::string> bundled_model_names();
// The models/ folder used for name lookups ("" if none is found).
std::string models_directory();

}  // namespace clustersim
