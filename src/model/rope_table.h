// RoPE frequency tables computed as HuggingFace transformers does (fp32 inverse frequencies,
// default / linear / llama3 scaling), so positions rotate identically.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"

namespace hardkv {

// Inverse frequencies f_i, i < head_dim / 2, after scaling.
std::vector<float> rope_inv_freq(const RopeConfig& rope, int64_t head_dim);
// Host F32 [max_pos, head_dim]: cos(pos * f_i) in [:D/2], sin(pos * f_i) in [D/2:].
Tensor rope_cos_sin_table(const RopeConfig& rope, int64_t head_dim, int64_t max_pos);

}  // namespace hardkv
