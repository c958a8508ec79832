// CPU linear layer through OpenBLAS sgemm: out = x w^T (+ bias).
#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void linear(const float* x, const float* w, const float* bias, int64_t n, int64_t k, int64_t m,
            float* out) {
  if (n == 0) return;
  if (bias != nullptr) {
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < m; ++c) out[r * m + c] = bias[c];
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(m),
              static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k),
              bias != nullptr ? 1.0f : 0.0f, out, static_cast<int>(m));
}

}  // namespace hardkv::cpu
