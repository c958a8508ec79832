// The HuggingFace tensor names and shapes a checkpoint of a given ModelConfig must hold; the one
// list shared by the model loader (what to read and check) and make-model (what to write).
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"

namespace hardkv {

enum class WeightKind { kMatrix, kBias, kNorm, kEmbedding };

struct WeightSpec {
  std::string name;  // e.g. "model.layers.3.self_attn.q_proj.weight"
  Shape shape;       // e.g. [num_heads * head_dim, hidden_size]
  WeightKind kind;
};

// In file order: embedding, layers 0..L-1, final norm, lm_head (omitted when tied).
std::vector<WeightSpec> hf_weight_specs(const ModelConfig& config);

}  // namespace hardkv
