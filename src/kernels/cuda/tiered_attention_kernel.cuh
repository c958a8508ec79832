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

// 16-byte asynchronous global -> shared copy (sm_80+), zero-filled when !valid (nothing read).
__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Pipelined variant: shared-memory ring of this many steps per warp (cp.async, so bytes in flight
// cost no registers). Every lane copies and later reads only its own 16-byte chunks, so the ring
// needs no barrier: cp.async.wait_group alone orders each lane's copy before its read.
inline constexpr int kTieredStages = 3;

template <int D, int U>
constexpr size_t tiered_ring_bytes() {
  return sizeof(uint4) * 2 * kTieredStages * U * kTieredThreads +
         sizeof(uint32_t) * kTieredStages * kTieredThreads;
}

// One block's share of the grid: blockIdx.x = row tile * num_splits + split, y = sequence,
// z = kv-head. Its rows are [row0, row0 + rows_per_block) of the sequence's q_len * group
// (query token, head-in-group) rows; its split is [begin, end) of the head's virtual token list.
struct TieredBlock {
  int seq, kv_head, split, row0, q_begin, q_len, group, num_rows;
  int seg, cond_len, dense_len, begin, end;  // set only when the block has rows
};

// Fills b; false (nothing to do: only seq .. num_rows set) when the block's rows start past the
// sequence's.
__device__ __forceinline__ bool tiered_block(const TieredAttentionParams& p, int rows_per_block,
                                             TieredBlock& b) {
  b.seq = blockIdx.y;
  b.kv_head = blockIdx.z;
  b.split = blockIdx.x % p.num_splits;
  b.row0 = (blockIdx.x / p.num_splits) * rows_per_block;
  b.q_begin = p.query_indptr[b.seq];
  b.q_len = p.query_indptr[b.seq + 1] - b.q_begin;
  b.group = p.num_q_heads / p.num_kv_heads;
  b.num_rows = b.q_len * b.group;
  if (b.row0 >= b.num_rows) return false;
  b.seg = b.seq * p.num_kv_heads + b.kv_head;
  b.cond_len = p.cond_len[b.seg];
  b.dense_len = p.dense_len[b.seq];
  const int last_row = min(b.row0 + rows_per_block, b.num_rows) - 1;
  // List entry v < cond_len is stored token v; entry cond_len + i is live dense token i. Row r
  // (query token j) sees entries below cond_len + dense_len - q_len + j + 1. The splits divide
  // this block's own list evenly (lists differ in length across heads).
  const int list_len = b.cond_len + b.dense_len - b.q_len + last_row / b.group + 1;
  const int split_len = (list_len + p.num_splits - 1) / p.num_splits;
  b.begin = b.split * split_len;
  b.end = min(list_len, b.begin + split_len);
  return true;
}

// The block's epilogue: merges the (max log2, sum, out) states that `parts` workers left in
// shared memory (sm_ml [parts, R, 2], sm_o [parts, R, D]; a part with max -inf saw no token) for
// each of the block's R rows, and writes the result (one split: the output row; several: the
// split's partial row and its (max, sum)). Call after a __syncthreads(); threads stride by
// num_threads.
template <int D, int R>
__device__ __forceinline__ void tiered_store_rows(const TieredAttentionParams& p,
                                                  const TieredBlock& b, const float* sm_ml,
                                                  const float* sm_o, int parts, int num_threads) {
  for (int idx = threadIdx.x; idx < R * D; idx += num_threads) {
    const int r = idx / D, d = idx % D;
    const int row = b.row0 + r;
    if (row >= b.num_rows) break;  // rows are in order: the rest are past the end too
    float m_max = -INFINITY;
    for (int w = 0; w < parts; ++w) m_max = fmaxf(m_max, sm_ml[(w * R + r) * 2]);
    float acc = 0.f, sum = 0.f;
    if (m_max != -INFINITY) {
      for (int w = 0; w < parts; ++w) {
        const float mw = sm_ml[(w * R + r) * 2];
        if (mw == -INFINITY) continue;
        const float scale = exp2f(mw - m_max);
        sum += scale * sm_ml[(w * R + r) * 2 + 1];
        acc += scale * sm_o[(w * R + r) * D + d];
      }
    }
    const float val = sum > 0.f ? acc / sum : 0.f;
    const int64_t tok = b.q_begin + row / b.group;
    const int head = b.kv_head * b.group + row % b.group;
    const int64_t out_row = tok * p.num_q_heads + head;
    if (p.num_splits == 1) {
      p.out[out_row * D + d] = __float2bfloat16(val);
    } else {
      const int64_t idx_s = static_cast<int64_t>(b.split) * p.num_tokens * p.num_q_heads + out_row;
      p.partial_o[idx_s * D + d] = val;
      if (d == 0) {
        p.partial_ml[idx_s * 2] = m_max;
        p.partial_ml[idx_s * 2 + 1] = sum;
      }
    }
  }
}

// U = tokens per worker per step. The offsets of a step's tokens (page id, mask bit, block table
// lookups) are computed one step ahead of their K/V loads, so those loads overlap. Register
// path (kPipelined false): K/V of the current step in registers. Pipelined path: K/V copied
// kTieredStages - 1 steps ahead into the ring.
template <int D, int R, int U, bool kPipelined>
__global__ void __launch_bounds__(kTieredThreads)
    tiered_attention_kernel(const TieredAttentionParams p) {
  using T = TieredTraits<D>;
  constexpr int L = T::kLanesPerToken, S = kTieredStages;
  constexpr int kStep = T::kWorkers * U;  // list entries per block step
  TieredBlock b;
  if (!tiered_block(p, R, b)) return;
  const int seq = b.seq, kv_head = b.kv_head, row0 = b.row0;
  const int q_begin = b.q_begin, q_len = b.q_len, group = b.group, num_rows = b.num_rows;
  const int seg = b.seg, cond_len = b.cond_len, dense_len = b.dense_len;
  const int begin = b.begin, end = b.end;

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
  auto k_row = [&](int64_t off) {
    return reinterpret_cast<const uint4*>(off >= 0 ? p.page_k + off : p.dense_k + (-1 - off)) +
           chunk;
  };
  auto v_row = [&](int64_t off) {
    return reinterpret_cast<const uint4*>(off >= 0 ? p.page_v + off : p.dense_v + (-1 - off)) +
           chunk;
  };

  // One step of U tokens per worker: scores, online softmax, o += p v.
  auto consume = [&](int v0, const uint4(&kr)[U], const uint4(&vr)[U], const bool(&ok)[U]) {
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
    // Rescale each row once per step, then s becomes the step's probabilities.
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
  };

  extern __shared__ __align__(16) unsigned char tiered_smem[];
  // The trip count depends only on the warp, so the lane-group shuffles see full warps.
  const int v_warp0 = begin + warp * T::kTokensPerWarp * U;
  const int num_steps = v_warp0 < end ? (end - v_warp0 + kStep - 1) / kStep : 0;
  int64_t off[U];
  bool ok[U];
  if constexpr (!kPipelined) {
#pragma unroll
    for (int u = 0; u < U; ++u) ok[u] = locate(v_warp0 + sub * U + u, off[u]);
    for (int step = 0; step < num_steps; ++step) {
      const int v0 = v_warp0 + step * kStep + sub * U;
      uint4 kr[U], vr[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
        if (!ok[u]) continue;
        kr[u] = __ldg(k_row(off[u]));
        vr[u] = __ldg(v_row(off[u]));
      }
      bool ok_now[U];
#pragma unroll
      for (int u = 0; u < U; ++u) ok_now[u] = ok[u], ok[u] = locate(v0 + kStep + u, off[u]);
      consume(v0, kr, vr, ok_now);
    }
  } else {
    // Ring slot (stage, u) of this lane: K at ring_k[(stage * U + u) * kThreads + tid], V likewise.
    uint4* ring_k = reinterpret_cast<uint4*>(tiered_smem);
    uint4* ring_v = ring_k + S * U * kTieredThreads;
    uint32_t* ok_bits = reinterpret_cast<uint32_t*>(ring_v + S * U * kTieredThreads);
    const int tid = threadIdx.x;
    auto issue = [&](int stage) {  // copies the step located in off/ok into ring slot `stage`
      uint32_t bits = 0;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int slot = (stage * U + u) * kTieredThreads + tid;
        cp_async16(ring_k + slot, ok[u] ? k_row(off[u]) : reinterpret_cast<const uint4*>(p.q),
                   ok[u]);
        cp_async16(ring_v + slot, ok[u] ? v_row(off[u]) : reinterpret_cast<const uint4*>(p.q),
                   ok[u]);
        bits |= static_cast<uint32_t>(ok[u]) << u;
      }
      ok_bits[stage * kTieredThreads + tid] = bits;
      cp_async_commit();
    };
    auto locate_step = [&](int step) {
#pragma unroll
      for (int u = 0; u < U; ++u) ok[u] = locate(v_warp0 + step * kStep + sub * U + u, off[u]);
    };
#pragma unroll
    for (int st = 0; st < S - 1; ++st) {
      locate_step(st);
      issue(st);
    }
    locate_step(S - 1);
    for (int step = 0; step < num_steps; ++step) {
      issue((step + S - 1) % S);  // the ring slot that step - 1 used
      locate_step(step + S);
      cp_async_wait<S - 1>();  // this lane's copies of `step` have landed
      const int stage = step % S;
      const uint32_t bits = ok_bits[stage * kTieredThreads + tid];
      uint4 kr[U], vr[U];
      bool ok_now[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        kr[u] = ring_k[(stage * U + u) * kTieredThreads + tid];
        vr[u] = ring_v[(stage * U + u) * kTieredThreads + tid];
        ok_now[u] = (bits >> u) & 1u;
      }
      consume(v_warp0 + step * kStep + sub * U, kr, vr, ok_now);
    }
    cp_async_wait<0>();  // trailing (zero-fill) copies land before the ring is reused below
  }

  // Merge the workers' states: out = sum_w 2^(m_w - M) o_w / sum_w 2^(m_w - M) l_w.
  float* sm_o = reinterpret_cast<float*>(tiered_smem);  // [kWorkers, R, D]
  float* sm_ml = sm_o + T::kWorkers * R * D;            // [kWorkers, R, 2]
  if constexpr (kPipelined) __syncthreads();            // other warps may still read their ring
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
  tiered_store_rows<D, R>(p, b, sm_ml, sm_o, T::kWorkers, kTieredThreads);
}

template <int D, int R, int U, bool kPipelined>
void launch_tiered_attention_rows(const TieredAttentionParams& p, cudaStream_t stream) {
  using T = TieredTraits<D>;
  constexpr size_t merge = T::template smem_bytes<R>();
  constexpr size_t ring = kPipelined ? tiered_ring_bytes<D, U>() : 0;
  constexpr size_t smem = merge > ring ? merge : ring;
  static_assert(merge <= 48 * 1024, "tiered attention merge buffer exceeds 48 KB");
  auto* kernel = tiered_attention_kernel<D, R, U, kPipelined>;
  if constexpr (smem > 48 * 1024) {
    static bool raised = [kernel] {
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(smem)));
      return true;
    }();
    (void)raised;
  }
  const int group = p.num_q_heads / p.num_kv_heads;
  const int64_t row_tiles = ceil_div(static_cast<int64_t>(p.max_query_len) * group, R);
  const dim3 grid(static_cast<unsigned>(row_tiles * p.num_splits), p.num_seqs, p.num_kv_heads);
  kernel<<<grid, kTieredThreads, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int D, int R>
void launch_tiered_attention_variant(const TieredAttentionParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.tokens_in_flight == 4 || (p.tokens_in_flight == 8 && !p.pipelined), kInternal,
               "tiered attention: tokens_in_flight ", p.tokens_in_flight, " with pipelined ",
               p.pipelined, " (4 or 8 registers, 4 pipelined)");
  if (p.pipelined) {
    launch_tiered_attention_rows<D, R, 4, true>(p, stream);
  } else if (p.tokens_in_flight == 8) {
    launch_tiered_attention_rows<D, R, 8, false>(p, stream);
  } else {
    launch_tiered_attention_rows<D, R, 4, false>(p, stream);
  }
}

template <int D>
void launch_tiered_attention_impl(const TieredAttentionParams& p, cudaStream_t stream) {
  switch (p.rows_per_block) {
    case 1:
      launch_tiered_attention_variant<D, 1>(p, stream);
      break;
    case 2:
      launch_tiered_attention_variant<D, 2>(p, stream);
      break;
    case 4:
      launch_tiered_attention_variant<D, 4>(p, stream);
      break;
    case 8:
      launch_tiered_attention_variant<D, 8>(p, stream);
      break;
    default:
      CUDA_REQUIRE(false, kInternal, "tiered attention: rows_per_block ", p.rows_per_block,
                   " (plan_tiered_attention() sets 1, 2, 4 or 8)");
  }
}

}  // namespace hardkv::cuda
