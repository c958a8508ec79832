// One head row of the attention-input preparation, done by one warp: optional per-head RMSNorm
// (rounded to bf16, as a stored rms_norm output would be), then rotate-half RoPE, stored as bf16.
// Shared by qkv_prepare_kernel and the fused decode attention kernel so both round identically.
#pragma once

#include "kernels/cuda/cuda_utils.cuh"

namespace hardkv::cuda {

inline constexpr int kPrepareMaxPairs = 4;  // head_dim <= 256

// src, dst bf16 [d]; w bf16 [d] or null (no norm); cs F32 [d] (cos in [:d/2], sin in [d/2:]) or
// null (no rotation). Lane l handles the pairs (i, i + d/2) for i = l, l + 32, ...
__device__ __forceinline__ void prepare_head_row(const bf16* src, bf16* dst, const bf16* w,
                                                 float eps, const float* cs, int d, int lane) {
  const int half = d / 2;
  float a[kPrepareMaxPairs], b[kPrepareMaxPairs];
  float sum_sq = 0.f;
#pragma unroll
  for (int k = 0; k < kPrepareMaxPairs; ++k) {
    const int i = lane + 32 * k;
    a[k] = i < half ? __bfloat162float(src[i]) : 0.f;
    b[k] = i < half ? __bfloat162float(src[half + i]) : 0.f;
    sum_sq += a[k] * a[k] + b[k] * b[k];
  }
  const float inv = w ? rsqrtf(warp_sum(sum_sq) / static_cast<float>(d) + eps) : 1.f;
#pragma unroll
  for (int k = 0; k < kPrepareMaxPairs; ++k) {
    const int i = lane + 32 * k;
    if (i >= half) break;
    float x1 = a[k], x2 = b[k];
    if (w) {
      x1 = __bfloat162float(__float2bfloat16(x1 * inv * __bfloat162float(w[i])));
      x2 = __bfloat162float(__float2bfloat16(x2 * inv * __bfloat162float(w[half + i])));
    }
    float c = 1.f, s = 0.f;
    if (cs) {
      c = cs[i];
      s = cs[half + i];
    }
    dst[i] = __float2bfloat16(x1 * c - x2 * s);
    dst[half + i] = __float2bfloat16(x2 * c + x1 * s);
  }
}

}  // namespace hardkv::cuda
