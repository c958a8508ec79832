// The paged decode attention kernel template (CUDA cores, fp32 math, q_len == 1 per sequence).
// A block of 4 warps owns (split, sequence, KV head) and computes all G query heads of the group
// from each K/V load, so K/V are read from HBM once. Lanes form "workers" of D/8 lanes that each
// hold 8 dims of one token row (one 16-byte load); a worker takes a contiguous run of kUnroll
// tokens per step, issuing all its K and V loads before any math, and keeps its own online-softmax
// state (m, l, o) per head. The workers' states merge through shared memory at the end.
// kFused: the block first builds its query heads from the fused q/k/v projection (per-head norm,
// RoPE) and the block owning the new token's position stores its K/V (qkv_prepare folded in).
// With split_counters, the last split block of a (sequence, KV head) merges the partials; with
// cluster_merge, the split blocks of a (sequence, KV head) form one thread-block cluster and merge
// through distributed shared memory (no partials in global memory, no combine kernel).
#pragma once

#include <cooperative_groups.h>

#include <cmath>
#include <type_traits>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/decode_attention_prep.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/qkv_prepare_row.cuh"

namespace hardkv::cuda {

template <int D, int G>
struct DecodeAttentionTraits {
  static_assert(D == 64 || D == 128 || D == 256, "decode attention: head_dim 64/128/256");
  static_assert(G == 1 || G == 2 || G == 4, "decode attention: group 1/2/4");
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kLanesPerToken = D / 8;  // one 16-byte chunk per lane
  static constexpr int kTokensPerWarp = 32 / kLanesPerToken;
  static constexpr int kWorkers = kWarps * kTokensPerWarp;
  // Tokens per worker per step: each lane keeps 2 * kUnroll 16-byte loads in flight; fewer for
  // group 4, whose q and o registers (16 G floats per lane) leave less room.
  static constexpr int kUnroll = G <= 2 ? 8 : 4;
  static constexpr int kStep = kWorkers * kUnroll;  // tokens per block per step
};

inline constexpr int kDecodeMaxSplits = 128;  // plan_paged_attention's cap

// kMinBlocks: resident blocks per multiprocessor the register budget is set for (4: at most 128
// registers, for groups 1-2; 0: the compiler's choice, ~168 registers, 3 blocks).
// prep_early (kFused with p.kv_before_wait): the position, cos/sin row, slot and q/k norm weights
// are read before pdl_wait() too (decode_attention_prep.cuh), so only the qkv row is read after.
template <int D, int G, bool kFused, int kMinBlocks>
__global__ void __launch_bounds__(DecodeAttentionTraits<D, G>::kThreads, kMinBlocks)
    decode_attention_kernel(const PagedAttentionParams p, bool prep_early) {
  using T = DecodeAttentionTraits<D, G>;
  constexpr int kLpt = T::kLanesPerToken;
  constexpr int kW = T::kWorkers;
  constexpr int kU = T::kUnroll;
  __shared__ float m_s[kW][G];                   // per worker and head: running max (log2 units)
  __shared__ float l_s[kW][G];                   // per worker and head: sum of 2^(s - m)
  __shared__ __align__(16) float o_s[kW][G][D];  // per worker and head: unnormalised output
  // kFused: the prepared query heads, and the new token's K and V rows.
  __shared__ __align__(16) bf16 q_s[kFused ? G : 1][D];
  __shared__ __align__(16) bf16 kv_new_s[kFused ? 2 : 1][D];
  __shared__ bool last_block;
  __shared__ float cm_s[G][2];  // cluster_merge: this block's (max, sum) per head

  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  // kv_before_wait (fused only): the metadata, block table and first K/V step are read before
  // waiting for the previous kernel; no kernel of this step has written them (the fused kernel
  // stores the new token itself and takes its K/V from shared memory).
  const bool kv_early = kFused && p.kv_before_wait;
  if (!kv_early) pdl_wait();
  const int kv_head = blockIdx.x, split = blockIdx.y, seq = blockIdx.z;
  // Independent metadata loads issued together (one round trip).
  const int tok = p.query_indptr[seq];
  const int tok_end = p.query_indptr[seq + 1];
  const int kv_len = p.kv_lens[seq];
  const int32_t* blocks = p.block_indices + p.block_indptr[seq];
  if (tok_end == tok) return;  // no query token (a padded graph slot)
  const int kv_begin = split * p.kv_chunk;
  const int kv_end = min(kv_len, kv_begin + p.kv_chunk);
  const int head0 = kv_head * G;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // A split past this sequence's end (the grid is planned for the longest bound) leaves an empty
  // partial (l == 0: the merge skips it without reading its o).
  const bool empty = kv_begin >= kv_end;
  if (empty && p.num_splits == 1) return;

  if (empty) {
    if (kv_early) pdl_wait();  // the previous layer's combine may still read the partials
    if (p.cluster_merge) {
      if (threadIdx.x < G) {
        cm_s[threadIdx.x][0] = -INFINITY;
        cm_s[threadIdx.x][1] = 0.f;
      }
    } else if (threadIdx.x < G) {
      const int64_t idx =
          (static_cast<int64_t>(split) * p.num_tokens + tok) * p.num_q_heads + head0 + threadIdx.x;
      p.partial_ml[idx * 2] = -INFINITY;
      p.partial_ml[idx * 2 + 1] = 0.f;
    }
  } else {
    const int worker = warp * T::kTokensPerWarp + lane / kLpt;
    const int chunk = lane % kLpt;  // this lane owns dims [chunk * 8, chunk * 8 + 8)
    const int bs = p.block_size;
    const int64_t slot_stride = static_cast<int64_t>(p.num_kv_heads) * D;  // elements per slot
    const bf16* k_base = p.k_cache + static_cast<int64_t>(kv_head) * D + chunk * 8;
    const bf16* v_base = p.v_cache + static_cast<int64_t>(kv_head) * D + chunk * 8;
    // The block holding position kv_len - 1 (the new token's, when kFused) takes its K/V from
    // shared memory: this kernel stores them, so the cache's copy is not read back.
    const bool has_new = kFused && kv_len - 1 >= kv_begin && kv_len - 1 < kv_end;

    // Block-table lookups first, then every K and V load of the step, so their latencies overlap.
    uint4 kr[kU], vr[kU];
    auto load_step = [&](int t0) {
      const int pos0 = t0 + worker * kU;
      int64_t slot[kU];
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int pos = min(pos0 + u, kv_end - 1);
        slot[u] = static_cast<int64_t>(__ldg(blocks + pos / bs)) * bs + pos % bs;
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        kr[u] = __ldg(reinterpret_cast<const uint4*>(k_base + slot[u] * slot_stride));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(v_base + slot[u] * slot_stride));
      }
    };
    const bool prep_before = kv_early && prep_early;
    HeadPrepConsts<D> prep;
    if (prep_before) {
      prep.load(p.positions, p.cos_sin, p.max_pos, p.slots, p.q_norm, p.k_norm, tok, lane);
    }
    load_step(kv_begin);  // in flight while the query (and new K/V) are prepared
    if (kv_early) pdl_wait();

    if constexpr (kFused) {
      // Rows: the G query heads, then (the block holding position kv_len - 1) K and V.
      const int64_t qkv_row = static_cast<int64_t>(p.num_q_heads + 2 * p.num_kv_heads) * D;
      const bf16* src_tok = p.qkv + static_cast<int64_t>(tok) * qkv_row;
      const float* cs = nullptr;  // !prep_before: read here
      if (!prep_before) {
        const int32_t pos = p.positions[tok];
        if (pos >= 0 && pos < p.max_pos) cs = p.cos_sin + static_cast<int64_t>(pos) * D;
      }
      const int rows = G + (has_new ? 2 : 0);
      for (int r = warp; r < rows && prep_before; r += T::kWarps) {
        if (r < G) {
          prepare_head_row_regs<D>(src_tok + static_cast<int64_t>(head0 + r) * D, q_s[r], false,
                                   p.q_norm != nullptr, p.eps, prep, lane);
        } else if (r == G) {
          prepare_head_row_regs<D>(src_tok + static_cast<int64_t>(p.num_q_heads + kv_head) * D,
                                   kv_new_s[0], true, p.k_norm != nullptr, p.eps, prep, lane);
        } else {
          const bf16* v =
              src_tok + static_cast<int64_t>(p.num_q_heads + p.num_kv_heads + kv_head) * D;
          for (int i = lane * 8; i < D; i += 32 * 8) {
            *reinterpret_cast<uint4*>(&kv_new_s[1][i]) = *reinterpret_cast<const uint4*>(v + i);
          }
        }
      }
      for (int r = warp; r < rows && !prep_before; r += T::kWarps) {
        if (r < G) {
          prepare_head_row(src_tok + static_cast<int64_t>(head0 + r) * D, q_s[r], p.q_norm, p.eps,
                           cs, D, lane);
        } else if (r == G) {
          prepare_head_row(src_tok + static_cast<int64_t>(p.num_q_heads + kv_head) * D,
                           kv_new_s[0], p.k_norm, p.eps, cs, D, lane);
        } else {
          const bf16* v =
              src_tok + static_cast<int64_t>(p.num_q_heads + p.num_kv_heads + kv_head) * D;
          for (int i = lane * 8; i < D; i += 32 * 8) {
            *reinterpret_cast<uint4*>(&kv_new_s[1][i]) = *reinterpret_cast<const uint4*>(v + i);
          }
        }
      }
      __syncthreads();  // q_s and kv_new_s ready
      if (has_new) {
        const int32_t slot = prep_before ? prep.slot : p.slots[tok];
        if (slot >= 0 && slot < p.num_slots) {
          const int64_t dst = (static_cast<int64_t>(slot) * p.num_kv_heads + kv_head) * D;
          for (int i = threadIdx.x * 8; i < 2 * D; i += T::kThreads * 8) {
            bf16* cache = i < D ? p.k_cache_w : p.v_cache_w;
            *reinterpret_cast<uint4*>(cache + dst + i % D) =
                *reinterpret_cast<const uint4*>(&kv_new_s[i / D][i % D]);
          }
        }
      }
    }

    // q of the G heads, scaled by softmax scale * log2(e) so the softmax can use exp2.
    const float q_scale = p.scale * 1.4426950408889634f;
    float q[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if constexpr (kFused) {
        load8(&q_s[g][chunk * 8], q[g]);
      } else {
        load8(p.q + (static_cast<int64_t>(tok) * p.num_q_heads + head0 + g) * D + chunk * 8, q[g]);
      }
#pragma unroll
      for (int k = 0; k < 8; ++k) q[g][k] *= q_scale;
    }
    float m[G], l[G], o[G][8];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      m[g] = -INFINITY;
      l[g] = 0.f;
#pragma unroll
      for (int k = 0; k < 8; ++k) o[g][k] = 0.f;
    }

    for (int t0 = kv_begin; t0 < kv_end; t0 += T::kStep) {
      const int pos0 = t0 + worker * kU;
      if (t0 != kv_begin) load_step(t0);
      if (has_new) {
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          if (min(pos0 + u, kv_end - 1) == kv_len - 1) {
            kr[u] = *reinterpret_cast<const uint4*>(&kv_new_s[0][chunk * 8]);
            vr[u] = *reinterpret_cast<const uint4*>(&kv_new_s[1][chunk * 8]);
          }
        }
      }

      // Scores: 8-dim partial dots, summed over the worker's lanes.
      float s[G][kU];
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        float k[8];
        unpack8(kr[u], k);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float a = q[g][0] * k[0];
#pragma unroll
          for (int i = 1; i < 8; ++i) a = fmaf(q[g][i], k[i], a);
          s[g][u] = a;
        }
      }
#pragma unroll
      for (int off = kLpt / 2; off > 0; off /= 2) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
#pragma unroll
          for (int u = 0; u < kU; ++u) s[g][u] += __shfl_xor_sync(0xffffffffu, s[g][u], off);
        }
      }

      // Online softmax over the worker's run; s becomes the probabilities (0 past kv_end).
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float mx = m[g];
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          if (pos0 + u < kv_end) mx = fmaxf(mx, s[g][u]);
        }
        const float alpha = mx == -INFINITY ? 1.f : exp2f(m[g] - mx);
        m[g] = mx;
        l[g] *= alpha;
#pragma unroll
        for (int k = 0; k < 8; ++k) o[g][k] *= alpha;
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          s[g][u] = pos0 + u < kv_end ? exp2f(s[g][u] - mx) : 0.f;
          l[g] += s[g][u];
        }
      }

      // o += P V.
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        float v[8];
        unpack8(vr[u], v);
#pragma unroll
        for (int g = 0; g < G; ++g) {
#pragma unroll
          for (int k = 0; k < 8; ++k) o[g][k] = fmaf(s[g][u], v[k], o[g][k]);
        }
      }
    }

    // Merge the workers: weights 2^(m_w - max m).
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float4* dst = reinterpret_cast<float4*>(&o_s[worker][g][chunk * 8]);
      dst[0] = make_float4(o[g][0], o[g][1], o[g][2], o[g][3]);
      dst[1] = make_float4(o[g][4], o[g][5], o[g][6], o[g][7]);
      if (chunk == 0) {
        m_s[worker][g] = m[g];
        l_s[worker][g] = l[g];
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < G * D; i += T::kThreads) {
      const int g = i / D, d = i % D;
      float mx = -INFINITY;
#pragma unroll
      for (int w = 0; w < kW; ++w) mx = fmaxf(mx, m_s[w][g]);
      float sum = 0.f, acc = 0.f;
#pragma unroll
      for (int w = 0; w < kW; ++w) {
        if (l_s[w][g] == 0.f) continue;  // the worker saw no token
        const float sc = exp2f(m_s[w][g] - mx);
        sum += l_s[w][g] * sc;
        acc += o_s[w][g][d] * sc;
      }
      const float val = sum > 0.f ? acc / sum : 0.f;
      const int head = head0 + g;
      if (p.num_splits == 1) {
        p.out[(static_cast<int64_t>(tok) * p.num_q_heads + head) * D + d] = __float2bfloat16(val);
      } else if (p.cluster_merge) {
        o_s[0][g][d] = val;  // only this thread reads and writes (g, d) of o_s here
        if (d == 0) {
          cm_s[g][0] = mx;
          cm_s[g][1] = sum;
        }
      } else {
        const int64_t idx =
            (static_cast<int64_t>(split) * p.num_tokens + tok) * p.num_q_heads + head;
        p.partial_o[idx * D + d] = val;
        if (d == 0) {
          p.partial_ml[idx * 2] = mx;
          p.partial_ml[idx * 2 + 1] = sum;
        }
      }
    }
  }
  if (p.num_splits > 1 && p.cluster_merge) {
    // Every split block's (max, sum, o) is in its shared memory; block `split` of the cluster
    // merges the output elements split * kThreads + i (as combine_splits_kernel weighs them),
    // reading the others' through distributed shared memory. The second barrier keeps each
    // block's shared memory alive until all have read it.
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    const int ns = p.num_splits;
    for (int i = split * T::kThreads + threadIdx.x; i < G * D; i += ns * T::kThreads) {
      const int g = i / D, d = i % D;
      float ms[kDecodeMaxClusterSplits], ls[kDecodeMaxClusterSplits];
      float mx = -INFINITY;
#pragma unroll
      for (int s = 0; s < kDecodeMaxClusterSplits; ++s) {  // independent loads, all in flight
        ms[s] = -INFINITY;
        ls[s] = 0.f;
        if (s < ns) {
          const float* ml = cluster.map_shared_rank(&cm_s[g][0], s);
          ms[s] = ml[0];
          ls[s] = ml[1];
        }
        mx = fmaxf(mx, ms[s]);
      }
      float wsum = 0.f, acc = 0.f;
#pragma unroll
      for (int s = 0; s < kDecodeMaxClusterSplits; ++s) {
        if (ls[s] == 0.f) continue;  // an empty split (or past ns): its o was never written
        const float w = ls[s] * exp2f(ms[s] - mx);
        wsum += w;
        acc += w * cluster.map_shared_rank(&o_s[0][g][d], s)[0];
      }
      p.out[(static_cast<int64_t>(tok) * p.num_q_heads + head0 + g) * D + d] =
          __float2bfloat16(wsum > 0.f ? acc / wsum : 0.f);
    }
    cluster.sync();
    return;
  }
  if (p.num_splits == 1 || p.split_counters == nullptr) return;

  // In-kernel split merge: the last of the num_splits blocks of (sequence, KV head) to get here
  // merges the partials of its G heads (as combine_splits_kernel does) and resets the counter.
  __threadfence();  // this thread's partial writes are visible device-wide before the count
  __syncthreads();
  unsigned* counter = p.split_counters + static_cast<int64_t>(seq) * p.num_kv_heads + kv_head;
  if (threadIdx.x == 0) {
    last_block = atomicAdd(counter, 1u) == static_cast<unsigned>(p.num_splits - 1);
  }
  __syncthreads();
  if (!last_block) return;
  __threadfence();
  float* w_s = &o_s[0][0][0];  // [G][kDecodeMaxSplits] split weights (o_s is free again)
  static_assert(kW * G * D >= G * kDecodeMaxSplits, "o_s too small for the split weights");
  const int ns = p.num_splits;
  const int64_t rows = static_cast<int64_t>(p.num_tokens) * p.num_q_heads;
  if (warp < G) {  // warp g: the weights of head g
    const int64_t row = static_cast<int64_t>(tok) * p.num_q_heads + head0 + warp;
    float ms[kDecodeMaxSplits / 32], ls[kDecodeMaxSplits / 32];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kDecodeMaxSplits / 32; ++j) {
      const int s = lane + 32 * j;
      ms[j] = s < ns ? __ldcg(&p.partial_ml[(s * rows + row) * 2]) : -INFINITY;
      ls[j] = s < ns ? __ldcg(&p.partial_ml[(s * rows + row) * 2 + 1]) : 0.f;
      mx = fmaxf(mx, ms[j]);
    }
    mx = warp_max(mx);
#pragma unroll
    for (int j = 0; j < kDecodeMaxSplits / 32; ++j) {
      const int s = lane + 32 * j;
      if (s < ns) w_s[warp * kDecodeMaxSplits + s] = ls[j] == 0.f ? 0.f : ls[j] * exp2f(ms[j] - mx);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += T::kThreads) {
    const int g = i / D, d = i % D;
    const int64_t row = static_cast<int64_t>(tok) * p.num_q_heads + head0 + g;
    const float* po = p.partial_o + row * D + d;
    const int64_t split_stride = rows * D;
    float wsum = 0.f, acc = 0.f;
    // Unrolled so that many partial loads are in flight (a rolled loop pays one L2 latency per
    // split); empty splits (w == 0) never wrote their o, which is read but not used.
#pragma unroll 16
    for (int s = 0; s < ns; ++s) {
      const float w = w_s[g * kDecodeMaxSplits + s];
      const float o = __ldcg(po + s * split_stride);
      wsum += w;
      acc += w != 0.f ? w * o : 0.f;
    }
    p.out[row * D + d] = __float2bfloat16(wsum > 0.f ? acc / wsum : 0.f);
  }
  if (threadIdx.x == 0) *counter = 0;
}

template <int D, int G>
void launch_decode_attention_impl(const PagedAttentionParams& p, cudaStream_t stream) {
  using T = DecodeAttentionTraits<D, G>;
  // KV heads fastest: blocks running together read all heads of the same slots, i.e. whole
  // contiguous [num_kv_heads, D] slot rows instead of one D-slice per 2 KB or so.
  const dim3 grid(static_cast<unsigned>(p.num_kv_heads), static_cast<unsigned>(p.num_splits),
                  static_cast<unsigned>(p.num_seqs));
  // cluster_merge: the num_splits blocks of a (KV head, sequence) form one cluster.
  const unsigned cluster = p.cluster_merge && p.num_splits > 1 ? p.num_splits : 0;
  const bool prep_early = decode_attention_prep_early();
  auto launch = [&](auto min_blocks) {
    constexpr int kMin = decltype(min_blocks)::value;
    if (p.qkv != nullptr) {
      launch_pdl_cluster(decode_attention_kernel<D, G, true, kMin>, grid, dim3(T::kThreads), 0,
                         stream, dim3(1, cluster, 1), p, prep_early);
    } else {
      launch_pdl_cluster(decode_attention_kernel<D, G, false, kMin>, grid, dim3(T::kThreads), 0,
                         stream, dim3(1, cluster, 1), p, false);
    }
  };
  bool done = false;
  if constexpr (G <= 2) {  // group 4 needs ~168 registers: no 4-block variant
    if (p.occupancy4) {
      launch(std::integral_constant<int, 4>{});
      done = true;
    }
  }
  if (!done) launch(std::integral_constant<int, 0>{});
  CUDA_CHECK_LAUNCH();
}

// Runtime group -> compile-time G for one head dim.
template <int D>
void launch_decode_attention_for_dim(const PagedAttentionParams& p, cudaStream_t stream) {
  switch (p.num_q_heads / p.num_kv_heads) {
    case 1:
      return launch_decode_attention_impl<D, 1>(p, stream);
    case 2:
      return launch_decode_attention_impl<D, 2>(p, stream);
    case 4:
      return launch_decode_attention_impl<D, 4>(p, stream);
    default:
      CUDA_REQUIRE(false, kUnsupported, "decode attention: GQA group ",
                   p.num_q_heads / p.num_kv_heads, " is not supported (1, 2, 4)");
  }
}

}  // namespace hardkv::cuda
