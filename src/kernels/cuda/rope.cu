// RoPE kernels. Plain RoPE: one thread per (token, head, pair i < D/2). Fused qk-norm + RoPE:
// one warp per (token, head); lane l holds pairs {l, l+32, ...} of both halves, so the rotation
// partner of each element is in the same lane and no shuffle is needed.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/rope.h"

namespace hardkv::cuda {
namespace {

__global__ void rope_kernel(bf16* x, const int32_t* __restrict__ positions,
                            const float* __restrict__ cos_sin, int64_t num_heads, int64_t half,
                            int64_t max_pos, int64_t total) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int64_t i = idx % half;
  const int64_t row = idx / half;  // token * num_heads + head
  const int64_t t = row / num_heads;
  const int32_t pos = positions[t];
  if (pos < 0 || pos >= max_pos) return;
  const float c = cos_sin[pos * 2 * half + i];
  const float s = cos_sin[pos * 2 * half + half + i];
  bf16* xr = x + row * 2 * half;
  const float x1 = __bfloat162float(xr[i]);
  const float x2 = __bfloat162float(xr[i + half]);
  xr[i] = __float2bfloat16(x1 * c - x2 * s);
  xr[i + half] = __float2bfloat16(x2 * c + x1 * s);
}

// kPairs = head_dim / 64 pairs per lane. The normalised value is rounded to bf16 before the
// rotation, matching rms_norm followed by rope.
template <int kPairs>
__global__ void qk_norm_rope_kernel(bf16* x, const bf16* __restrict__ w, float eps,
                                    const int32_t* __restrict__ positions,
                                    const float* __restrict__ cos_sin, int64_t num_rows,
                                    int64_t num_heads, int64_t max_pos) {
  constexpr int kHalf = kPairs * 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= num_rows) return;
  bf16* xr = x + row * 2 * kHalf;
  float a[kPairs], b[kPairs];
  float sum_sq = 0.f;
#pragma unroll
  for (int p = 0; p < kPairs; ++p) {
    a[p] = __bfloat162float(xr[lane + 32 * p]);
    b[p] = __bfloat162float(xr[kHalf + lane + 32 * p]);
    sum_sq += a[p] * a[p] + b[p] * b[p];
  }
  const float inv = rsqrtf(warp_sum(sum_sq) / (2 * kHalf) + eps);
  const int32_t pos = positions[row / num_heads];
  const bool rotate = pos >= 0 && pos < max_pos;
#pragma unroll
  for (int p = 0; p < kPairs; ++p) {
    const int i = lane + 32 * p;
    const float x1 = __bfloat162float(__float2bfloat16(a[p] * inv * __bfloat162float(w[i])));
    const float x2 =
        __bfloat162float(__float2bfloat16(b[p] * inv * __bfloat162float(w[kHalf + i])));
    float c = 1.f, s = 0.f;
    if (rotate) {
      c = cos_sin[pos * 2 * kHalf + i];
      s = cos_sin[pos * 2 * kHalf + kHalf + i];
    }
    xr[i] = __float2bfloat16(x1 * c - x2 * s);
    xr[kHalf + i] = __float2bfloat16(x2 * c + x1 * s);
  }
}

}  // namespace

void launch_rope(bf16* x, const int32_t* positions, const float* cos_sin, int64_t num_tokens,
                 int64_t num_heads, int64_t head_dim, int64_t max_pos, cudaStream_t stream) {
  CUDA_REQUIRE(head_dim > 0 && head_dim % 2 == 0, kInvalidArgument, "rope: head_dim ", head_dim,
               " must be positive and even");
  CUDA_REQUIRE(num_tokens >= 0 && num_heads > 0 && max_pos > 0, kInvalidArgument,
               "rope: bad sizes tokens=", num_tokens, " heads=", num_heads, " max_pos=", max_pos);
  const int64_t total = num_tokens * num_heads * (head_dim / 2);
  if (total == 0) return;
  constexpr int kThreads = 256;
  rope_kernel<<<ceil_div(total, kThreads), kThreads, 0, stream>>>(x, positions, cos_sin, num_heads,
                                                                  head_dim / 2, max_pos, total);
  CUDA_CHECK_LAUNCH();
}

void launch_qk_norm_rope(bf16* x, const bf16* w, float eps, const int32_t* positions,
                         const float* cos_sin, int64_t num_tokens, int64_t num_heads,
                         int64_t head_dim, int64_t max_pos, cudaStream_t stream) {
  CUDA_REQUIRE(head_dim % 64 == 0 && head_dim >= 64 && head_dim <= 256, kUnsupported,
               "qk_norm_rope: head_dim ", head_dim, " (need a multiple of 64 up to 256)");
  const int64_t rows = num_tokens * num_heads;
  if (rows == 0) return;
  constexpr int kWarps = 4;
  const int64_t blocks = ceil_div(rows, kWarps);
  switch (head_dim / 64) {
    case 1:
      qk_norm_rope_kernel<1><<<blocks, kWarps * 32, 0, stream>>>(x, w, eps, positions, cos_sin,
                                                                 rows, num_heads, max_pos);
      break;
    case 2:
      qk_norm_rope_kernel<2><<<blocks, kWarps * 32, 0, stream>>>(x, w, eps, positions, cos_sin,
                                                                 rows, num_heads, max_pos);
      break;
    case 3:
      qk_norm_rope_kernel<3><<<blocks, kWarps * 32, 0, stream>>>(x, w, eps, positions, cos_sin,
                                                                 rows, num_heads, max_pos);
      break;
    default:
      qk_norm_rope_kernel<4><<<blocks, kWarps * 32, 0, stream>>>(x, w, eps, positions, cos_sin,
                                                                 rows, num_heads, max_pos);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
