// The skinny GEMM kernel (gemm_skinny.h), included by the gemm_skinny_wg*.cu files.
//
// Block: kWG consumer warpgroups (64 weight rows each: bm = 64 * kWG) + one producer warp.
// Stages hold one K step of 64 (one 128-byte swizzle atom per row): the weight tile [bm x 64] and
// the x tile [kN x 64] (kN = n rounded up to 8; the rows past n are the TMA's zero fill), both
// loaded by TMA with the 128-byte swizzle and completing on the stage's "full" mbarrier. The
// producer issues the weight tiles of the first stages before pdl_wait() (no earlier kernel
// writes the weights) and the x tiles after it, then refills each stage once its consumers
// released it ("empty" mbarrier, one arrival per consumer warp). Consumers run
// wgmma.mma_async m64nNk16 with both operands from shared memory (weights as A, x as B: the
// accumulators hold out^T), keeping one stage's MMAs in flight. No block-wide barrier in the
// main loop.
// Epilogue: the fp32 tile goes to shared memory as [x row][weight row] over the stages; with K
// splits the cluster's blocks each sum a slice of the rows over all splits' tiles (distributed
// shared memory), add the bias and store bf16 in 16-byte vectors.
#pragma once

#include <cooperative_groups.h>
#include <cuda.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/gemm_skinny.h"
#include "kernels/cuda/gemm_skinny_wgmma.cuh"
#include "kernels/cuda/pdl.cuh"

namespace hardkv::cuda::skinny {

namespace cg = cooperative_groups;

inline constexpr int kBK = 64;             // k per stage
inline constexpr int kRowBytes = kBK * 2;  // one 128-byte swizzle atom
inline constexpr int kMaxStages = 16;
inline constexpr int kAlignSlack = 1024;  // the dynamic base is rounded up to 1024 bytes

struct Params {
  bf16* out;
  const bf16* bias;
  int n, m, k;
  int splits;  // K ranges = blocks per cluster
  int stages;  // ring stages (<= kMaxStages)
  int rotate;  // 1: block b of a split starts its K loop at step b % steps (spreads the x reads)
};

__host__ __device__ constexpr int threads_for(int wg) { return wg * 128 + 32; }
__host__ __device__ constexpr int64_t stage_bytes(int bm, int nx) {
  return static_cast<int64_t>(bm + nx) * kRowBytes;
}
// The epilogue's fp32 tile [nx][bm + 4] (a row stride of 4 mod 32 words: conflict-free stores).
__host__ __device__ constexpr int64_t tile_bytes(int bm, int nx) {
  return static_cast<int64_t>(nx) * (bm + 4) * 4;
}
__host__ __device__ constexpr int64_t smem_bytes(int bm, int nx, int stages) {
  const int64_t ring = stages * stage_bytes(bm, nx);
  const int64_t tile = tile_bytes(bm, nx);
  return kAlignSlack + (ring > tile ? ring : tile);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count)
               : "memory");
}

__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)),
               "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}

__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred P1;\n"
      "LAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\n"
      "bra LAB_WAIT;\n"
      "DONE:\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}

// 2-D TMA tile load (coordinates: c0 along k, c1 along rows) completing on bar.
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, uint64_t* bar,
                                            int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
}

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Shared-memory matrix descriptor of a K-major tile written by TMA with the 128-byte swizzle:
// rows of 128 bytes, 8-row groups 1024 bytes apart (tile base 1024-byte aligned). Adding 2 to it
// advances 16 elements (32 bytes) along k inside the swizzle atom.
__device__ __forceinline__ uint64_t sw128_desc(const void* tile) {
  const uint64_t a = smem_u32(tile);
  return ((a & 0x3FFFF) >> 4) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

template <int kWG, int kN>
__global__ void __launch_bounds__(threads_for(kWG), 1)
    skinny_wgmma_kernel(const __grid_constant__ CUtensorMap w_map,
                        const __grid_constant__ CUtensorMap x_map, const Params p) {
  constexpr int kBM = 64 * kWG;
  constexpr int kThreads = threads_for(kWG);
  constexpr uint32_t kStageBytes = static_cast<uint32_t>(stage_bytes(kBM, kN));
  extern __shared__ unsigned char smem_dyn[];
  __shared__ __align__(8) uint64_t full[kMaxStages];
  __shared__ __align__(8) uint64_t empty[kMaxStages];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_dyn) + (kAlignSlack - 1)) & ~uintptr_t{kAlignSlack - 1});

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  cg::cluster_group cluster = cg::this_cluster();
  const int split = p.splits > 1 ? static_cast<int>(cluster.block_rank()) : 0;
  const int mb = static_cast<int>(blockIdx.x) / p.splits;
  const int m0 = mb * kBM;
  const int total = p.k / kBK;
  const int s0 = split * total / p.splits;
  const int steps = (split + 1) * total / p.splits - s0;
  const int rot = p.rotate ? mb % steps : 0;
  const int S = p.stages;

  if (tid == 0) {
    for (int s = 0; s < S; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 4 * kWG);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp == 4 * kWG) {
    // Producer warp (lane 0 issues).
    if (lane == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&w_map))
                   : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&x_map))
                   : "memory");
    }
    auto kcol = [&](int i) {  // K column of local stage i
      int j = i + rot;
      if (j >= steps) j -= steps;
      return (s0 + j) * kBK;
    };
    const int pre = min(S, steps);
    if (lane == 0) {
      for (int i = 0; i < pre; ++i) {
        mbar_arrive_expect_tx(&full[i], kStageBytes);
        tma_load_2d(smem + i * kStageBytes, &w_map, &full[i], kcol(i), m0);
      }
    }
    pdl_wait();
    pdl_launch_dependents();
    if (lane == 0) {
      for (int i = 0; i < pre; ++i) {
        tma_load_2d(smem + i * kStageBytes + kBM * kRowBytes, &x_map, &full[i], kcol(i), 0);
      }
      int slot = pre % S, phase = pre / S;
      for (int i = pre; i < steps; ++i) {
        mbar_wait(&empty[slot], (phase - 1) & 1);  // its previous use was released
        mbar_arrive_expect_tx(&full[slot], kStageBytes);
        unsigned char* st = smem + slot * kStageBytes;
        tma_load_2d(st, &w_map, &full[slot], kcol(i), m0);
        tma_load_2d(st + kBM * kRowBytes, &x_map, &full[slot], kcol(i), 0);
        if (++slot == S) {
          slot = 0;
          ++phase;
        }
      }
    }
  } else {
    pdl_wait();
    pdl_launch_dependents();
  }

  // Consumers: warpgroup g owns weight rows [64 g, 64 g + 64) of the block.
  float d[kN / 2];
#pragma unroll
  for (int i = 0; i < kN / 2; ++i) d[i] = 0.f;
  const int g = warp / 4;
  if (warp < 4 * kWG) {
    int slot = 0, phase = 0, prev = -1;
    for (int i = 0; i < steps; ++i) {
      mbar_wait(&full[slot], phase & 1);
      unsigned char* st = smem + slot * kStageBytes;
      const uint64_t da = sw128_desc(st + g * 64 * kRowBytes);
      const uint64_t db = sw128_desc(st + kBM * kRowBytes);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) WgmmaBf16<kN>::mma(d, da + 2 * kk, db + 2 * kk);
      wgmma_commit();
      wgmma_wait<1>();  // the previous stage's MMAs are done: release it
      if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
      prev = slot;
      if (++slot == S) {
        slot = 0;
        ++phase;
      }
    }
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) asm volatile("" : "+f"(d[i])::"memory");
  }

  // Epilogue: every stage has been consumed (so every TMA write has landed).
  __syncthreads();
  constexpr int kRS = kBM + 4;
  float* red = reinterpret_cast<float*>(smem);
  if (warp < 4 * kWG) {
    const int wr = g * 64 + (warp % 4) * 16 + lane / 4;
    const int xc = 2 * (lane % 4);
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
      const int c = 8 * j + xc;
      red[c * kRS + wr] = d[4 * j];
      red[(c + 1) * kRS + wr] = d[4 * j + 1];
      red[c * kRS + wr + 8] = d[4 * j + 2];
      red[(c + 1) * kRS + wr + 8] = d[4 * j + 3];
    }
  }
  if (p.splits > 1) {
    cluster.sync();
  } else {
    __syncthreads();
  }
  // Rows [r0, r1) of out: the sum over the splits' tiles + bias, 8 columns per thread.
  constexpr int kTpr = kBM / 8;
  constexpr int kRpp = kThreads / kTpr;
  const int rows_per = (p.n + p.splits - 1) / p.splits;
  const int r0 = split * rows_per;
  const int r1 = min(p.n, r0 + rows_per);
  const int col = (tid % kTpr) * 8;
  if (tid < kRpp * kTpr) {
    float bv[8];
    if (p.bias != nullptr) {
      load8(p.bias + m0 + col, bv);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) bv[j] = 0.f;
    }
    for (int row = r0 + tid / kTpr; row < r1; row += kRpp) {
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = bv[j];
      for (int s = 0; s < p.splits; ++s) {
        const float* src = red + row * kRS + col;
        if (s != split) src = cluster.map_shared_rank(src, s);
        const float4 lo = *reinterpret_cast<const float4*>(src);
        const float4 hi = *reinterpret_cast<const float4*>(src + 4);
        v[0] += lo.x;
        v[1] += lo.y;
        v[2] += lo.z;
        v[3] += lo.w;
        v[4] += hi.x;
        v[5] += hi.y;
        v[6] += hi.z;
        v[7] += hi.w;
      }
      store8(p.out + static_cast<int64_t>(row) * p.m + m0 + col, v);
    }
  }
  if (p.splits > 1) cluster.sync();  // the other blocks may still read this block's tile
}

template <int kWG, int kN>
void launch_tile(const CUtensorMap& w_map, const CUtensorMap& x_map, const Params& p, unsigned grid,
                 size_t smem, cudaStream_t stream) {
  static const bool attr = [] {
    CUDA_CHECK(cudaFuncSetAttribute(skinny_wgmma_kernel<kWG, kN>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    227 * 1024 - 2 * kMaxStages * 8));
    return true;
  }();
  (void)attr;
  launch_pdl_cluster(skinny_wgmma_kernel<kWG, kN>, dim3(grid), dim3(threads_for(kWG)), smem, stream,
                     p.splits > 1 ? dim3(p.splits, 1, 1) : dim3(1, 0, 1), w_map, x_map, p);
}

// Launches the kernel for (kWG, nx) with nx in (kLo, kHi] (multiples of 8), one translation unit
// per range (gemm_skinny_wg*.cu).
template <int kWG, int kLo, int kHi>
void launch_range(int nx, const CUtensorMap& w_map, const CUtensorMap& x_map, const Params& p,
                  unsigned grid, size_t smem, cudaStream_t stream) {
  if constexpr (kHi > kLo) {
    if (nx == kHi) {
      launch_tile<kWG, kHi>(w_map, x_map, p, grid, smem, stream);
    } else {
      launch_range<kWG, kLo, kHi - 8>(nx, w_map, x_map, p, grid, smem, stream);
    }
  }
}

using LaunchFn = void (*)(int nx, const CUtensorMap& w_map, const CUtensorMap& x_map,
                          const Params& p, unsigned grid, size_t smem, cudaStream_t stream);
void launch_wg1_lo(int, const CUtensorMap&, const CUtensorMap&, const Params&, unsigned, size_t,
                   cudaStream_t);  // nx 8..128
void launch_wg1_hi(int, const CUtensorMap&, const CUtensorMap&, const Params&, unsigned, size_t,
                   cudaStream_t);  // nx 136..256
void launch_wg2_lo(int, const CUtensorMap&, const CUtensorMap&, const Params&, unsigned, size_t,
                   cudaStream_t);
void launch_wg2_hi(int, const CUtensorMap&, const CUtensorMap&, const Params&, unsigned, size_t,
                   cudaStream_t);

}  // namespace hardkv::cuda::skinny
