// CPU SwiGLU activation: silu(gate) * up.
#include <cmath>

#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void silu_mul(const float* gate_up, int64_t num_tokens, int64_t inter, float* out) {
#pragma omp parallel for if (num_tokens * inter > (int64_t{1} << 20))
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* g = gate_up + t * 2 * inter;
    const float* u = g + inter;
    float* o = out + t * inter;
    for (int64_t i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

}  // namespace hardkv::cpu
