// Tensor-core tiered attention (mma.sync m16n8k16, bf16 operands, fp32 accumulate) for head_dim
// <= 128: a block owns one sequence, one kv-head, up to 16 (query token, head-in-group) rows and
// one split of the head's virtual token list (as tiered_attention_kernel.cuh). Each of its 4 warps
// takes every 4th 16-token tile of the split and runs its own pipeline: the tile's K and V rows
// are gathered by cp.async into a warp-private shared-memory ring (kStages deep, zero-filled for
// masked / past-the-end tokens), S = Q K^T and O += P V run on the tensor cores (the GQA rows
// share every K/V read), and the 4 warps' online-softmax states are merged at the end.
#pragma once

#include <cmath>

#include "kernels/cuda/mma_bf16.cuh"
#include "kernels/cuda/tiered_attention_kernel.cuh"

namespace hardkv::cuda {

inline constexpr int kMmaWarps = 4;
inline constexpr int kMmaTile = 16;  // tokens per warp step (the m16n8k16 K dimension of P V)
inline constexpr int kMmaRows = 16;  // rows per block (the M dimension)

template <int D, int S>
struct MmaTraits {
  static_assert(D % 16 == 0 && D <= 128, "tensor-core tiered attention: head_dim 16..128");
  static constexpr int kLd = D + 8;  // bf16 row stride in shared memory: 16-byte pad (no conflicts)
  static constexpr int kStageElems = 2 * kMmaTile * kLd;  // K tile then V tile
  static constexpr size_t kPipeBytes = sizeof(bf16) * kMmaWarps * S * kStageElems;
  static constexpr size_t kMergeBytes = sizeof(float) * kMmaWarps * kMmaRows * (D + 2);
  static constexpr size_t kBytes = kPipeBytes > kMergeBytes ? kPipeBytes : kMergeBytes;
};

// Fragment layouts (PTX m16n8k16): with g = lane / 4, t = lane % 4, A register i holds row
// g + 8 * (i % 2), columns 2t, 2t+1 (+8 for i >= 2); B register i holds column g, rows 2t, 2t+1
// (+8 for i = 1); C element e holds row g + 8 * (e / 2), column 2t + e % 2.
template <int D, int S>
__global__ void __launch_bounds__(kMmaWarps * 32, 2)
    tiered_attention_mma_kernel(const TieredAttentionParams p) {
  using T = MmaTraits<D, S>;
  constexpr int kLd = T::kLd, kChunks = D / 8, kKSteps = D / 16;
  constexpr int kCopies = kMmaTile * kChunks / 32;  // 16-byte chunks per lane per tile, K (= V)
  static_assert(kCopies * 32 == kMmaTile * kChunks);
  TieredBlock b;
  if (!tiered_block(p, kMmaRows, b)) return;
  const int seq = b.seq, kv_head = b.kv_head, row0 = b.row0, q_begin = b.q_begin;
  const int group = b.group, num_rows = b.num_rows, seg = b.seg, cond_len = b.cond_len;
  const int begin = b.begin, end = b.end;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;

  // Q fragments (rows g and g + 8 of the tile) straight from global memory; rows past the end
  // are zeros and see nothing (limit -1).
  uint32_t qa[kKSteps][4];
  int limit[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + g + 8 * h;
    const bool valid = row < num_rows;
    limit[h] = valid ? cond_len + b.dense_len - b.q_len + row / group + 1 : -1;
    const bf16* qr = p.q;
    if (valid) {
      const int64_t tok = q_begin + row / group;
      qr = p.q + (tok * p.num_q_heads + kv_head * group + row % group) * D;
    }
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      qa[kk][h] = valid ? *reinterpret_cast<const uint32_t*>(qr + kk * 16 + 2 * t) : 0u;
      qa[kk][2 + h] = valid ? *reinterpret_cast<const uint32_t*>(qr + kk * 16 + 8 + 2 * t) : 0u;
    }
  }
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float o[D / 8][4];
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;

  const int page_size = p.page_size, bs = p.dense_block_size;
  const int32_t* pages = p.page_indices + p.page_indptr[seg];
  const uint64_t* mask = p.mask_indptr != nullptr ? p.mask_words + p.mask_indptr[seg] : nullptr;
  const int32_t* table = p.dense_block_indices + p.dense_block_indptr[seq];
  const int dense_start = p.dense_start[seq];

  extern __shared__ __align__(16) unsigned char tiered_smem[];
  bf16* ring = reinterpret_cast<bf16*>(tiered_smem) + warp * S * T::kStageElems;

  const int num_tiles = end > begin ? (end - begin + kMmaTile - 1) / kMmaTile : 0;
  const int my_tiles = num_tiles > warp ? (num_tiles - warp + kMmaWarps - 1) / kMmaWarps : 0;

  // Lane i < 16 locates token i of the warp's n-th tile: its element offset (>= 0 in the page
  // pools, -1 - offset in the dense cache). Returns the tile's bits of tokens to read.
  int64_t off = 0;
  auto locate_tile = [&](int n) -> uint32_t {
    bool ok = false;
    off = 0;
    const int v = begin + (warp + n * kMmaWarps) * kMmaTile + lane;
    if (lane < kMmaTile && n < my_tiles && v < end) {
      if (v < cond_len) {
        ok = mask == nullptr || !((mask[v >> 6] >> (v & 63)) & 1u);
        off = (static_cast<int64_t>(pages[v / page_size]) * page_size + v % page_size) * D;
      } else {
        const int tk = dense_start + v - cond_len;
        const int64_t slot = static_cast<int64_t>(table[tk / bs]) * bs + tk % bs;
        off = -1 - (slot * p.num_kv_heads + kv_head) * D;
        ok = true;
      }
    }
    return __ballot_sync(0xffffffffu, ok) & 0xffffu;
  };
  // Copies the located tile into ring stage `stage` (tokens not in `bits` zero-filled), then
  // commits one cp.async group (also when there is nothing to copy, to keep the group count).
  auto issue = [&](int stage, uint32_t bits) {
    if (bits != 0) {
      bf16* ks = ring + stage * T::kStageElems;
      bf16* vs = ks + kMmaTile * kLd;
#pragma unroll
      for (int i = 0; i < kCopies; ++i) {
        const int idx = i * 32 + lane, tok = idx / kChunks, c = idx % kChunks;
        const int64_t o_tok = __shfl_sync(0xffffffffu, off, tok);
        const bool ok = (bits >> tok) & 1u;
        const bf16* k_src = p.q;  // any valid address when nothing is read
        const bf16* v_src = p.q;
        if (ok) {
          k_src = (o_tok >= 0 ? p.page_k + o_tok : p.dense_k + (-1 - o_tok)) + c * 8;
          v_src = (o_tok >= 0 ? p.page_v + o_tok : p.dense_v + (-1 - o_tok)) + c * 8;
        }
        cp_async16(ks + tok * kLd + c * 8, k_src, ok);
        cp_async16(vs + tok * kLd + c * 8, v_src, ok);
      }
    }
    cp_async_commit();
  };

  const float c2 = p.scale * 1.4426950408889634f;  // softmax in the log2 domain
  auto consume = [&](int stage, int v0, uint32_t bits) {
    const bf16* ks = ring + stage * T::kStageElems;
    const bf16* vs = ks + kMmaTile * kLd;
    float s[2][4];
#pragma unroll
    for (int j = 0; j < 2; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
    // ldmatrix.x4 over K [token][dim]: matrices (tokens 0-7 | 8-15) x (dims +0 | +8).
    const bf16* k_lane = ks + (((lane >> 4) & 1) * 8 + (lane & 7)) * kLd + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t kb[4];
      ldmatrix_x4(kb, k_lane + kk * 16);
      mma_bf16(s[0], qa[kk], kb[0], kb[1]);
      mma_bf16(s[1], qa[kk], kb[2], kb[3]);
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int tok = j * 8 + 2 * t + (e & 1);
        const bool ok = ((bits >> tok) & 1u) && v0 + tok < limit[e >> 1];
        s[j][e] = ok ? s[j][e] * c2 : -INFINITY;
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = fmaxf(fmaxf(s[0][2 * h], s[0][2 * h + 1]), fmaxf(s[1][2 * h], s[1][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      float alpha = 1.f;
      if (m_new == -INFINITY) {  // nothing visible to this row yet
        s[0][2 * h] = s[0][2 * h + 1] = s[1][2 * h] = s[1][2 * h + 1] = 0.f;
      } else {
        alpha = exp2f(m[h] - m_new);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          s[j][2 * h] = exp2f(s[j][2 * h] - m_new);
          s[j][2 * h + 1] = exp2f(s[j][2 * h + 1] - m_new);
        }
      }
      l[h] = l[h] * alpha + s[0][2 * h] + s[0][2 * h + 1] + s[1][2 * h] + s[1][2 * h + 1];
      m[h] = m_new;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        o[nd][2 * h] *= alpha;
        o[nd][2 * h + 1] *= alpha;
      }
    }
    // P (16 rows x 16 tokens) as the A operand: the two S tiles' C fragments, rounded to bf16.
    const uint32_t pa[4] = {pack_bf16(s[0][0], s[0][1]), pack_bf16(s[0][2], s[0][3]),
                            pack_bf16(s[1][0], s[1][1]), pack_bf16(s[1][2], s[1][3])};
    // ldmatrix.x4.trans over V [token][dim]: matrices (tokens 0-7 | 8-15) x (dims +0 | +8).
    const bf16* v_lane = vs + (((lane >> 3) & 1) * 8 + (lane & 7)) * kLd + ((lane >> 4) & 1) * 8;
#pragma unroll
    for (int n2 = 0; n2 < D / 16; ++n2) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, v_lane + n2 * 16);
      mma_bf16(o[2 * n2], pa, vb[0], vb[1]);
      mma_bf16(o[2 * n2 + 1], pa, vb[2], vb[3]);
    }
  };

  // Pipeline: tiles n .. n + S - 2 in flight, tile n + S - 1 located (its offsets in `off`).
  uint32_t fifo[S];  // fifo[k]: bits of tile n + k
#pragma unroll
  for (int k = 0; k < S - 1; ++k) {
    fifo[k] = locate_tile(k);
    issue(k, fifo[k]);
  }
  fifo[S - 1] = locate_tile(S - 1);
  for (int n = 0; n < my_tiles; ++n) {
    issue((n + S - 1) % S, fifo[S - 1]);  // the stage tile n - 1 used
    const uint32_t cur = fifo[0];
#pragma unroll
    for (int k = 0; k < S - 1; ++k) fifo[k] = fifo[k + 1];
    fifo[S - 1] = locate_tile(n + S);
    cp_async_wait<S - 1>();  // this lane's copies of tile n have landed
    __syncwarp();            // ... and every other lane's
    // A tile with nothing to read was not copied (its stage holds stale data): skip it.
    if (cur != 0) consume(n % S, begin + (warp + n * kMmaWarps) * kMmaTile, cur);
    __syncwarp();  // all lanes done reading the stage before it is refilled
  }
  cp_async_wait<0>();

  // Merge the warps' states through shared memory (the ring is free once every warp is done).
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }
  __syncthreads();
  float* sm_o = reinterpret_cast<float*>(tiered_smem);  // [kMmaWarps, kMmaRows, D]
  float* sm_ml = sm_o + kMmaWarps * kMmaRows * D;       // [kMmaWarps, kMmaRows, 2]
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = g + 8 * h;
    float* dst = sm_o + (warp * kMmaRows + r) * D + 2 * t;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) {
      dst[nd * 8] = o[nd][2 * h];
      dst[nd * 8 + 1] = o[nd][2 * h + 1];
    }
    if (t == 0) {
      sm_ml[(warp * kMmaRows + r) * 2] = m[h];
      sm_ml[(warp * kMmaRows + r) * 2 + 1] = l[h];
    }
  }
  __syncthreads();
  tiered_store_rows<D, kMmaRows>(p, b, sm_ml, sm_o, kMmaWarps, kMmaWarps * 32);
}

template <int D, int S>
void launch_tiered_attention_mma_stages(const TieredAttentionParams& p, cudaStream_t stream) {
  constexpr size_t smem = MmaTraits<D, S>::kBytes;
  auto* kernel = tiered_attention_mma_kernel<D, S>;
  if constexpr (smem > 48 * 1024) {
    static bool raised = [kernel] {
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(smem)));
      return true;
    }();
    (void)raised;
  }
  const int group = p.num_q_heads / p.num_kv_heads;
  const int64_t row_tiles = ceil_div(static_cast<int64_t>(p.max_query_len) * group, kMmaRows);
  const dim3 grid(static_cast<unsigned>(row_tiles * p.num_splits), p.num_seqs, p.num_kv_heads);
  kernel<<<grid, kMmaWarps * 32, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int D>
void launch_tiered_attention_mma(const TieredAttentionParams& p, cudaStream_t stream) {
  if constexpr (D <= 128) {
    switch (p.mma_stages) {
      case 2:
        launch_tiered_attention_mma_stages<D, 2>(p, stream);
        break;
      case 3:
        launch_tiered_attention_mma_stages<D, 3>(p, stream);
        break;
      default:
        CUDA_REQUIRE(false, kInternal, "tiered attention: mma_stages ", p.mma_stages,
                     " (2 or 3)");
    }
  } else {
    CUDA_REQUIRE(false, kInternal,
                 "tiered attention: the tensor-core kernel covers head_dim <= 128, not ", D);
  }
}

}  // namespace hardkv::cuda
