// ModelConfig: the validated, immutable description of a decoder checkpoint, read from
// config.json (+ generation_config.json). One decoder serves Llama, Qwen2 and Qwen3.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"

namespace hardkv {

enum class ModelFamily { kLlama, kQwen2, kQwen3 };

enum class RopeScaling { kNone, kLinear, kLlama3 };

struct RopeConfig {
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::kNone;
  double factor = 1.0;                           // linear and llama3
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  std::string architecture;  // e.g. "Qwen3ForCausalLM"
  ModelFamily family = ModelFamily::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // may differ from hidden_size / num_heads (Qwen3)
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama when attention_bias is true
  bool o_bias = false;    // Llama attention_bias also puts a bias on o_proj
  bool mlp_bias = false;  // Llama mlp_bias
  bool qk_norm = false;   // Qwen3: RMSNorm over head_dim on q and k before RoPE
  RopeConfig rope;
  DType dtype = DType::kBF16;  // torch_dtype / dtype in config.json
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;  // config.json's, then generation_config.json's, deduplicated
};

// Parses a config.json document; `source` names the file in error messages.
ModelConfig parse_model_config(const nlohmann::json& doc, const std::string& source);
// Reads <dir>/config.json and, when present, <dir>/generation_config.json (for eos ids).
ModelConfig load_model_config(const std::string& model_dir);

const char* model_family_name(ModelFamily family);

}  // namespace hardkv
