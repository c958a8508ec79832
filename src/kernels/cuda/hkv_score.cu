// HARD-KV scoring kernels (see hkv_score.h). Both passes compute the same 64 x 64 logit tiles
// with bf16 WMMA (each of 4 warps owns 16 rows x 64 candidates) from shared-memory tiles
// gathered out of the head-pages and the dense cache; logits are kept in the log2 domain.
#include <mma.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/hkv_score.h"

namespace hardkv::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kThreads = 128;
constexpr int kTile = 64;        // rows per row tile, candidates per candidate tile
constexpr int kSLd = kTile + 4;  // fp32 logit tile row stride

template <int D>
struct ScoreSmem {
  static constexpr int kLd = D + 8;  // bf16 row stride: 16-byte pad against bank conflicts
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + sizeof(bf16) * kTile * kLd;
  static constexpr size_t kS = kK + sizeof(bf16) * kTile * kLd;
  static constexpr size_t kStats = kS + sizeof(float) * kTile * kSLd;
  static constexpr size_t kBytes = kStats + sizeof(float) * 2 * kTile;
};

struct Segment {
  int seq, head, group, num_rows, num_cands, num_cond;
};

__device__ __forceinline__ Segment segment_of(const HkvScoreParams& p, int seg) {
  Segment g;
  g.seq = seg / p.num_kv_heads;
  g.head = seg % p.num_kv_heads;
  g.group = p.num_q_heads / p.num_kv_heads;
  g.num_rows = (p.obs_indptr[g.seq + 1] - p.obs_indptr[g.seq]) * g.group;
  g.num_cands = p.score_indptr[seg + 1] - p.score_indptr[seg];
  g.num_cond = p.cond_end[seg] - p.cond_begin[seg];
  return g;
}

// Tiles are gathered in two phases: every 16-byte load of the thread first (they overlap in
// flight; interleaved with shared-memory stores the compiler would have to serialise them), then
// every store.

// Rows row0.. of the segment (row = obs * group + head-in-group) into q_s [kTile, kLd]; zeros
// past the end.
template <int D>
__device__ void load_q_tile(const HkvScoreParams& p, const Segment& g, int row0, bf16* q_s) {
  constexpr int kChunks = D / 8, kLd = ScoreSmem<D>::kLd, kIters = kTile * kChunks / kThreads;
  static_assert(kIters * kThreads == kTile * kChunks);
  uint4 val[kIters];
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const int i = threadIdx.x + it * kThreads;
    const int r = i / kChunks, c = i % kChunks, row = row0 + r;
    val[it] = make_uint4(0, 0, 0, 0);
    if (row < g.num_rows) {
      const int64_t obs = p.obs_indptr[g.seq] + row / g.group;
      const int qh = g.head * g.group + row % g.group;
      val[it] = *reinterpret_cast<const uint4*>(p.q_obs + (obs * p.num_q_heads + qh) * D + c * 8);
    }
  }
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const int i = threadIdx.x + it * kThreads;
    *reinterpret_cast<uint4*>(q_s + (i / kChunks) * kLd + (i % kChunks) * 8) = val[it];
  }
}

// Candidates cand0.. of segment seg into k_s [kTile, kLd]; zeros past the end.
template <int D>
__device__ void load_k_tile(const HkvScoreParams& p, const Segment& g, int seg, int cand0,
                            bf16* k_s) {
  constexpr int kChunks = D / 8, kLd = ScoreSmem<D>::kLd, kIters = kTile * kChunks / kThreads;
  const int32_t* pages = p.page_indices + p.page_indptr[seg];
  const int32_t* table = p.dense_block_indices + p.dense_block_indptr[g.seq];
  const int cond_begin = p.cond_begin[seg], dense_start = p.dense_cand_start[g.seq];
  const int P = p.page_size, bs = p.dense_block_size;
  uint4 val[kIters];
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const int i = threadIdx.x + it * kThreads;
    const int r = i / kChunks, c = i % kChunks, j = cand0 + r;
    val[it] = make_uint4(0, 0, 0, 0);
    if (j < g.num_cands) {
      const bf16* src;
      if (j < g.num_cond) {
        const int t = cond_begin + j;
        src = p.page_k + (static_cast<int64_t>(pages[t / P]) * P + t % P) * D;
      } else {
        const int t = dense_start + j - g.num_cond;
        const int64_t slot = static_cast<int64_t>(table[t / bs]) * bs + t % bs;
        src = p.dense_k + (slot * p.num_kv_heads + g.head) * D;
      }
      val[it] = *reinterpret_cast<const uint4*>(src + c * 8);
    }
  }
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const int i = threadIdx.x + it * kThreads;
    *reinterpret_cast<uint4*>(k_s + (i / kChunks) * kLd + (i % kChunks) * 8) = val[it];
  }
}

// s_s[r][c] = q_s[r] . k_s[c] for the warp's 16 rows.
template <int D>
__device__ void logit_tile(const bf16* q_s, const bf16* k_s, float* s_s) {
  constexpr int kLd = ScoreSmem<D>::kLd;
  const int warp = threadIdx.x / 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kTile / 16];
#pragma unroll
  for (int n = 0; n < kTile / 16; ++n) wmma::fill_fragment(acc[n], 0.f);
#pragma unroll
  for (int k = 0; k < D; k += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
    wmma::load_matrix_sync(a, q_s + warp * 16 * kLd + k, kLd);
#pragma unroll
    for (int n = 0; n < kTile / 16; ++n) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
      wmma::load_matrix_sync(b, k_s + n * 16 * kLd + k, kLd);
      wmma::mma_sync(acc[n], a, b, acc[n]);
    }
  }
#pragma unroll
  for (int n = 0; n < kTile / 16; ++n) {
    wmma::store_matrix_sync(s_s + warp * 16 * kSLd + n * 16, acc[n], kSLd, wmma::mem_row_major);
  }
}

// Pass 1: per (row tile, segment), each row's max and sum of 2^x over all candidates
// (x = logit * scale * log2 e). Lane pair (2i, 2i+1) owns the warp's row i, 32 columns each.
template <int D>
__global__ void __launch_bounds__(kThreads) hkv_row_stats_kernel(const HkvScoreParams p) {
  using S = ScoreSmem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem + S::kQ);
  bf16* k_s = reinterpret_cast<bf16*>(smem + S::kK);
  float* s_s = reinterpret_cast<float*>(smem + S::kS);
  const int seg = blockIdx.y, row0 = blockIdx.x * kTile;
  const Segment g = segment_of(p, seg);
  if (row0 >= g.num_rows) return;
  load_q_tile<D>(p, g, row0, q_s);
  const float c2 = p.scale * 1.4426950408889634f;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r = warp * 16 + lane / 2, col0 = (lane % 2) * 32;
  float m = -INFINITY, l = 0.f;
  for (int cand0 = 0; cand0 < g.num_cands; cand0 += kTile) {
    __syncthreads();  // q_s written; previous k_s / s_s consumed
    load_k_tile<D>(p, g, seg, cand0, k_s);
    __syncthreads();
    logit_tile<D>(q_s, k_s, s_s);
    __syncwarp();
    const int n = min(32, g.num_cands - cand0 - col0);
    float tile_max = -INFINITY;
    for (int c = 0; c < n; ++c) tile_max = fmaxf(tile_max, s_s[r * kSLd + col0 + c] * c2);
    if (tile_max == -INFINITY) continue;
    const float m_new = fmaxf(m, tile_max);
    float sum = 0.f;
    for (int c = 0; c < n; ++c) sum += exp2f(s_s[r * kSLd + col0 + c] * c2 - m_new);
    l = l * exp2f(m - m_new) + sum;
    m = m_new;
  }
  const float m_o = __shfl_xor_sync(0xffffffffu, m, 1);
  const float l_o = __shfl_xor_sync(0xffffffffu, l, 1);
  const float m_max = fmaxf(m, m_o);
  if (lane % 2 == 0 && row0 + r < g.num_rows) {
    const float total = m_max == -INFINITY
                            ? 0.f
                            : (m == -INFINITY ? 0.f : l * exp2f(m - m_max)) +
                                  (m_o == -INFINITY ? 0.f : l_o * exp2f(m_o - m_max));
    const int64_t idx = static_cast<int64_t>(seg) * p.max_obs * g.group + row0 + r;
    p.row_stats[idx * 2] = m_max;
    p.row_stats[idx * 2 + 1] = total;
  }
}

// Pass 2: per (candidate tile, segment), a[j] = mean over rows of 2^(x - m_row) / l_row. Thread t
// sums column t % 64 over half (t / 64) of each row tile.
template <int D>
__global__ void __launch_bounds__(kThreads) hkv_column_scores_kernel(const HkvScoreParams p) {
  using S = ScoreSmem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* q_s = reinterpret_cast<bf16*>(smem + S::kQ);
  bf16* k_s = reinterpret_cast<bf16*>(smem + S::kK);
  float* s_s = reinterpret_cast<float*>(smem + S::kS);
  float* stats_s = reinterpret_cast<float*>(smem + S::kStats);  // [kTile] max, [kTile] 1/sum
  const int seg = blockIdx.y, cand0 = blockIdx.x * kTile;
  const Segment g = segment_of(p, seg);
  if (cand0 >= g.num_cands) return;
  load_k_tile<D>(p, g, seg, cand0, k_s);
  const float c2 = p.scale * 1.4426950408889634f;
  const int col = threadIdx.x % kTile, half = threadIdx.x / kTile;
  float acc = 0.f;
  for (int row0 = 0; row0 < g.num_rows; row0 += kTile) {
    __syncthreads();  // previous q_s / s_s / stats_s consumed
    load_q_tile<D>(p, g, row0, q_s);
    for (int r = threadIdx.x; r < kTile; r += kThreads) {
      const int row = row0 + r;
      float m = INFINITY, inv_l = 0.f;  // rows past the end contribute 2^-inf = 0
      if (row < g.num_rows) {
        const int64_t idx = static_cast<int64_t>(seg) * p.max_obs * g.group + row;
        m = p.row_stats[idx * 2];
        const float l = p.row_stats[idx * 2 + 1];
        inv_l = l > 0.f ? 1.f / l : 0.f;
      }
      stats_s[r] = m;
      stats_s[kTile + r] = inv_l;
    }
    __syncthreads();
    logit_tile<D>(q_s, k_s, s_s);
    __syncthreads();
    for (int r = half * (kTile / 2); r < (half + 1) * (kTile / 2); ++r) {
      acc += exp2f(s_s[r * kSLd + col] * c2 - stats_s[r]) * stats_s[kTile + r];
    }
  }
  __syncthreads();
  stats_s[threadIdx.x] = acc;  // kThreads == 2 * kTile floats
  __syncthreads();
  if (half == 0 && cand0 + col < g.num_cands) {
    const float total = stats_s[col] + stats_s[kTile + col];
    p.scores[p.score_indptr[seg] + cand0 + col] = g.num_rows > 0 ? total / g.num_rows : 0.f;
  }
}

template <int D>
void launch_score_impl(const HkvScoreParams& p, cudaStream_t stream) {
  constexpr size_t smem = ScoreSmem<D>::kBytes;
  static bool raised = [] {
    CUDA_CHECK(cudaFuncSetAttribute(hkv_row_stats_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
    CUDA_CHECK(cudaFuncSetAttribute(hkv_column_scores_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
    return true;
  }();
  (void)raised;
  const int segs = p.num_seqs * p.num_kv_heads;
  const int group = p.num_q_heads / p.num_kv_heads;
  const dim3 row_grid(
      static_cast<unsigned>(ceil_div(static_cast<int64_t>(p.max_obs) * group, kTile)), segs);
  hkv_row_stats_kernel<D><<<row_grid, kThreads, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
  const dim3 col_grid(static_cast<unsigned>(ceil_div(p.max_candidates, kTile)), segs);
  hkv_column_scores_kernel<D><<<col_grid, kThreads, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

size_t hkv_score_workspace(const HkvScoreParams& p) {
  const int group = p.num_kv_heads > 0 ? p.num_q_heads / p.num_kv_heads : 0;
  return static_cast<size_t>(p.num_seqs) * p.num_kv_heads * p.max_obs * group * 2;
}

void launch_hkv_score(const HkvScoreParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.num_q_heads > 0 && p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0,
               kInvalidArgument, "hkv score: ", p.num_q_heads, " query heads is not a multiple of ",
               p.num_kv_heads, " kv heads");
  CUDA_REQUIRE(p.page_size > 0 && p.dense_block_size > 0 && p.max_obs >= 0 &&
                   p.max_candidates >= 0 && p.num_seqs >= 0,
               kInvalidArgument, "hkv score: bad sizes page_size=", p.page_size,
               " block_size=", p.dense_block_size, " max_obs=", p.max_obs,
               " max_candidates=", p.max_candidates);
  if (p.num_seqs == 0 || p.max_obs == 0 || p.max_candidates == 0) return;
  CUDA_REQUIRE(p.q_obs && p.obs_indptr && p.page_indptr && p.cond_begin && p.cond_end &&
                   p.dense_block_indptr && p.dense_cand_start && p.dense_cand_len &&
                   p.score_indptr && p.scores && p.row_stats,
               kInvalidArgument, "hkv score: a required pointer is null");
  switch (p.head_dim) {
    case 32:
      launch_score_impl<32>(p, stream);
      break;
    case 64:
      launch_score_impl<64>(p, stream);
      break;
    case 128:
      launch_score_impl<128>(p, stream);
      break;
    case 256:
      launch_score_impl<256>(p, stream);
      break;
    default:
      CUDA_REQUIRE(false, kUnsupported, "hkv score: head_dim ", p.head_dim,
                   " is not supported (32, 64, 128, 256)");
  }
}

}  // namespace hardkv::cuda
