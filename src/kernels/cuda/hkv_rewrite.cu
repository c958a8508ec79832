// HARD-KV rewrite kernel (see hkv_rewrite.h). Chunk c reads sources >= its first destination and
// every earlier chunk wrote only destinations below it, so one barrier per chunk (between its
// loads and its stores) makes the in-place compaction race-free.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/hkv_rewrite.h"

namespace hardkv::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kLoadsPerThread = 8;  // 16-byte K and V chunks each thread holds per chunk

__global__ void __launch_bounds__(kThreads) hkv_rewrite_kernel(const HkvRewriteParams p) {
  const int seg = blockIdx.x;
  const int first = p.move_indptr[seg], num_moves = p.move_indptr[seg + 1] - first;
  const int32_t* pages = p.page_indices + p.page_indptr[seg];
  const int row_chunks = p.head_dim / 8;
  const int moves_per_chunk = kThreads * kLoadsPerThread / row_chunks;
  const int P = p.page_size;
  auto token_offset = [&](int i) {
    return (static_cast<int64_t>(pages[i / P]) * P + i % P) * p.head_dim;
  };
  for (int m0 = 0; m0 < num_moves; m0 += moves_per_chunk) {
    uint4 kr[kLoadsPerThread], vr[kLoadsPerThread];
    int64_t dst[kLoadsPerThread];
#pragma unroll
    for (int it = 0; it < kLoadsPerThread; ++it) {
      const int i = threadIdx.x + it * kThreads;
      const int m = m0 + i / row_chunks, c = i % row_chunks;
      dst[it] = -1;
      if (m < num_moves) {
        const int64_t src = token_offset(p.move_src[first + m]) + c * 8;
        dst[it] = token_offset(p.move_dst[first + m]) + c * 8;
        kr[it] = *reinterpret_cast<const uint4*>(p.page_k + src);
        vr[it] = *reinterpret_cast<const uint4*>(p.page_v + src);
      }
    }
    __syncthreads();  // every source of this chunk is read before any destination is written
#pragma unroll
    for (int it = 0; it < kLoadsPerThread; ++it) {
      if (dst[it] < 0) continue;
      *reinterpret_cast<uint4*>(p.page_k + dst[it]) = kr[it];
      *reinterpret_cast<uint4*>(p.page_v + dst[it]) = vr[it];
    }
  }
}

}  // namespace

void launch_hkv_rewrite(const HkvRewriteParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.head_dim > 0 && p.head_dim % 8 == 0 && p.head_dim <= 512, kInvalidArgument,
               "hkv rewrite: head_dim ", p.head_dim, " must be a multiple of 8 in [8, 512]");
  CUDA_REQUIRE(p.page_size > 0 && p.num_segments >= 0, kInvalidArgument, "hkv rewrite: page_size ",
               p.page_size, ", segments ", p.num_segments);
  if (p.num_segments == 0) return;
  CUDA_REQUIRE(p.page_k && p.page_v && p.page_indptr && p.page_indices && p.move_indptr &&
                   p.move_src && p.move_dst,
               kInvalidArgument, "hkv rewrite: a required pointer is null");
  hkv_rewrite_kernel<<<p.num_segments, kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
