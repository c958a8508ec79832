// Skinny-GEMM kernel: a row group of kWpr warps owns one weight row (output column m); its lanes
// stride over k in 16-byte chunks, kUnroll chunks in flight per lane before any math (8 for long
// rows, k >= 4096). Narrow matrices (fewer than one 16-row block per SM) split each row over 4
// warps, so the grid covers every SM. x is staged once per block in shared memory when it fits
// 48 KB (else read through L1); a prologue may build it from the previous op's output (residual
// add + RMSNorm, or SiLU * up). Launched with PDL: the first batch of weights is loaded (longer
// rows are prefetched into L2) before waiting for the previous kernel. fp32 accumulation.
// H100, Qwen3-8B batch-1 decode: x in shared memory took 7.34 -> 6.88 ms per token, 16 rows per
// block (x staged once for twice the rows) 6.88 -> 6.74 ms. One bf16 row of x with k of 1024,
// 2048 or 3072 goes to the lean kernel instead (gemv_lean.h).
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/gemv_lean.h"
#include "kernels/cuda/pdl.cuh"

namespace hardkv::cuda {
namespace {

constexpr int kWarpsPerBlock = 16;
constexpr int kThreads = kWarpsPerBlock * 32;
// x in shared memory when it fits the default 48 KB of shared memory (static + dynamic: 1 KB is
// left for the reductions' static arrays).
constexpr int64_t kSmemXBytes = 47 * 1024;

bool env_not_zero(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::strcmp(v, "0") != 0;
}
// Kill switches for before/after measurements: HARDKV_GEMV_SMEM_X=0 keeps x in global memory,
// HARDKV_GEMV_SPLIT=0 keeps one warp per row, HARDKV_FUSED_GEMV=0 disables the prologues,
// HARDKV_GEMV_PREFETCH=1 adds an L2 prefetch of long rows before pdl_wait() (off: H100, Qwen3-8B
// batch 1 took 6.73 ms per token without it, 7.38 ms with it).
bool gemv_smem_x_enabled() {
  static const bool on = env_not_zero("HARDKV_GEMV_SMEM_X");
  return on;
}
bool gemv_split_enabled() {
  static const bool on = env_not_zero("HARDKV_GEMV_SPLIT");
  return on;
}
bool gemv_prefetch_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_GEMV_PREFETCH");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}
bool gemv_fused_enabled() {
  static const bool on = env_not_zero("HARDKV_FUSED_GEMV");
  return on;
}
// HARDKV_GEMV_ROWS2=0: one weight row per warp also for matrices of more than one wave of blocks.
bool gemv_rows2_enabled() {
  static const bool on = env_not_zero("HARDKV_GEMV_ROWS2");
  return on;
}

enum class Prologue { kNone, kAddRmsNorm, kSiluMul };

struct GemvArgs {
  const bf16* x;       // kNone/kAddRmsNorm: x [n, k]; kSiluMul: gate_up [n, 2k]
  bf16* x_out;         // kAddRmsNorm: x, overwritten with the normed rows by the last block
  bf16* residual;      // kAddRmsNorm: [n, k]
  const bf16* norm_w;  // kAddRmsNorm: [k]
  float eps = 0.f;     // kAddRmsNorm
  unsigned* counter;   // kAddRmsNorm: blocks done reading (0 on entry, reset to 0)
  const bf16* w;       // [m, k]
  const bf16* bias;    // [m] or null
  void* out;           // bf16 or F32 [n, m]
  int n = 0;
  int64_t m = 0, k = 0;
  bool prefetch = false;       // L2-prefetch the rest of long rows before pdl_wait()
  bool early_trigger = false;  // launch dependents before pdl_wait() (gemv_pdl_early_trigger)
};

template <typename OutT>
__device__ __forceinline__ OutT to_out(float v);
template <>
__device__ __forceinline__ float to_out<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ bf16 to_out<bf16>(float v) {
  return __float2bfloat16(v);
}

__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }

// xs[r, :] = silu(gate[r, :]) * up[r, :] (bf16), as silu_mul_vec_kernel computes it.
__device__ void stage_silu_mul(const GemvArgs& a, bf16* xs) {
  const int64_t total = a.n * a.k;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * 8; i < total; i += kThreads * 8) {
    const int64_t r = i / a.k, c = i % a.k;  // k % 8 == 0: a chunk never straddles rows
    float g[8], u[8], o[8];
    load8(a.x + r * 2 * a.k + c, g);
    load8(a.x + r * 2 * a.k + a.k + c, u);
#pragma unroll
    for (int j = 0; j < 8; ++j) o[j] = silu(g[j]) * u[j];
    store8(xs + i, o);
  }
}

// xs[r, :] = rms_norm(bf16(residual[r, :] + x[r, :])) * norm_w, as rms_norm_vec_kernel<true>
// computes it (finish_add_rms_norm writes residual and x back once every block has read them).
template <int kN>
__device__ void stage_add_rms_norm(const GemvArgs& a, bf16* xs) {
  const int64_t k = a.k, total = a.n * k;
  float ss[kN];
#pragma unroll
  for (int r = 0; r < kN; ++r) ss[r] = 0.f;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * 8; i < total; i += kThreads * 8) {
    const int64_t row = i / k;
    float xv[8], rv[8];
    load8(a.x + i, xv);
    load8(a.residual + i, rv);
#pragma unroll
    for (int j = 0; j < 8; ++j) rv[j] += xv[j];
    store8(xs + i, rv);
    load8(xs + i, rv);  // the bf16-rounded sum, as a bf16 residual stream holds it
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) s += rv[j] * rv[j];
#pragma unroll
    for (int r = 0; r < kN; ++r) {
      if (r == row) ss[r] += s;
    }
  }
  float inv[kN];
#pragma unroll
  for (int r = 0; r < kN; ++r) {
    inv[r] = rsqrtf(block_sum(ss[r]) / static_cast<float>(k) + a.eps);
  }
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * 8; i < total; i += kThreads * 8) {
    const int64_t row = i / k, c = i % k;
    float s[8], wv[8];
    load8(xs + i, s);
    load8(a.norm_w + c, wv);
    float sc = 0.f;
#pragma unroll
    for (int r = 0; r < kN; ++r) {
      if (r == row) sc = inv[r];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j] = s[j] * sc * wv[j];
    store8(xs + i, s);
  }
}

// After the block's dot products (off the path to the weights' math): the last block to get here
// writes residual += x and x = xs back. Every block has read x and residual once the counter
// reaches gridDim.x: only then may the last one overwrite them (nothing else in this grid writes
// them).
__device__ void finish_add_rms_norm(const GemvArgs& a, const bf16* xs) {
  const int64_t total = a.n * a.k;
  __syncthreads();
  __shared__ bool last;
  if (threadIdx.x == 0) {
    __threadfence();
    last = atomicAdd(a.counter, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * 8; i < total; i += kThreads * 8) {
    float xv[8], rv[8];
    load8(a.x + i, xv);
    load8(a.residual + i, rv);
#pragma unroll
    for (int j = 0; j < 8; ++j) rv[j] += xv[j];
    store8(a.residual + i, rv);
    *reinterpret_cast<Bf16x8*>(a.x_out + i) = *reinterpret_cast<const Bf16x8*>(xs + i);
  }
  if (threadIdx.x == 0) *a.counter = 0;
}

// kN: rows of x handled (n rounded up); rows >= n are skipped. kWpr: warps per weight row.
// kRpw: weight rows per warp (2: twice the bytes in flight per lane and half the blocks, so wide
// matrices fit one wave and the prologue / x staging run once per 32 rows; needs kWpr == 1).
template <int kN, int kUnroll, int kWpr, int kRpw, Prologue kPro, bool kSmemX, typename OutT>
// Two blocks per SM (<= 64 registers): one 16-warp block alone cannot keep enough loads in flight.
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(const GemvArgs a) {
  static_assert(kPro == Prologue::kNone || kSmemX, "a prologue builds x in shared memory");
  static_assert(kRpw == 1 || kWpr == 1, "several rows per warp only with one warp per row");
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  constexpr int kRows = kWarpsPerBlock / kWpr * kRpw;  // weight rows per block
  constexpr int kGroupLanes = 32 * kWpr;
  constexpr int64_t kStep = static_cast<int64_t>(kGroupLanes) * 8 * kUnroll;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t col0 = row0 + static_cast<int64_t>(warp / kWpr) * kRpw;  // this warp's rows
  const bool valid = col0 < a.m;
  const int64_t k = a.k;
  if (a.early_trigger) pdl_launch_dependents();
  const bf16* wr[kRpw];
#pragma unroll
  for (int j = 0; j < kRpw; ++j) wr[j] = a.w + (col0 + j < a.m ? col0 + j : 0) * k;
  const int64_t first = static_cast<int64_t>((warp % kWpr) * 32 + lane) * 8;

  // Weights do not depend on earlier kernels: load the first batch, and prefetch the rest of the
  // block's rows into L2, before waiting for the previous kernel.
  Bf16x8 wv[kRpw][kUnroll];
  auto load_batch = [&](int64_t k0) {
#pragma unroll
    for (int j = 0; j < kRpw; ++j) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t kk = k0 + static_cast<int64_t>(u) * kGroupLanes * 8;
        if (col0 + j < a.m && kk < k) wv[j][u] = *reinterpret_cast<const Bf16x8*>(wr[j] + kk);
      }
    }
  };
  load_batch(first);
  if (a.prefetch && k > kStep && warp == 0) {
    constexpr int64_t kChunk = 16 * 1024;
    const int64_t rows = min(static_cast<int64_t>(kRows), a.m - row0);
    const int64_t bytes = rows * k * static_cast<int64_t>(sizeof(bf16));
    const char* base = reinterpret_cast<const char*>(a.w + row0 * k);
    for (int64_t off = static_cast<int64_t>(lane) * kChunk; off < bytes; off += 32 * kChunk) {
      const unsigned len = static_cast<unsigned>(min(kChunk, bytes - off));
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off), "r"(len)
                   : "memory");
    }
  }
  pdl_wait();
  if (!a.early_trigger) pdl_launch_dependents();

  const bf16* x = a.x;
  if constexpr (kSmemX) {
    bf16* xs = reinterpret_cast<bf16*>(gemv_smem);
    if constexpr (kPro == Prologue::kNone) {
      for (int64_t i = static_cast<int64_t>(threadIdx.x) * 8; i < a.n * k; i += kThreads * 8) {
        *reinterpret_cast<Bf16x8*>(xs + i) = *reinterpret_cast<const Bf16x8*>(a.x + i);
      }
    } else if constexpr (kPro == Prologue::kSiluMul) {
      stage_silu_mul(a, xs);
    } else {
      stage_add_rms_norm<kN>(a, xs);
    }
    __syncthreads();
    x = xs;
  }

  float acc[kRpw][kN];
#pragma unroll
  for (int j = 0; j < kRpw; ++j) {
#pragma unroll
    for (int r = 0; r < kN; ++r) acc[j][r] = 0.f;
  }
  if (valid) {
    for (int64_t k0 = first; k0 < k; k0 += kStep) {
      if (k0 != first) load_batch(k0);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t kk = k0 + static_cast<int64_t>(u) * kGroupLanes * 8;
        if (kk >= k) break;
        float wf[kRpw][8];
#pragma unroll
        for (int j = 0; j < kRpw; ++j) {
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float2 t = __bfloat1622float2(wv[j][u].h[i]);
            wf[j][2 * i] = t.x;
            wf[j][2 * i + 1] = t.y;
          }
        }
#pragma unroll
        for (int r = 0; r < kN; ++r) {
          if (r >= a.n) break;
          float xf[8];
          load8(x + r * k + kk, xf);
#pragma unroll
          for (int j = 0; j < kRpw; ++j) {
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[j][r] += wf[j][i] * xf[i];
          }
        }
      }
    }
  }
  OutT* out = static_cast<OutT*>(a.out);
  if constexpr (kWpr == 1) {
#pragma unroll
    for (int j = 0; j < kRpw; ++j) {
      const int64_t col = col0 + j;
      const bool ok = col < a.m;
      const float b = ok && a.bias != nullptr ? __bfloat162float(a.bias[col]) : 0.f;
#pragma unroll
      for (int r = 0; r < kN; ++r) {
        const float v = warp_sum(acc[j][r]);
        if (lane == 0 && ok && r < a.n) out[r * a.m + col] = to_out<OutT>(v + b);
      }
    }
  } else {
    __shared__ float red[kWarpsPerBlock][kN];
#pragma unroll
    for (int r = 0; r < kN; ++r) {
      const float v = warp_sum(acc[0][r]);
      if (lane == 0) red[warp][r] = v;
    }
    __syncthreads();
    if (threadIdx.x < kRows) {
      const int64_t c = row0 + threadIdx.x;
      if (c < a.m) {
        const float b = a.bias != nullptr ? __bfloat162float(a.bias[c]) : 0.f;
#pragma unroll
        for (int r = 0; r < kN; ++r) {
          if (r >= a.n) break;
          float v = b;
#pragma unroll
          for (int p = 0; p < kWpr; ++p) v += red[threadIdx.x * kWpr + p][r];
          out[r * a.m + c] = to_out<OutT>(v);
        }
      }
    }
  }
  // After the outputs are stored: its atomic round trip is off the weights' path.
  if constexpr (kPro == Prologue::kAddRmsNorm) {
    finish_add_rms_norm(a, reinterpret_cast<const bf16*>(gemv_smem));
  }
}

template <int kN, int kUnroll, int kWpr, int kRpw, Prologue kPro, bool kSmemX, typename OutT>
void launch_final(const GemvArgs& a, cudaStream_t stream) {
  constexpr int kRows = kWarpsPerBlock / kWpr * kRpw;
  const int64_t blocks = ceil_div(a.m, kRows);
  CUDA_REQUIRE(blocks <= 0x7fffffff, kInvalidArgument, "gemv: m=", a.m, " is too large");
  const size_t smem = kSmemX ? static_cast<size_t>(a.n * a.k) * sizeof(bf16) : 0;
  GemvArgs args = a;
  args.prefetch = pdl_enabled() && gemv_prefetch_enabled();
  args.early_trigger = gemv_pdl_early_trigger();
  launch_pdl(gemv_kernel<kN, kUnroll, kWpr, kRpw, kPro, kSmemX, OutT>,
             dim3(static_cast<unsigned>(blocks)), dim3(kThreads), smem, stream, args);
}

// Runtime (rows, row length, matrix width) -> template parameters.
template <Prologue kPro, bool kSmemX, typename OutT>
void dispatch(const GemvArgs& a, int num_sms, cudaStream_t stream) {
  // Long rows: 8 chunks in flight per lane, one warp per row. Narrow matrices (fewer 16-row
  // blocks than SMs) split each row over 4 warps; otherwise one warp per row.
  const bool long_rows = a.k >= 4096;
  const bool split = !long_rows && gemv_split_enabled() && ceil_div(a.m, kWarpsPerBlock) < num_sms;
  // Matrices of more than one wave (2 blocks per SM) of 16-row blocks: 2 rows per warp, n == 1
  // only (acc and weights in registers).
  const bool rows2 = !long_rows && !split && a.n == 1 && gemv_rows2_enabled() &&
                     ceil_div(a.m, kWarpsPerBlock) > 2 * num_sms;
  auto by_n = [&](auto unroll, auto wpr) {
    constexpr int kU = decltype(unroll)::value, kW = decltype(wpr)::value;
    if (a.n == 1) {
      launch_final<1, kU, kW, 1, kPro, kSmemX, OutT>(a, stream);
    } else if (a.n == 2) {
      launch_final<2, kU, kW, 1, kPro, kSmemX, OutT>(a, stream);
    } else {
      launch_final<4, kU, kW, 1, kPro, kSmemX, OutT>(a, stream);
    }
  };
  using I1 = std::integral_constant<int, 1>;
  using I4 = std::integral_constant<int, 4>;
  using I8 = std::integral_constant<int, 8>;
  if (long_rows) {
    by_n(I8{}, I1{});
  } else if (split) {
    by_n(I4{}, I4{});
  } else if (rows2) {
    launch_final<1, 4, 1, 2, kPro, kSmemX, OutT>(a, stream);
  } else {
    by_n(I4{}, I1{});
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The arguments every GEMV launch shares; the prologue's own fields stay at their defaults.
GemvArgs plain_args(const bf16* x, const bf16* w, const bf16* bias, void* out, int64_t n, int64_t m,
                    int64_t k) {
  GemvArgs a{};
  a.x = x;
  a.w = w;
  a.bias = bias;
  a.out = out;
  a.n = static_cast<int>(n);
  a.m = m;
  a.k = k;
  return a;
}

// The arguments every lean launch shares; the add_rms_norm prologue's own fields stay unset.
LeanGemvArgs lean_args(const bf16* x, const bf16* w, const bf16* bias, bf16* out, int64_t m,
                       int64_t k, LeanPrologue prologue) {
  LeanGemvArgs l;
  l.x = x;
  l.w = w;
  l.bias = bias;
  l.out = out;
  l.m = m;
  l.k = k;
  l.prologue = prologue;
  return l;
}

}  // namespace

bool gemv_supported(const void* x, const void* w, int64_t n, int64_t k) {
  return n >= 1 && n <= kGemvMaxRows && k % 8 == 0 && aligned16(x) && aligned16(w);
}

bool gemv_prologue_supported(const void* x, const void* w, int64_t n, int64_t k) {
  // Rows of k >= 4096 are not fused: every block repeats the prologue, and such matrices run
  // 256-1536 blocks (several waves), so the repeats cost more than the saved launch (H100,
  // Qwen3-8B batch 1 without PDL: 6.65 ms per token unfused, 7.15 ms fused).
  return gemv_fused_enabled() && k < 4096 && gemv_supported(x, w, n, k) &&
         n * k * static_cast<int64_t>(sizeof(bf16)) <= kSmemXBytes;
}

void launch_gemv(const bf16* x, const bf16* w, const bf16* bias, void* out, bool out_f32, int64_t n,
                 int64_t m, int64_t k, int num_sms, cudaStream_t stream) {
  CUDA_REQUIRE(gemv_supported(x, w, n, k) && m > 0, kInvalidArgument, "gemv: n=", n, " m=", m,
               " k=", k, " (need 1 <= n <= ", kGemvMaxRows, ", k % 8 == 0, 16-byte aligned)");
  if (!out_f32 && gemv_lean_supported(n, m, k, num_sms)) {
    launch_gemv_lean(lean_args(x, w, bias, static_cast<bf16*>(out), m, k, LeanPrologue::kNone),
                     num_sms, stream);
    return;
  }
  const GemvArgs a = plain_args(x, w, bias, out, n, m, k);
  const bool smem_x =
      n * k * static_cast<int64_t>(sizeof(bf16)) <= kSmemXBytes && gemv_smem_x_enabled();
  if (smem_x) {
    if (out_f32) {
      dispatch<Prologue::kNone, true, float>(a, num_sms, stream);
    } else {
      dispatch<Prologue::kNone, true, bf16>(a, num_sms, stream);
    }
  } else {
    if (out_f32) {
      dispatch<Prologue::kNone, false, float>(a, num_sms, stream);
    } else {
      dispatch<Prologue::kNone, false, bf16>(a, num_sms, stream);
    }
  }
  CUDA_CHECK_LAUNCH();
}

void launch_add_rms_norm_gemv(bf16* x, bf16* residual, const bf16* norm_w, float eps,
                              unsigned* counter, const bf16* w, const bf16* bias, bf16* out,
                              int64_t n, int64_t m, int64_t k, int num_sms, cudaStream_t stream) {
  CUDA_REQUIRE(gemv_prologue_supported(x, w, n, k) && m > 0 && aligned16(residual) &&
                   aligned16(norm_w) && counter != nullptr,
               kInvalidArgument, "add_rms_norm_gemv: n=", n, " m=", m, " k=", k,
               " is not supported (see gemv_prologue_supported)");
  if (gemv_lean_supported(n, m, k, num_sms)) {
    LeanGemvArgs l = lean_args(x, w, bias, out, m, k, LeanPrologue::kAddRmsNorm);
    l.x_out = x;
    l.residual = residual;
    l.norm_w = norm_w;
    l.eps = eps;
    l.counter = counter;
    launch_gemv_lean(l, num_sms, stream);
    return;
  }
  GemvArgs a = plain_args(x, w, bias, out, n, m, k);
  a.x_out = x;
  a.residual = residual;
  a.norm_w = norm_w;
  a.eps = eps;
  a.counter = counter;
  dispatch<Prologue::kAddRmsNorm, true, bf16>(a, num_sms, stream);
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul_gemv(const bf16* gate_up, const bf16* w, const bf16* bias, bf16* out,
                          int64_t n, int64_t m, int64_t k, int num_sms, cudaStream_t stream) {
  CUDA_REQUIRE(gemv_prologue_supported(gate_up, w, n, k) && m > 0, kInvalidArgument,
               "silu_mul_gemv: n=", n, " m=", m, " k=", k,
               " is not supported (see gemv_prologue_supported)");
  if (gemv_lean_supported(n, m, k, num_sms)) {
    launch_gemv_lean(lean_args(gate_up, w, bias, out, m, k, LeanPrologue::kSiluMul), num_sms,
                     stream);
    return;
  }
  const GemvArgs a = plain_args(gate_up, w, bias, out, n, m, k);
  dispatch<Prologue::kSiluMul, true, bf16>(a, num_sms, stream);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
