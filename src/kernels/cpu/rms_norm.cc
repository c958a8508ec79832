// CPU RMSNorm and fused residual-add + RMSNorm (sums in double for a stable reference).
#include <cmath>

#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) {
#pragma omp parallel for if (rows * dim > (int64_t{1} << 20))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    float* o = out + r * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = xr[i] * inv * w[i];
  }
}

void add_rms_norm(float* x, float* residual, const float* w, int64_t rows, int64_t dim,
                  float eps) {
#pragma omp parallel for if (rows * dim > (int64_t{1} << 20))
  for (int64_t r = 0; r < rows; ++r) {
    float* res = residual + r * dim;
    float* xr = x + r * dim;
    for (int64_t i = 0; i < dim; ++i) res[i] += xr[i];
  }
  rms_norm(residual, w, rows, dim, eps, x);
}

}  // namespace hardkv::cpu
