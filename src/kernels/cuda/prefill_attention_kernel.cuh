// The tensor-core prefill attention kernel template. A block owns one sequence, one KV head, one
// tile of 64 (query token, head-in-group) rows (GQA heads share the block, so each K/V tile is
// gathered once per KV head) and one KV split; each of its 4 warps owns 16 rows. Per 64-token KV
// tile (cp.async double buffered, gathered through the block table): S = Q K^T and O += P V on
// mma.sync m16n8k16 bf16 with fp32 accumulators, online softmax in registers (FA2), causal and
// length masks only on tiles that cross a row's last position.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/mma_bf16.cuh"
#include "kernels/cuda/prefill_attention.h"

namespace hardkv::cuda {
namespace prefill {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = kPrefillRowTile;   // 16 per warp
constexpr int kTile = kAttentionKvTile;  // 64 KV positions per tile
static_assert(kRows == kWarps * 16 && kTile == 64);

template <int D>
struct Traits {
  // Rows padded by 16 bytes: the 8 row addresses of one ldmatrix phase fall in distinct
  // bank groups (the stride is an odd number of 16-byte units).
  static constexpr int kStride = D + 8;
  static constexpr int kChunks = D / 8;  // 16-byte chunks per row
  static constexpr int kTileElems = kTile * kStride;
  // Q tile + 2 stages of (K, V) tiles.
  static constexpr size_t kSmemBytes = sizeof(bf16) * (kRows * kStride + 4 * kTileElems);
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; src_bytes 0 writes zeros (positions past the end: V must hold no NaN
// garbage, since 0 * NaN would poison the accumulator).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace prefill

template <int D>
__global__ void __launch_bounds__(prefill::kThreads)
    prefill_attention_kernel(const PagedAttentionParams p, int row_tiles) {
  using namespace prefill;
  using T = Traits<D>;
  constexpr int kKSteps = D / 16;  // k16 steps of Q K^T
  constexpr int kSTiles = kTile / 8;
  constexpr int kOTiles = D / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem);  // [kRows, kStride]
  bf16* kv_s = q_s + kRows * T::kStride;      // [2 stages][K, V][kTile, kStride]

  // Heaviest (last, longest-context) row tiles first, so the causal tail wave is short.
  const int split = blockIdx.x % p.num_splits;
  const int row0 = (row_tiles - 1 - static_cast<int>(blockIdx.x / p.num_splits)) * kRows;
  const int seq = blockIdx.y;
  const int kv_head = blockIdx.z;
  const int q_begin = p.query_indptr[seq];
  const int q_len = p.query_indptr[seq + 1] - q_begin;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_rows = q_len * group;
  if (row0 >= num_rows) return;
  const int kv_len = p.kv_lens[seq];
  const int pos0 = kv_len - q_len;  // position of the sequence's first new token
  const int last_row = min(row0 + kRows, num_rows) - 1;
  const int first_pos = pos0 + row0 / group;  // smallest row position in the block
  const int kv_begin = split * p.kv_chunk;
  const int kv_end = min(min(kv_len, pos0 + last_row / group + 1), kv_begin + p.kv_chunk);
  const int32_t* blocks = p.block_indices + p.block_indptr[seq];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  // Q rows (zeros past num_rows), one commit group.
  for (int i = tid; i < kRows * T::kChunks; i += kThreads) {
    const int r = i / T::kChunks, c = i % T::kChunks;
    const int row = row0 + r;
    const bf16* src = p.q;
    int bytes = 0;
    if (row < num_rows) {
      const int64_t tok = q_begin + row / group;
      const int head = kv_head * group + row % group;
      src = p.q + (tok * p.num_q_heads + head) * D + c * 8;
      bytes = 16;
    }
    cp_async16(q_s + r * T::kStride + c * 8, src, bytes);
  }
  cp_async_commit();

  auto load_tile = [&](int t0, int stage) {
    bf16* k_dst = kv_s + stage * 2 * T::kTileElems;
    bf16* v_dst = k_dst + T::kTileElems;
#pragma unroll
    for (int it = 0; it < kTile * T::kChunks / kThreads; ++it) {
      const int i = tid + it * kThreads;
      const int j = i / T::kChunks, c = i % T::kChunks;
      const int pos = t0 + j;
      int64_t off = 0;
      int bytes = 0;
      if (pos < kv_end) {
        const int64_t slot =
            static_cast<int64_t>(blocks[pos / p.block_size]) * p.block_size + pos % p.block_size;
        off = (slot * p.num_kv_heads + kv_head) * D + c * 8;
        bytes = 16;
      }
      cp_async16(k_dst + j * T::kStride + c * 8, p.k_cache + off, bytes);
      cp_async16(v_dst + j * T::kStride + c * 8, p.v_cache + off, bytes);
    }
  };

  if (kv_begin < kv_end) load_tile(kv_begin, 0);
  cp_async_commit();
  cp_async_wait<1>();  // Q landed
  __syncthreads();

  // This warp's Q rows as A fragments: matrices (rows 0-7 | 8-15) x (cols k0-7 | k0+8-15).
  uint32_t qf[kKSteps][4];
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) {
    ldmatrix_x4(qf[kk], q_s + (warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * T::kStride +
                            kk * 16 + (lane / 16) * 8);
  }

  // Each thread holds rows g and g + 8 of the warp's 16 (g = lane / 4), columns 2t, 2t+1 of every
  // 8-wide n tile (t = lane % 4).
  const int g = lane / 4, t = lane % 4;
  int row_pos[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) row_pos[h] = pos0 + (row0 + warp * 16 + g + 8 * h) / group;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float o[kOTiles][4];
#pragma unroll
  for (int n = 0; n < kOTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  const float sl2 = p.scale * 1.4426950408889634f;  // softmax in base 2

  int stage = 0;
  for (int t0 = kv_begin; t0 < kv_end; t0 += kTile, stage ^= 1) {
    if (t0 + kTile < kv_end) load_tile(t0 + kTile, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // tile t0 landed (the next one may still be in flight)
    __syncthreads();
    const bf16* k_s = kv_s + stage * 2 * T::kTileElems;
    const bf16* v_s = k_s + T::kTileElems;

    // S = Q K^T. K matrices: (tokens n0-7 | n0+8-15) x (dims k0-7 | k0+8-15) -> b0, b1 of two
    // n tiles.
    float s[kSTiles][4];
#pragma unroll
    for (int n = 0; n < kSTiles; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int np = 0; np < kSTiles / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, k_s + (np * 16 + (lane % 8) + (lane / 16) * 8) * T::kStride + kk * 16 +
                           ((lane / 8) % 2) * 8);
        mma_bf16(s[2 * np], qf[kk], b[0], b[1]);
        mma_bf16(s[2 * np + 1], qf[kk], b[2], b[3]);
      }
    }

    // Masks only where the tile crosses some row's last position or the end of the range.
    const bool masked = t0 + kTile > first_pos + 1 || t0 + kTile > kv_end;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kSTiles; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[n][e] * sl2;
        if (masked) {
          const int pos = t0 + n * 8 + 2 * t + (e & 1);
          if (pos > row_pos[e / 2] || pos >= kv_end) x = -INFINITY;
        }
        s[n][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
    }
    float alpha[2], m_use[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float m_new = fmaxf(m[h], mx[h]);
      m_use[h] = m_new == -INFINITY ? 0.f : m_new;  // fully masked so far: exp2 gives zeros
      alpha[h] = exp2f(m[h] - m_use[h]);
      m[h] = m_new;
    }
    float rs[2] = {0.f, 0.f};
#pragma unroll
    for (int n = 0; n < kSTiles; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = exp2f(s[n][e] - m_use[e / 2]);
        rs[e / 2] += s[n][e];
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) l[h] = l[h] * alpha[h] + rs[h];  // quad-reduced at the end
#pragma unroll
    for (int n = 0; n < kOTiles; ++n) {
      o[n][0] *= alpha[0], o[n][1] *= alpha[0];
      o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    }

    // O += P V. P's accumulators of n tiles 2kk, 2kk+1 are the A fragment of k step kk; V
    // matrices (transposed): (tokens k0-7 | k0+8-15) x (dims n0-7 | n0+8-15).
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                              pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                              pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < kOTiles / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, v_s + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * T::kStride +
                                 np * 16 + (lane / 16) * 8);
        mma_bf16(o[2 * np], pa, b[0], b[1]);
        mma_bf16(o[2 * np + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // this stage is refilled by the next iteration's prefetch
  }
  cp_async_wait<0>();

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + warp * 16 + g + 8 * h;
    if (row >= num_rows) continue;
    const int64_t tok = q_begin + row / group;
    const int head = kv_head * group + row % group;
    const float inv_l = l[h] > 0.f ? 1.f / l[h] : 0.f;
    if (p.num_splits == 1) {
      bf16* dst = p.out + (tok * p.num_q_heads + head) * D + 2 * t;
#pragma unroll
      for (int n = 0; n < kOTiles; ++n) {
        *reinterpret_cast<__nv_bfloat162*>(dst + n * 8) =
            __floats2bfloat162_rn(o[n][2 * h] * inv_l, o[n][2 * h + 1] * inv_l);
      }
    } else {
      const int64_t idx = (static_cast<int64_t>(split) * p.num_tokens + tok) * p.num_q_heads + head;
      float* dst = p.partial_o + idx * D + 2 * t;
#pragma unroll
      for (int n = 0; n < kOTiles; ++n) {
        *reinterpret_cast<float2*>(dst + n * 8) =
            make_float2(o[n][2 * h] * inv_l, o[n][2 * h + 1] * inv_l);
      }
      if (t == 0) {
        p.partial_ml[idx * 2] = m[h];
        p.partial_ml[idx * 2 + 1] = l[h];
      }
    }
  }
}

template <int D>
void launch_prefill_attention_impl(const PagedAttentionParams& p, cudaStream_t stream) {
  using T = prefill::Traits<D>;
  static bool smem_raised = [] {
    CUDA_CHECK(cudaFuncSetAttribute(prefill_attention_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(T::kSmemBytes)));
    return true;
  }();
  (void)smem_raised;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int64_t row_tiles = ceil_div(static_cast<int64_t>(p.max_query_len) * group, prefill::kRows);
  const dim3 grid(static_cast<unsigned>(row_tiles * p.num_splits), p.num_seqs, p.num_kv_heads);
  prefill_attention_kernel<D>
      <<<grid, prefill::kThreads, T::kSmemBytes, stream>>>(p, static_cast<int>(row_tiles));
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
