// The tiered attention kernel template (CUDA cores, fp32 math). A block owns one sequence, one
// kv-head, R (query token, head-in-group) rows and one split of the head's virtual token list
// (condensed tokens 0..cond_len-1, then the causally visible dense tokens). Decode is
// latency-bound, so warps are spread over tokens, not rows: D/8 lanes hold one token's K and V
// (16 bytes each per lane), every such lane group is an independent online-softmax worker over
// its tokens with U tokens' loads in flight (their page ids / mask bits looked up one step
// ahead), and the workers' (max, sum, out) states are merged through shared memory at the end.
// All GQA rows of a block share each K/V read.
#pragma once

#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/tiered_attention.h"

namespace hardkv::cuda {

inline constexpr int kTieredThreads = 128;

template <int D>
struct TieredTraits {
  static constexpr int kLanesPerToken = D / 8;  // one 16-byte chunk per lane
  static constexpr int kTokensPerWarp = 32 / kLanesPerToken;
  static constexpr int kWorkers = kTieredThreads / 32 * kTokensPerWarp;
  static_assert(D % 8 == 0 && kLanesPerToken <= 32 && 32 % kLanesPerToken == 0);
  template <int R>
  static constexpr size_t smem_bytes() {
    return sizeof(float) * kWorkers * R * (D + 2);
  }
};

__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// U = tokens per worker per step (loads in flight). The offsets of a step's tokens (page id,
// mask bit, block table lookups) are computed one step ahead, so those loads overlap the current
// step's K/V loads instead of preceding them.
template <int D, int R, int U>
__global__ void __launch_bounds__(kTieredThreads)
    tiered_attention_kernel(const TieredAttentionParams p) {
  using T = TieredTraits<D>;
  constexpr int L = T::kLanesPerToken;
  constexpr int kStep = T::kWorkers * U;  // list entries per block step
  const int seq = blockIdx.y, kv_head = blockIdx.z;
  const int split = blockIdx.x % p.num_splits;
  const int row0 = (blockIdx.x / p.num_splits) * R;
  const int q_begin = p.query_indptr[seq];
  const int q_len = p.query_indptr[seq + 1] - q_begin;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_rows = q_len * group;
  if (row0 >= num_rows) return;

  const int seg = seq * p.num_kv_heads + kv_head;
  const int cond_len = p.cond_len[seg];
  const int dense_len = p.dense_len[seq];
  const int last_row = min(row0 + R, num_rows) - 1;
  // List entry v < cond_len is stored token v; entry cond_len + i is live dense token i. Row r
  // (query token j) sees entries below cond_len + dense_len - q_len + j + 1.
  const int list_len = cond_len + dense_len - q_len + last_row / group + 1;
  const int begin = split * p.kv_chunk;
  const int end = min(list_len, begin + p.kv_chunk);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int sub = lane / L, chunk = lane % L;  // token slot in the warp, 8-dim chunk of the token
  const int worker = warp * T::kTokensPerWarp + sub;

  // Rows, pre-scaled by softmax scale * log2(e) so the softmax uses exp2.
  const float q_scale = p.scale * 1.4426950408889634f;
  float qf[R][8], m[R], l[R], o[R][8];
  int limit[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + r;
    const bool valid = row < num_rows;
    limit[r] = valid ? cond_len + dense_len - q_len + row / group + 1 : -1;
#pragma unroll
    for (int i = 0; i < 8; ++i) qf[r][i] = o[r][i] = 0.f;
    if (valid) {
      const int64_t tok = q_begin + row / group;
      const int head = kv_head * group + row % group;
      load8(p.q + (tok * p.num_q_heads + head) * D + chunk * 8, qf[r]);
#pragma unroll
      for (int i = 0; i < 8; ++i) qf[r][i] *= q_scale;
    }
    m[r] = -INFINITY;
    l[r] = 0.f;
  }

  const int page_size = p.page_size, bs = p.dense_block_size;
  const int32_t* pages = p.page_indices + p.page_indptr[seg];
  const uint64_t* mask = p.mask_indptr != nullptr ? p.mask_words + p.mask_indptr[seg] : nullptr;
  const int32_t* table = p.dense_block_indices + p.dense_block_indptr[seq];
  const int dense_start = p.dense_start[seq];

  // Element offset of list entry v's K/V row: >= 0 in the page pools, -1 - offset in the dense
  // cache; false when v is past the end or masked.
  auto locate = [&](int v, int64_t& off) -> bool {
    if (v >= end) return false;
    if (v < cond_len) {
      if (mask != nullptr && ((mask[v >> 6] >> (v & 63)) & 1u)) return false;
      off = (static_cast<int64_t>(pages[v / page_size]) * page_size + v % page_size) * D;
    } else {
      const int t = dense_start + v - cond_len;
      const int64_t slot = static_cast<int64_t>(table[t / bs]) * bs + t % bs;
      off = -1 - (slot * p.num_kv_heads + kv_head) * D;
    }
    return true;
  };

  // The trip count depends only on the warp, so the lane-group shuffles below see full warps.
  const int v_first = begin + warp * T::kTokensPerWarp * U + sub * U;
  int64_t off[U];
  bool ok[U];
#pragma unroll
  for (int u = 0; u < U; ++u) ok[u] = locate(v_first + u, off[u]);
  for (int v_warp = begin + warp * T::kTokensPerWarp * U; v_warp < end; v_warp += kStep) {
    const int v0 = v_warp + sub * U;
    uint4 kr[U], vr[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      if (!ok[u]) continue;
      const bool paged = off[u] >= 0;
      const int64_t o_u = paged ? off[u] : -1 - off[u];
      kr[u] = __ldg(reinterpret_cast<const uint4*>((paged ? p.page_k : p.dense_k) + o_u) + chunk);
      vr[u] = __ldg(reinterpret_cast<const uint4*>((paged ? p.page_v : p.dense_v) + o_u) + chunk);
    }
    bool ok_next[U];
    int64_t off_next[U];
#pragma unroll
    for (int u = 0; u < U; ++u) ok_next[u] = locate(v0 + kStep + u, off_next[u]);

    float s[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[8];
      unpack8(kr[u], kf);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) dot += qf[r][i] * kf[i];
#pragma unroll
        for (int sh = L / 2; sh > 0; sh >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, sh);
        s[u][r] = (ok[u] && v0 + u < limit[r]) ? dot : -INFINITY;
      }
    }
    // Online softmax: rescale each row once per step, then s becomes the step's probabilities.
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float m_new = m[r];
#pragma unroll
      for (int u = 0; u < U; ++u) m_new = fmaxf(m_new, s[u][r]);
      if (m_new == -INFINITY) {  // nothing visible to this row yet
#pragma unroll
        for (int u = 0; u < U; ++u) s[u][r] = 0.f;
        continue;
      }
      const float alpha = exp2f(m[r] - m_new);
      l[r] *= alpha;
#pragma unroll
      for (int i = 0; i < 8; ++i) o[r][i] *= alpha;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        s[u][r] = exp2f(s[u][r] - m_new);
        l[r] += s[u][r];
      }
      m[r] = m_new;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vf[8];
      unpack8(vr[u], vf);
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int i = 0; i < 8; ++i) o[r][i] += s[u][r] * vf[i];
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) ok[u] = ok_next[u], off[u] = off_next[u];
  }

  // Merge the workers' states: out = sum_w 2^(m_w - M) o_w / sum_w 2^(m_w - M) l_w.
  extern __shared__ __align__(16) float tiered_smem[];
  float* sm_o = tiered_smem;                  // [kWorkers, R, D]
  float* sm_ml = sm_o + T::kWorkers * R * D;  // [kWorkers, R, 2]
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float* dst = sm_o + (worker * R + r) * D + chunk * 8;
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i] = o[r][i];
    if (chunk == 0) {
      sm_ml[(worker * R + r) * 2] = m[r];
      sm_ml[(worker * R + r) * 2 + 1] = l[r];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < R * D; idx += kTieredThreads) {
    const int r = idx / D, d = idx % D;
    const int row = row0 + r;
    if (row >= num_rows) break;  // rows are in order: the rest are past the end too
    float m_max = -INFINITY;
    for (int w = 0; w < T::kWorkers; ++w) m_max = fmaxf(m_max, sm_ml[(w * R + r) * 2]);
    float acc = 0.f, sum = 0.f;
    if (m_max != -INFINITY) {
      for (int w = 0; w < T::kWorkers; ++w) {
        const float mw = sm_ml[(w * R + r) * 2];
        if (mw == -INFINITY) continue;
        const float scale = exp2f(mw - m_max);
        sum += scale * sm_ml[(w * R + r) * 2 + 1];
        acc += scale * sm_o[(w * R + r) * D + d];
      }
    }
    const float val = sum > 0.f ? acc / sum : 0.f;
    const int64_t tok = q_begin + row / group;
    const int head = kv_head * group + row % group;
    const int64_t out_row = tok * p.num_q_heads + head;
    if (p.num_splits == 1) {
      p.out[out_row * D + d] = __float2bfloat16(val);
    } else {
      const int64_t idx_s = static_cast<int64_t>(split) * p.num_tokens * p.num_q_heads + out_row;
      p.partial_o[idx_s * D + d] = val;
      if (d == 0) {
        p.partial_ml[idx_s * 2] = m_max;
        p.partial_ml[idx_s * 2 + 1] = sum;
      }
    }
  }
}

template <int D, int R, int U>
void launch_tiered_attention_rows(const TieredAttentionParams& p, cudaStream_t stream) {
  using T = TieredTraits<D>;
  constexpr size_t smem = T::template smem_bytes<R>();
  static_assert(smem <= 48 * 1024, "tiered attention merge buffer exceeds 48 KB");
  const int group = p.num_q_heads / p.num_kv_heads;
  const int64_t row_tiles = ceil_div(static_cast<int64_t>(p.max_query_len) * group, R);
  const dim3 grid(static_cast<unsigned>(row_tiles * p.num_splits), p.num_seqs, p.num_kv_heads);
  tiered_attention_kernel<D, R, U><<<grid, kTieredThreads, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int D, int R>
void launch_tiered_attention_unroll(const TieredAttentionParams& p, cudaStream_t stream) {
  if (p.tokens_in_flight == 8) {
    launch_tiered_attention_rows<D, R, 8>(p, stream);
  } else {
    CUDA_REQUIRE(p.tokens_in_flight == 4, kInternal, "tiered attention: tokens_in_flight ",
                 p.tokens_in_flight, " (plan_tiered_attention() sets 4 or 8)");
    launch_tiered_attention_rows<D, R, 4>(p, stream);
  }
}

template <int D>
void launch_tiered_attention_impl(const TieredAttentionParams& p, cudaStream_t stream) {
  switch (p.rows_per_block) {
    case 1:
      launch_tiered_attention_unroll<D, 1>(p, stream);
      break;
    case 2:
      launch_tiered_attention_unroll<D, 2>(p, stream);
      break;
    case 4:
      launch_tiered_attention_unroll<D, 4>(p, stream);
      break;
    case 8:
      launch_tiered_attention_unroll<D, 8>(p, stream);
      break;
    default:
      CUDA_REQUIRE(false, kInternal, "tiered attention: rows_per_block ", p.rows_per_block,
                   " (plan_tiered_attention() sets 1, 2, 4 or 8)");
  }
}

}  // namespace hardkv::cuda
