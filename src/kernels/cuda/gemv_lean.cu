// Lean batch-1 GEMV (gemv_lean.h): 8 warps per block, one block per multiprocessor; warp w owns
// kRpw consecutive weight rows of length kChunks * 256 and each lane holds kChunks 16-byte chunks
// of every row in registers (the block's whole slice), loaded before pdl_wait(). A 16-warp block
// pair of the general kernel (gemv.cu) fills the register file, so the next kernel could only
// become resident when it ended; this one uses about half of it. The plain and add_rms_norm forms
// also come warp-staged (gemv_lean_warp_kernel: x read by every warp, no block barrier).
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/gemv_lean.h"
#include "kernels/cuda/pdl.cuh"

namespace hardkv::cuda {
namespace {

constexpr int kLeanWarps = 8;
constexpr int kLeanThreads = kLeanWarps * 32;
constexpr int kChunkElems = 256;    // one 16-byte chunk per lane of a warp: 32 x 8 bf16
constexpr int kMaxLaneChunks = 24;  // weight registers per lane: 24 x 4 (the register budget)

__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }

// x staged in shared memory from the previous op's output (rounded as the unfused ops round):
// kNone copies x; kSiluMul xs = bf16(silu(gate) * up); kAddRmsNorm sum_s = bf16(x + residual),
// xs = bf16(sum * rsqrt(mean(sum^2) + eps) * norm_w), nw holding this thread's norm_w chunks.
template <int kK, LeanPrologue kPro, int kPer>
__device__ __forceinline__ void lean_stage_x(const LeanGemvArgs& a, const float (&nw)[kPer][8],
                                             bf16* xs, bf16* sum_s) {
  float s[kPer][8];
  float ss = 0.f;
#pragma unroll
  for (int p = 0; p < kPer; ++p) {
    const int i = (threadIdx.x + p * kLeanThreads) * 8;
    if (i >= kK) break;
    if constexpr (kPro == LeanPrologue::kNone) {
      *reinterpret_cast<uint4*>(xs + i) = *reinterpret_cast<const uint4*>(a.x + i);
    } else if constexpr (kPro == LeanPrologue::kSiluMul) {
      float g[8], u[8];
      load8(a.x + i, g);
      load8(a.x + kK + i, u);
#pragma unroll
      for (int j = 0; j < 8; ++j) s[p][j] = silu(g[j]) * u[j];
      store8(xs + i, s[p]);
    } else {
      float xv[8];
      load8(a.x + i, xv);
      load8(a.residual + i, s[p]);
#pragma unroll
      for (int j = 0; j < 8; ++j) s[p][j] += xv[j];
      store8(sum_s + i, s[p]);
      load8(sum_s + i, s[p]);  // the bf16-rounded sum, as a bf16 residual stream holds it
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += s[p][j] * s[p][j];
    }
  }
  if constexpr (kPro == LeanPrologue::kAddRmsNorm) {
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(kK) + a.eps);
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int i = (threadIdx.x + p * kLeanThreads) * 8;
      if (i >= kK) break;
#pragma unroll
      for (int j = 0; j < 8; ++j) s[p][j] = s[p][j] * inv * nw[p][j];
      store8(xs + i, s[p]);
    }
  }
}

// A warp's kRpw weight rows (lane: 16-byte chunks lane, lane + 32, ...) and lane 0's biases,
// read with no dependence on earlier kernels. Rows past m load row m - 1 (in bounds; their
// results are dropped).
template <int kRpw, int kChunks>
__device__ __forceinline__ void load_lean_weights(const LeanGemvArgs& a, int64_t row0, int lane,
                                                  uint4 (&wv)[kRpw][kChunks],
                                                  float (&bias)[kRpw]) {
  constexpr int kK = kChunks * kChunkElems;
#pragma unroll
  for (int j = 0; j < kRpw; ++j) {
    const bf16* wr = a.w + min(row0 + j, a.m - 1) * kK + lane * 8;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      wv[j][c] = __ldg(reinterpret_cast<const uint4*>(wr + c * kChunkElems));
    }
  }
#pragma unroll
  for (int j = 0; j < kRpw; ++j) {
    bias[j] =
        a.bias != nullptr && lane == 0 ? __bfloat162float(a.bias[min(row0 + j, a.m - 1)]) : 0.f;
  }
}

// acc[j] += weight row j's chunk c . xf (two partial sums per row). An empty asm "redefining"
// the chunk keeps its bf16 -> fp32 unpacking here: hoisted above the wait, it would double the
// registers the weights take.
template <int kRpw, int kChunks>
__device__ __forceinline__ void accumulate_chunk(uint4 (&wv)[kRpw][kChunks], int c,
                                                 const float (&xf)[8], float (&acc)[kRpw][2]) {
#pragma unroll
  for (int j = 0; j < kRpw; ++j) {
    uint4& wc = wv[j][c];
    asm volatile("" : "+r"(wc.x), "+r"(wc.y), "+r"(wc.z), "+r"(wc.w));
    float wf[8];
    unpack8(wc, wf);
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[j][i % 2] = fmaf(wf[i], xf[i], acc[j][i % 2]);
  }
}

// Lane 0 stores the warp's kRpw outputs (rows past m dropped).
template <int kRpw>
__device__ __forceinline__ void store_lean_rows(const LeanGemvArgs& a, int64_t row0, int lane,
                                                const float (&acc)[kRpw][2],
                                                const float (&bias)[kRpw]) {
#pragma unroll
  for (int j = 0; j < kRpw; ++j) {
    const float v = warp_sum(acc[j][0] + acc[j][1]);
    if (lane == 0 && row0 + j < a.m) a.out[row0 + j] = __float2bfloat16(v + bias[j]);
  }
}

// Register cap: 128 (two blocks' worth) up to 16 chunks per lane, else 160; the compiler would
// take ~1.5x the weights' registers (fp32 copies scheduled early), crowding out the next kernel.
template <int kRpw, int kChunks>
inline constexpr int kLeanMaxRegs = (kRpw * kChunks) <= 16 ? 128 : 160;

template <int kRpw, int kChunks, LeanPrologue kPro>
__global__ void __launch_bounds__(kLeanThreads) __maxnreg__((kLeanMaxRegs<kRpw, kChunks>))
    gemv_lean_kernel(const LeanGemvArgs a, bool early_trigger, bool early_count) {
  constexpr int kK = kChunks * kChunkElems;
  constexpr int kRows = kLeanWarps * kRpw;
  constexpr int kPer = (kK / 8 + kLeanThreads - 1) / kLeanThreads;  // x chunks per thread
  constexpr bool kNorm = kPro == LeanPrologue::kAddRmsNorm;
  __shared__ __align__(16) bf16 xs[kK];
  __shared__ __align__(16) bf16 sum_s[kNorm ? kK : 8];
  __shared__ bool last;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows + warp * kRpw;
  if (early_trigger) pdl_launch_dependents();

  // Constant inputs (weights, bias, norm weights) before waiting for the previous kernel.
  uint4 wv[kRpw][kChunks];
  float bias[kRpw];
  load_lean_weights<kRpw, kChunks>(a, row0, lane, wv, bias);
  float nw[kPer][8];
  if constexpr (kNorm) {
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int i = (threadIdx.x + p * kLeanThreads) * 8;
      if (i < kK) load8(a.norm_w + i, nw[p]);
    }
  }
  pdl_wait();
  if (!early_trigger) pdl_launch_dependents();

  lean_stage_x<kK, kPro, kPer>(a, nw, xs, sum_s);
  __syncthreads();
  // kAddRmsNorm: this block has read x and residual; count it now (thread 0), so the atomic's
  // round trip overlaps the dot products instead of following the outputs (early_count; else
  // after them).
  unsigned ticket = 0;
  if (kNorm && early_count && threadIdx.x == 0) {
    __threadfence();
    ticket = atomicAdd(a.counter, 1u);
  }

  // Two accumulators per row (even / odd elements): shorter dependent FMA chains at kRpw == 1.
  float acc[kRpw][2];
#pragma unroll
  for (int j = 0; j < kRpw; ++j) acc[j][0] = acc[j][1] = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    float xf[8];
    load8(xs + c * kChunkElems + lane * 8, xf);
    accumulate_chunk<kRpw, kChunks>(wv, c, xf, acc);
  }
  store_lean_rows<kRpw>(a, row0, lane, acc, bias);

  if constexpr (kNorm) {
    // The last block to have read x and residual writes them back after its outputs: every block
    // has read them once the counter reaches gridDim.x (as finish_add_rms_norm in gemv.cu).
    __syncthreads();
    if (threadIdx.x == 0) {
      if (!early_count) {
        __threadfence();
        ticket = atomicAdd(a.counter, 1u);
      }
      last = ticket == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
#pragma unroll
    for (int p = 0; p < kPer; ++p) {
      const int i = (threadIdx.x + p * kLeanThreads) * 8;
      if (i >= kK) break;
      *reinterpret_cast<uint4*>(a.residual + i) = *reinterpret_cast<const uint4*>(sum_s + i);
      *reinterpret_cast<uint4*>(a.x_out + i) = *reinterpret_cast<const uint4*>(xs + i);
    }
    if (threadIdx.x == 0) *a.counter = 0;
  }
}

// pack8: 8 floats -> 8 bf16 (round to nearest), as store8 stores them.
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  uint4 u;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return u;
}

// The warp-staged form (kNone / kAddRmsNorm): lane l of every warp needs x only at the elements
// c * 256 + l * 8 + [0, 8) of its weight chunks, which across the warp is the whole row, so each
// warp reads its x (and residual) chunks from L2 into registers itself and, for the norm, sums
// the squares with a warp reduction: no shared memory and no block barrier between pdl_wait() and
// the dot products. kAddRmsNorm: warps 1-7 arrive at a named barrier once they have read x and
// residual; warp 0 waits there and counts the block; the last block's warp 0 writes residual and
// x back from its registers after its outputs.
// The norm form holds x, residual and norm-weight chunks beside the weights after the wait: 8
// more registers than kLeanMaxRegs (128 spilled at 4 rows x 4 chunks).
template <int kRpw, int kChunks, LeanPrologue kPro>
inline constexpr int kLeanWarpMaxRegs =
    kLeanMaxRegs<kRpw, kChunks> + (kPro == LeanPrologue::kAddRmsNorm ? 8 : 0);

template <int kRpw, int kChunks, LeanPrologue kPro>
__global__ void __launch_bounds__(kLeanThreads) __maxnreg__((kLeanWarpMaxRegs<kRpw, kChunks, kPro>))
    gemv_lean_warp_kernel(const LeanGemvArgs a, bool early_trigger) {
  static_assert(kPro != LeanPrologue::kSiluMul, "SiLU * up stays on the shared-memory form");
  constexpr bool kNorm = kPro == LeanPrologue::kAddRmsNorm;
  constexpr int kK = kChunks * kChunkElems;
  constexpr int kRows = kLeanWarps * kRpw;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows + warp * kRpw;
  if (early_trigger) pdl_launch_dependents();

  uint4 wv[kRpw][kChunks];
  float bias[kRpw];
  load_lean_weights<kRpw, kChunks>(a, row0, lane, wv, bias);
  pdl_wait();
  if (!early_trigger) pdl_launch_dependents();

  // xv: this lane's x chunks (kAddRmsNorm: the normed row), sv: the rounded sums (kAddRmsNorm).
  uint4 xv[kChunks], sv[kNorm ? kChunks : 1];
  __shared__ uint4 sum_s[kNorm ? kChunks * 32 : 1];  // warp 0's rounded sums, lane-major
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    xv[c] = *reinterpret_cast<const uint4*>(a.x + c * kChunkElems + lane * 8);
  }
  if constexpr (kNorm) {
    uint4 nv[kChunks];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      sv[c] = *reinterpret_cast<const uint4*>(a.residual + c * kChunkElems + lane * 8);
      nv[c] = __ldg(reinterpret_cast<const uint4*>(a.norm_w + c * kChunkElems + lane * 8));
    }
    float ss = 0.f;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      float xf[8], rf[8];
      unpack8(xv[c], xf);
      unpack8(sv[c], rf);
#pragma unroll
      for (int i = 0; i < 8; ++i) rf[i] += xf[i];
      sv[c] = pack8(rf);  // the bf16-rounded sum, as a bf16 residual stream holds it
      unpack8(sv[c], rf);
#pragma unroll
      for (int i = 0; i < 8; ++i) ss += rf[i] * rf[i];
    }
    // Warp 0 keeps its sums for the write-back in shared memory (each lane its own chunks: no
    // barrier), not in registers through the dot products.
    if (warp == 0) {
#pragma unroll
      for (int c = 0; c < kChunks; ++c) sum_s[c * 32 + lane] = sv[c];
    }
    const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(kK) + a.eps);
    // x and residual are read (their values are in the sum): count this warp at the barrier.
    if (warp == 0) {
      asm volatile("bar.sync 1, %0;" ::"n"(kLeanThreads) : "memory");
    } else {
      asm volatile("bar.arrive 1, %0;" ::"n"(kLeanThreads) : "memory");
    }
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      float rf[8], nf[8];
      unpack8(sv[c], rf);
      unpack8(nv[c], nf);
#pragma unroll
      for (int i = 0; i < 8; ++i) rf[i] = rf[i] * inv * nf[i];
      xv[c] = pack8(rf);
    }
  }
  unsigned ticket = 0;
  if (kNorm && warp == 0 && lane == 0) {
    __threadfence();
    ticket = atomicAdd(a.counter, 1u);
  }

  float acc[kRpw][2];
#pragma unroll
  for (int j = 0; j < kRpw; ++j) acc[j][0] = acc[j][1] = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    float xf[8];
    uint4& xc = xv[c];  // kept packed until here (as the weights below)
    asm volatile("" : "+r"(xc.x), "+r"(xc.y), "+r"(xc.z), "+r"(xc.w));
    unpack8(xc, xf);
    accumulate_chunk<kRpw, kChunks>(wv, c, xf, acc);
  }
  store_lean_rows<kRpw>(a, row0, lane, acc, bias);

  if constexpr (kNorm) {
    if (warp != 0) return;
    const bool last = __shfl_sync(0xffffffffu, ticket, 0) == gridDim.x - 1;
    if (!last) return;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int i = c * kChunkElems + lane * 8;
      *reinterpret_cast<uint4*>(a.residual + i) = sum_s[c * 32 + lane];
      *reinterpret_cast<uint4*>(a.x_out + i) = xv[c];
    }
    if (lane == 0) *a.counter = 0;
  }
}

bool lean_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_GEMV_LEAN");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

// Rows per warp for (m, k): the fewest of {1, 2, 4, 6} that fit one block per multiprocessor
// within the register budget; 0 when none does or k is not 1024, 2048 or 3072.
int lean_rows_per_warp(int64_t m, int64_t k, int num_sms) {
  if (k != 1024 && k != 2048 && k != 3072) return 0;
  const int chunks = static_cast<int>(k / kChunkElems);
  for (int rpw : {1, 2, 4, 6}) {
    if (chunks * rpw > kMaxLaneChunks) break;
    if (ceil_div(m, static_cast<int64_t>(kLeanWarps) * rpw) <= num_sms) return rpw;
  }
  return 0;
}

// Per-prologue bit masks: 1 kNone, 2 kAddRmsNorm, 4 kSiluMul.
unsigned prologue_bit(const LeanGemvArgs& a) { return 1u << static_cast<int>(a.prologue); }
unsigned env_mask(const char* name, unsigned dflt) {
  const char* v = std::getenv(name);
  return v == nullptr ? dflt : static_cast<unsigned>(std::strtoul(v, nullptr, 0));
}
// HARDKV_GEMV_LEAN_EARLY_MASK: the forms that trigger their dependents before their wait, so
// that the next kernel's blocks can start loading their weights earlier (default 5: the plain
// form, i.e. o_proj while attention runs, so gate_up's blocks load during it, and SiLU, i.e. down,
// so the next qkv's blocks load during it). H100 Qwen3-0.6B batch 1 graph device time, ctx 512 /
// 4096: 0 -> 0.862 / 1.197 ms, 1 -> 0.836 / 1.173, 5 -> 0.827-0.830 / 1.163-1.170; with
// add_rms_norm too (3, 7) ctx 4096 was slower (1.19-1.21). HARDKV_PDL_EARLY=1: every form.
unsigned lean_early_trigger_mask() {
  static const unsigned m = env_mask("HARDKV_GEMV_LEAN_EARLY_MASK", 5u);
  return m;
}
// HARDKV_GEMV_LEAN_WARP_X: the forms that run warp-staged where they fit (default 3: plain and
// add_rms_norm). 0: none. H100, Qwen3-0.6B batch 1 graph device time, with the o_proj early
// trigger: 3 -> 0.835 / 1.165 ms (ctx 512 / 4096), 2 -> 0.840 / 1.182, 0 -> 0.834 / 1.187.
unsigned lean_warp_x_mask() {
  static const unsigned m = env_mask("HARDKV_GEMV_LEAN_WARP_X", 3u);
  return m;
}

// The warp-staged form covers (kRpw, kChunks, prologue) when the weights, x and (for the norm)
// residual and norm weights fit the register cap: at most 28 16-byte chunks per lane.
template <int kRpw, int kChunks>
constexpr bool warp_form_fits(LeanPrologue pro) {
  if (pro == LeanPrologue::kNone) return kChunks * (kRpw + 1) <= 28;
  if (pro == LeanPrologue::kAddRmsNorm) return kChunks * (kRpw + 3) <= 28;
  return false;
}

template <int kRpw, int kChunks>
void launch_shape(const LeanGemvArgs& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(ceil_div(a.m, kLeanWarps * kRpw)));
  const bool early = gemv_pdl_early_trigger() || (lean_early_trigger_mask() & prologue_bit(a)) != 0;
  static const bool early_count = [] {
    const char* v = std::getenv("HARDKV_GEMV_LEAN_EARLY_COUNT");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  if (a.warp_x > 0 || (a.warp_x < 0 && (lean_warp_x_mask() & prologue_bit(a)) != 0)) {
    if constexpr (warp_form_fits<kRpw, kChunks>(LeanPrologue::kNone)) {
      if (a.prologue == LeanPrologue::kNone) {
        launch_pdl(gemv_lean_warp_kernel<kRpw, kChunks, LeanPrologue::kNone>, grid,
                   dim3(kLeanThreads), 0, stream, a, early);
        return;
      }
    }
    if constexpr (warp_form_fits<kRpw, kChunks>(LeanPrologue::kAddRmsNorm)) {
      if (a.prologue == LeanPrologue::kAddRmsNorm) {
        launch_pdl(gemv_lean_warp_kernel<kRpw, kChunks, LeanPrologue::kAddRmsNorm>, grid,
                   dim3(kLeanThreads), 0, stream, a, early);
        return;
      }
    }
  }
  switch (a.prologue) {
    case LeanPrologue::kNone:
      launch_pdl(gemv_lean_kernel<kRpw, kChunks, LeanPrologue::kNone>, grid, dim3(kLeanThreads), 0,
                 stream, a, early, early_count);
      break;
    case LeanPrologue::kAddRmsNorm:
      launch_pdl(gemv_lean_kernel<kRpw, kChunks, LeanPrologue::kAddRmsNorm>, grid,
                 dim3(kLeanThreads), 0, stream, a, early, early_count);
      break;
    case LeanPrologue::kSiluMul:
      launch_pdl(gemv_lean_kernel<kRpw, kChunks, LeanPrologue::kSiluMul>, grid, dim3(kLeanThreads),
                 0, stream, a, early, early_count);
      break;
  }
}

}  // namespace

bool gemv_pdl_early_trigger() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_PDL_EARLY");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

bool gemv_lean_supported(int64_t n, int64_t m, int64_t k, int num_sms) {
  return lean_enabled() && n == 1 && m > 0 && lean_rows_per_warp(m, k, num_sms) > 0;
}

void launch_gemv_lean(const LeanGemvArgs& a, int num_sms, cudaStream_t stream) {
  const int rpw = lean_rows_per_warp(a.m, a.k, num_sms);
  CUDA_REQUIRE(rpw > 0, kInvalidArgument, "gemv_lean: m=", a.m, " k=", a.k,
               " is not supported (see gemv_lean_supported)");
  CUDA_REQUIRE(
      a.prologue != LeanPrologue::kAddRmsNorm || (a.residual && a.norm_w && a.x_out && a.counter),
      kInvalidArgument, "gemv_lean: the add_rms_norm prologue needs its inputs");
  // The dispatch list: (rows per warp, chunks per lane) with chunks * rows <= kMaxLaneChunks.
  const int chunks = static_cast<int>(a.k / kChunkElems);
  if (chunks == 4 && rpw == 1) {
    launch_shape<1, 4>(a, stream);
  } else if (chunks == 4 && rpw == 2) {
    launch_shape<2, 4>(a, stream);
  } else if (chunks == 4 && rpw == 4) {
    launch_shape<4, 4>(a, stream);
  } else if (chunks == 4 && rpw == 6) {
    launch_shape<6, 4>(a, stream);
  } else if (chunks == 8 && rpw == 1) {
    launch_shape<1, 8>(a, stream);
  } else if (chunks == 8 && rpw == 2) {
    launch_shape<2, 8>(a, stream);
  } else if (chunks == 12 && rpw == 1) {
    launch_shape<1, 12>(a, stream);
  } else {
    CUDA_REQUIRE(false, kInternal, "gemv_lean: no kernel for ", rpw, " rows x ", chunks, " chunks");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
