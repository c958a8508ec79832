// The fused decode attention's per-lane constants for preparing head rows (cos/sin of the token's
// position, q/k norm weights), loadable before pdl_wait() since no kernel of the step writes
// them, and prepare_head_row (qkv_prepare_row.cuh) taking them from registers, rounding the same.
#pragma once

#include <cuda_bf16.h>

#include "kernels/cuda/cuda_utils.cuh"

namespace hardkv::cuda {

// Lane l handles the pairs (i, i + D/2) for i = l + 32 * j, j < kPairs.
template <int D>
struct HeadPrepConsts {
  static constexpr int kPairs = D / 64 > 0 ? D / 64 : 1;
  float c[kPairs], s[kPairs];    // cos / sin at (pos, i): 1 / 0 without a cos/sin row
  __nv_bfloat162 qw[kPairs];     // q_norm (w[i], w[i + D/2]) when set
  __nv_bfloat162 kw[kPairs];     // k_norm likewise
  int32_t slot;                  // slots[token]

  // positions, cos_sin, slots: step metadata and constants (no kernel of the step writes them).
  __device__ __forceinline__ void load(const int32_t* positions, const float* cos_sin, int max_pos,
                                       const int32_t* slots, const bf16* q_norm,
                                       const bf16* k_norm, int tok, int lane) {
    constexpr int kHalf = D / 2;
    const int32_t pos = positions[tok];
    slot = slots[tok];
    const float* cs =
        pos >= 0 && pos < max_pos ? cos_sin + static_cast<int64_t>(pos) * D : nullptr;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int i = lane + 32 * j;
      const bool in = i < kHalf;
      c[j] = cs && in ? cs[i] : 1.f;
      s[j] = cs && in ? cs[kHalf + i] : 0.f;
      const bf16 one = __float2bfloat16(1.f);
      qw[j] = q_norm && in ? __halves2bfloat162(q_norm[i], q_norm[kHalf + i])
                           : __halves2bfloat162(one, one);
      kw[j] = k_norm && in ? __halves2bfloat162(k_norm[i], k_norm[kHalf + i])
                           : __halves2bfloat162(one, one);
    }
  }
};

// prepare_head_row with this lane's cos/sin and norm weights from registers: the norm weights
// (k_norm when is_k, else q_norm) are used when has_w, cos/sin always (1 / 0 when the row had
// none, which leaves x unchanged exactly as no rotation does). src, dst bf16 [D].
template <int D>
__device__ __forceinline__ void prepare_head_row_regs(const bf16* src, bf16* dst, bool is_k,
                                                      bool has_w, float eps,
                                                      const HeadPrepConsts<D>& k, int lane) {
  constexpr int kPairs = HeadPrepConsts<D>::kPairs;
  constexpr int kHalf = D / 2;
  float a[kPairs], b[kPairs];
  float sum_sq = 0.f;
#pragma unroll
  for (int j = 0; j < kPairs; ++j) {
    const int i = lane + 32 * j;
    a[j] = i < kHalf ? __bfloat162float(src[i]) : 0.f;
    b[j] = i < kHalf ? __bfloat162float(src[kHalf + i]) : 0.f;
    sum_sq += a[j] * a[j] + b[j] * b[j];
  }
  const float inv = has_w ? rsqrtf(warp_sum(sum_sq) / static_cast<float>(D) + eps) : 1.f;
#pragma unroll
  for (int j = 0; j < kPairs; ++j) {
    const int i = lane + 32 * j;
    if (i >= kHalf) break;
    float x1 = a[j], x2 = b[j];
    if (has_w) {
      const __nv_bfloat162 w = is_k ? k.kw[j] : k.qw[j];
      x1 = __bfloat162float(__float2bfloat16(x1 * inv * __low2float(w)));
      x2 = __bfloat162float(__float2bfloat16(x2 * inv * __high2float(w)));
    }
    const float c = k.c[j], s = k.s[j];
    dst[i] = __float2bfloat16(x1 * c - x2 * s);
    dst[kHalf + i] = __float2bfloat16(x2 * c + x1 * s);
  }
}

}  // namespace hardkv::cuda
