// The paged attention kernel template (CUDA cores, fp32 math). A block owns one sequence, one KV
// head, one tile of kAttentionRowTile (query token, head-in-group) rows and one KV split; GQA
// heads of a group share the block, so each K/V tile is read from HBM once per KV head. Per KV
// tile: lane j scores tokens j and j+32 against each row (q broadcast from shared memory), an
// online softmax keeps (max, sum) per row, and each lane accumulates D/32 output dims.
#pragma once

#include <cmath>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"

namespace hardkv::cuda {

template <int D>
struct AttentionTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = kAttentionRowTile;
  static constexpr int kRowsPerWarp = kRows / kWarps;
  static constexpr int kTile = kAttentionKvTile;
  // K rows padded by 16 bytes: lanes reading 16-byte chunks of consecutive rows hit distinct
  // bank groups (row stride is an odd number of 16-byte units).
  static constexpr int kKStride = D + 8;
  // Output dims per lane; with D < 32 lanes >= D own none.
  static constexpr int kDimsPerLane = D >= 32 ? D / 32 : 1;
  static constexpr bool kLaneHasDims(int lane) { return lane * kDimsPerLane < D; }
  // 16-byte K (and V) chunks each thread loads per tile, issued in batches of kLoadBatch.
  static constexpr int kLoadIters = kTile * (D / 8) / kThreads;
  static constexpr int kLoadBatch = kLoadIters < 8 ? kLoadIters : 8;
  static_assert(kLoadIters * kThreads == kTile * (D / 8) && kLoadIters % kLoadBatch == 0);
  static constexpr size_t kSmemBytes =
      sizeof(float) * kRows * D + sizeof(bf16) * kTile * (kKStride + D);
};

template <int N>
__device__ __forceinline__ void load_dims(const bf16* p, float (&f)[N]) {
  if constexpr (N == 8) {
    load8(p, f);
  } else if constexpr (N == 4) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
    const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
    f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y;
  } else if constexpr (N == 2) {
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
    f[0] = a.x, f[1] = a.y;
  } else {
    static_assert(N == 1);
    f[0] = __bfloat162float(*p);
  }
}

template <int D>
__global__ void __launch_bounds__(AttentionTraits<D>::kThreads)
    paged_attention_kernel(const PagedAttentionParams p) {
  using T = AttentionTraits<D>;
  constexpr int kChunks = D / 8;
  constexpr int R = T::kRowsPerWarp;
  constexpr int kDpl = T::kDimsPerLane;
  extern __shared__ __align__(16) unsigned char smem[];
  float* q_s = reinterpret_cast<float*>(smem);              // [kRows, D], pre-scaled
  bf16* k_s = reinterpret_cast<bf16*>(q_s + T::kRows * D);  // [kTile, kKStride]
  bf16* v_s = k_s + T::kTile * T::kKStride;                 // [kTile, D]

  const int seq = blockIdx.y;
  const int kv_head = blockIdx.z;
  const int split = blockIdx.x % p.num_splits;
  const int row0 = (blockIdx.x / p.num_splits) * T::kRows;
  const int q_begin = p.query_indptr[seq];
  const int q_len = p.query_indptr[seq + 1] - q_begin;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_rows = q_len * group;
  if (row0 >= num_rows) return;
  const int kv_len = p.kv_lens[seq];
  const int pos0 = kv_len - q_len;  // position of the sequence's first new token
  const int last_row = min(row0 + T::kRows, num_rows) - 1;
  const int kv_begin = split * p.kv_chunk;
  const int kv_end = min(min(kv_len, pos0 + last_row / group + 1), kv_begin + p.kv_chunk);

  // Q rows, scaled by softmax scale * log2(e) so the softmax can use exp2.
  const float q_scale = p.scale * 1.4426950408889634f;
  for (int i = threadIdx.x; i < T::kRows * kChunks; i += T::kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int row = row0 + r;
    float f[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (row < num_rows) {
      const int64_t tok = q_begin + row / group;
      const int head = kv_head * group + row % group;
      load8(p.q + (tok * p.num_q_heads + head) * D + c * 8, f);
#pragma unroll
      for (int k = 0; k < 8; ++k) f[k] *= q_scale;
    }
    float4* dst = reinterpret_cast<float4*>(q_s + r * D + c * 8);
    dst[0] = make_float4(f[0], f[1], f[2], f[3]);
    dst[1] = make_float4(f[4], f[5], f[6], f[7]);
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // Local row r = warp + rr * kWarps: consecutive rows go to different warps, so a decode block
  // with a few heads per group still spreads them over warps.
  float m[R], l[R], o[R][kDpl];
  int row_pos[R];
  bool row_valid[R];
#pragma unroll
  for (int rr = 0; rr < R; ++rr) {
    const int row = row0 + warp + rr * T::kWarps;
    row_valid[rr] = row < num_rows;
    row_pos[rr] = pos0 + row / group;
    m[rr] = -INFINITY;
    l[rr] = 0.f;
#pragma unroll
    for (int d = 0; d < kDpl; ++d) o[rr][d] = 0.f;
  }

  const int32_t* blocks = p.block_indices + p.block_indptr[seq];
  for (int t0 = kv_begin; t0 < kv_end; t0 += T::kTile) {
    __syncthreads();  // q_s written / previous tile consumed
    // All of a batch's block-table lookups and K/V loads are issued before any is stored, so
    // their HBM latencies overlap (a rolled loop would pay them one after another).
#pragma unroll
    for (int b0 = 0; b0 < T::kLoadIters; b0 += T::kLoadBatch) {
      uint4 kr[T::kLoadBatch], vr[T::kLoadBatch];
#pragma unroll
      for (int it = 0; it < T::kLoadBatch; ++it) {
        const int i = threadIdx.x + (b0 + it) * T::kThreads;
        const int j = i / kChunks, c = i % kChunks;
        const int pos = t0 + j;
        kr[it] = vr[it] = make_uint4(0, 0, 0, 0);
        if (pos < kv_end) {
          const int64_t slot =
              static_cast<int64_t>(blocks[pos / p.block_size]) * p.block_size + pos % p.block_size;
          const int64_t off = (slot * p.num_kv_heads + kv_head) * D + c * 8;
          kr[it] = *reinterpret_cast<const uint4*>(p.k_cache + off);
          vr[it] = *reinterpret_cast<const uint4*>(p.v_cache + off);
        }
      }
#pragma unroll
      for (int it = 0; it < T::kLoadBatch; ++it) {
        const int i = threadIdx.x + (b0 + it) * T::kThreads;
        const int j = i / kChunks, c = i % kChunks;
        *reinterpret_cast<uint4*>(k_s + j * T::kKStride + c * 8) = kr[it];
        *reinterpret_cast<uint4*>(v_s + j * D + c * 8) = vr[it];
      }
    }
    __syncthreads();

    // Scores of tokens t0 + lane and t0 + lane + 32 for each of this warp's rows.
    float s[R][2];
#pragma unroll
    for (int rr = 0; rr < R; ++rr) s[rr][0] = s[rr][1] = 0.f;
#pragma unroll 4
    for (int c = 0; c < kChunks; ++c) {
      float k0[8], k1[8];
      load8(k_s + lane * T::kKStride + c * 8, k0);
      load8(k_s + (lane + 32) * T::kKStride + c * 8, k1);
#pragma unroll
      for (int rr = 0; rr < R; ++rr) {
        if (!row_valid[rr]) continue;
        const float4* qp =
            reinterpret_cast<const float4*>(q_s + (warp + rr * T::kWarps) * D + c * 8);
        const float4 qa = qp[0], qb = qp[1];
        s[rr][0] += qa.x * k0[0] + qa.y * k0[1] + qa.z * k0[2] + qa.w * k0[3] + qb.x * k0[4] +
                    qb.y * k0[5] + qb.z * k0[6] + qb.w * k0[7];
        s[rr][1] += qa.x * k1[0] + qa.y * k1[1] + qa.z * k1[2] + qa.w * k1[3] + qb.x * k1[4] +
                    qb.y * k1[5] + qb.z * k1[6] + qb.w * k1[7];
      }
    }

    // Online softmax update; pr holds this tile's probabilities (0 where masked).
    float pr[R][2];
#pragma unroll
    for (int rr = 0; rr < R; ++rr) {
      pr[rr][0] = pr[rr][1] = 0.f;
      if (!row_valid[rr]) continue;
      const int pa = t0 + lane, pb = t0 + lane + 32;
      const float sa = (pa < kv_end && pa <= row_pos[rr]) ? s[rr][0] : -INFINITY;
      const float sb = (pb < kv_end && pb <= row_pos[rr]) ? s[rr][1] : -INFINITY;
      const float m_new = fmaxf(m[rr], warp_max(fmaxf(sa, sb)));
      if (m_new == -INFINITY) continue;  // every position of this tile is masked for the row
      const float alpha = exp2f(m[rr] - m_new);
      pr[rr][0] = exp2f(sa - m_new);
      pr[rr][1] = exp2f(sb - m_new);
      l[rr] = l[rr] * alpha + warp_sum(pr[rr][0] + pr[rr][1]);
      m[rr] = m_new;
#pragma unroll
      for (int d = 0; d < kDpl; ++d) o[rr][d] *= alpha;
    }

    // o += P V: token j's probability is broadcast from lane j % 32.
    const int tile_len = min(T::kTile, kv_end - t0);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int n = min(32, tile_len - half * 32);
#pragma unroll 4
      for (int jj = 0; jj < n; ++jj) {
        const int j = half * 32 + jj;
        float v[kDpl];
        if (T::kLaneHasDims(lane)) {
          load_dims<kDpl>(v_s + j * D + lane * kDpl, v);
        } else {
#pragma unroll
          for (int d = 0; d < kDpl; ++d) v[d] = 0.f;
        }
#pragma unroll
        for (int rr = 0; rr < R; ++rr) {
          if (!row_valid[rr]) continue;
          const float pj = __shfl_sync(0xffffffffu, pr[rr][half], jj);
#pragma unroll
          for (int d = 0; d < kDpl; ++d) o[rr][d] += pj * v[d];
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < R; ++rr) {
    if (!row_valid[rr] || !T::kLaneHasDims(lane)) continue;
    const int row = row0 + warp + rr * T::kWarps;
    const int64_t tok = q_begin + row / group;
    const int head = kv_head * group + row % group;
    const float inv_l = l[rr] > 0.f ? 1.f / l[rr] : 0.f;
    if (p.num_splits == 1) {
      bf16* dst = p.out + (tok * p.num_q_heads + head) * D + lane * kDpl;
#pragma unroll
      for (int d = 0; d < kDpl; ++d) dst[d] = __float2bfloat16(o[rr][d] * inv_l);
    } else {
      const int64_t idx = (static_cast<int64_t>(split) * p.num_tokens + tok) * p.num_q_heads + head;
      float* dst = p.partial_o + idx * D + lane * kDpl;
#pragma unroll
      for (int d = 0; d < kDpl; ++d) dst[d] = o[rr][d] * inv_l;
      if (lane == 0) {  // lane 0 always owns dims
        p.partial_ml[idx * 2] = m[rr];
        p.partial_ml[idx * 2 + 1] = l[rr];
      }
    }
  }
}

template <int D>
void launch_paged_attention_impl(const PagedAttentionParams& p, cudaStream_t stream) {
  using T = AttentionTraits<D>;
  static bool smem_raised = [] {
    CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(T::kSmemBytes)));
    return true;
  }();
  (void)smem_raised;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int64_t row_tiles = ceil_div(static_cast<int64_t>(p.max_query_len) * group, T::kRows);
  const dim3 grid(static_cast<unsigned>(row_tiles * p.num_splits), p.num_seqs, p.num_kv_heads);
  paged_attention_kernel<D><<<grid, T::kThreads, T::kSmemBytes, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
