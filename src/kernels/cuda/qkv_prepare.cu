// qkv_prepare kernel: one warp per (token, head row); lane l holds pairs {l, l+32, ...} of both
// halves of the head so each RoPE partner is in the same lane.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/qkv_prepare.h"
#include "kernels/cuda/qkv_prepare_row.cuh"

namespace hardkv::cuda {
namespace {

constexpr int kMaxPairs = kPrepareMaxPairs;

__global__ void qkv_prepare_kernel(QkvPrepareParams p) {
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  pdl_wait();
  const int64_t heads = p.num_heads + 2 * p.num_kv_heads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= p.num_tokens * heads) return;
  const int64_t t = row / heads;
  const int64_t h = row % heads;
  const int64_t d = p.head_dim;
  const bf16* src = p.qkv + row * d;
  const bool is_q = h < p.num_heads;
  const bool is_v = h >= p.num_heads + p.num_kv_heads;
  bf16* dst;
  if (is_q) {
    dst = p.q_out + (t * p.num_heads + h) * d;
  } else {
    const int32_t slot = p.slots[t];
    if (slot < 0 || slot >= p.num_slots) return;
    const int64_t kv_head = is_v ? h - p.num_heads - p.num_kv_heads : h - p.num_heads;
    dst = (is_v ? p.v_cache : p.k_cache) + (slot * p.num_kv_heads + kv_head) * d;
  }
  if (is_v) {
    for (int64_t i = lane; i < d; i += 32) dst[i] = src[i];
    return;
  }
  const bf16* w = is_q ? p.q_norm : p.k_norm;
  const int32_t pos = p.positions[t];
  const bool rotate = pos >= 0 && pos < p.max_pos;
  prepare_head_row(src, dst, w, p.eps, rotate ? p.cos_sin + pos * d : nullptr,
                   static_cast<int>(d), lane);
}

}  // namespace

void launch_qkv_prepare(const QkvPrepareParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.head_dim > 0 && p.head_dim % 2 == 0 && p.head_dim <= 2 * 32 * kMaxPairs,
               kUnsupported, "qkv_prepare: head_dim ", p.head_dim, " (need even, <= 256)");
  CUDA_REQUIRE(p.num_tokens >= 0 && p.num_heads > 0 && p.num_kv_heads > 0 && p.num_slots > 0 &&
                   p.max_pos > 0,
               kInvalidArgument, "qkv_prepare: bad sizes tokens=", p.num_tokens,
               " heads=", p.num_heads, " kv_heads=", p.num_kv_heads);
  const int64_t rows = p.num_tokens * (p.num_heads + 2 * p.num_kv_heads);
  if (rows == 0) return;
  constexpr int kWarps = 8;
  launch_pdl(qkv_prepare_kernel, dim3(static_cast<unsigned>(ceil_div(rows, kWarps))),
             dim3(kWarps * 32), 0, stream, p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
