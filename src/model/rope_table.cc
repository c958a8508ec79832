// RoPE tables: mirrors transformers' rope init functions (default, linear, llama3) in fp32.
#include "model/rope_table.h"

#include <cmath>

namespace hardkv {

std::vector<float> rope_inv_freq(const RopeConfig& rope, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), all in fp32.
    float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(rope.theta), exponent);
  }
  if (rope.scaling == RopeScaling::kLinear) {
    for (float& f : inv) f /= static_cast<float>(rope.factor);
  } else if (rope.scaling == RopeScaling::kLlama3) {
    const float factor = static_cast<float>(rope.factor);
    const float low = static_cast<float>(rope.low_freq_factor);
    const float high = static_cast<float>(rope.high_freq_factor);
    const float old_len = static_cast<float>(rope.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low;
    const float high_freq_wavelen = old_len / high;
    for (float& f : inv) {
      const float wavelen = 2.0f * static_cast<float>(M_PI) / f;
      float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const float smooth = (old_len / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv;
}

Tensor rope_cos_sin_table(const RopeConfig& rope, int64_t head_dim, int64_t max_pos) {
  const std::vector<float> inv = rope_inv_freq(rope, head_dim);
  const int64_t half = head_dim / 2;
  Tensor table = Tensor::empty(DType::kF32, {max_pos, head_dim});
  float* t = table.data_as<float>();
  for (int64_t p = 0; p < max_pos; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv[i];
      t[p * head_dim + i] = std::cos(angle);
      t[p * head_dim + half + i] = std::sin(angle);
    }
  }
  return table;
}

}  // namespace hardkv
