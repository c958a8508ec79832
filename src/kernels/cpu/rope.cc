// CPU rotate-half rotary position embedding (the HF Llama/Qwen convention).
#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void rope(float* x, int64_t num_tokens, int64_t heads, int64_t dim, const int32_t* positions,
          const float* cos_sin, int64_t max_pos) {
  const int64_t half = dim / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    HARDKV_CHECK(positions[t] >= 0 && positions[t] < max_pos, kInvalidArgument,
                 "position {} is outside the RoPE table [0, {})", positions[t], max_pos);
  }
#pragma omp parallel for if (num_tokens * heads * dim > (int64_t{1} << 20))
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* cs = cos_sin + static_cast<int64_t>(positions[t]) * dim;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * dim;
      for (int64_t i = 0; i < half; ++i) {
        float x1 = v[i], x2 = v[i + half];
        float c = cs[i], s = cs[half + i];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

}  // namespace hardkv::cpu
