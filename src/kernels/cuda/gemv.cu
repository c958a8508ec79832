// Skinny-GEMM kernel: each warp owns one weight row (output column m); lanes stride over k in
// 16-byte chunks, kUnroll chunks in flight per lane before any math (8 for long rows, k >= 4096,
// so a warp keeps 4 KB of weights in flight), x staged once per block in shared memory when it
// fits 48 KB (else read through L1), fp32 accumulation, a warp reduction, lane 0 writes.
// H100, Qwen3-8B batch-1 decode: x in shared memory took 7.34 -> 6.88 ms per token, 16 rows per
// block (x staged once for twice the rows) 6.88 -> 6.74 ms.
#include <cstdlib>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/gemv.h"

namespace hardkv::cuda {
namespace {

constexpr int kWarpsPerBlock = 16;

// HARDKV_GEMV_SMEM_X=0 keeps x in global memory (for before/after measurements).
bool gemv_smem_x_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_GEMV_SMEM_X");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

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

// kN: rows of x handled (n rounded up); rows >= n are skipped. kSmemX: the block first copies
// x [n, k] into shared memory (dynamic, n * k * 2 bytes), so the warps' x reads stop competing
// with the weight stream in L1.
template <int kN, int kUnroll, bool kSmemX, typename OutT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    gemv_kernel(const bf16* __restrict__ x_global, const bf16* __restrict__ w,
                const bf16* __restrict__ bias, OutT* __restrict__ out, int n, int64_t m,
                int64_t k) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  const bf16* x = x_global;
  if constexpr (kSmemX) {
    bf16* xs = reinterpret_cast<bf16*>(gemv_smem);
    for (int64_t i = static_cast<int64_t>(threadIdx.x) * 8; i < n * k; i += blockDim.x * 8) {
      *reinterpret_cast<Bf16x8*>(xs + i) = *reinterpret_cast<const Bf16x8*>(x_global + i);
    }
    __syncthreads();
    x = xs;
  }
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (col >= m) return;
  const bf16* wr = w + col * k;
  float acc[kN];
#pragma unroll
  for (int r = 0; r < kN; ++r) acc[r] = 0.f;
  constexpr int64_t kStep = 32 * 8 * kUnroll;
  for (int64_t k0 = static_cast<int64_t>(lane) * 8; k0 < k; k0 += kStep) {
    Bf16x8 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t kk = k0 + u * 256;
      if (kk < k) wv[u] = *reinterpret_cast<const Bf16x8*>(wr + kk);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t kk = k0 + u * 256;
      if (kk >= k) break;
      float wf[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 t = __bfloat1622float2(wv[u].h[i]);
        wf[2 * i] = t.x;
        wf[2 * i + 1] = t.y;
      }
#pragma unroll
      for (int r = 0; r < kN; ++r) {
        if (r >= n) break;
        float xf[8];
        load8(x + r * k + kk, xf);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[r] += wf[i] * xf[i];
      }
    }
  }
  const float b = bias != nullptr ? __bfloat162float(bias[col]) : 0.f;
#pragma unroll
  for (int r = 0; r < kN; ++r) {
    const float v = warp_sum(acc[r]);
    if (lane == 0 && r < n) out[r * m + col] = to_out<OutT>(v + b);
  }
}

// x in shared memory when it fits the default 48 KB of dynamic shared memory.
constexpr int64_t kSmemXBytes = 48 * 1024;

template <int kN, int kUnroll, bool kSmemX>
void launch_nus(const bf16* x, const bf16* w, const bf16* bias, void* out, bool out_f32, int n,
                int64_t m, int64_t k, cudaStream_t stream) {
  const int64_t blocks = ceil_div(m, kWarpsPerBlock);
  const size_t smem = kSmemX ? static_cast<size_t>(n) * k * sizeof(bf16) : 0;
  if (out_f32) {
    gemv_kernel<kN, kUnroll, kSmemX, float><<<blocks, kWarpsPerBlock * 32, smem, stream>>>(
        x, w, bias, static_cast<float*>(out), n, m, k);
  } else {
    gemv_kernel<kN, kUnroll, kSmemX, bf16><<<blocks, kWarpsPerBlock * 32, smem, stream>>>(
        x, w, bias, static_cast<bf16*>(out), n, m, k);
  }
}

template <int kN, int kUnroll>
void launch_nu(const bf16* x, const bf16* w, const bf16* bias, void* out, bool out_f32, int n,
               int64_t m, int64_t k, cudaStream_t stream) {
  if (static_cast<int64_t>(n) * k * static_cast<int64_t>(sizeof(bf16)) <= kSmemXBytes &&
      gemv_smem_x_enabled()) {
    launch_nus<kN, kUnroll, true>(x, w, bias, out, out_f32, n, m, k, stream);
  } else {
    launch_nus<kN, kUnroll, false>(x, w, bias, out, out_f32, n, m, k, stream);
  }
}

template <int kN>
void launch_n(const bf16* x, const bf16* w, const bf16* bias, void* out, bool out_f32, int n,
              int64_t m, int64_t k, cudaStream_t stream) {
  if (k >= 4096) {
    launch_nu<kN, 8>(x, w, bias, out, out_f32, n, m, k, stream);
  } else {
    launch_nu<kN, 4>(x, w, bias, out, out_f32, n, m, k, stream);
  }
}

}  // namespace

bool gemv_supported(const void* x, const void* w, int64_t n, int64_t k) {
  return n >= 1 && n <= kGemvMaxRows && k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(w) % 16 == 0;
}

void launch_gemv(const bf16* x, const bf16* w, const bf16* bias, void* out, bool out_f32, int64_t n,
                 int64_t m, int64_t k, cudaStream_t stream) {
  CUDA_REQUIRE(gemv_supported(x, w, n, k) && m > 0, kInvalidArgument, "gemv: n=", n, " m=", m,
               " k=", k, " (need 1 <= n <= ", kGemvMaxRows, ", k % 8 == 0, 16-byte aligned)");
  const int ni = static_cast<int>(n);
  if (n == 1) {
    launch_n<1>(x, w, bias, out, out_f32, ni, m, k, stream);
  } else if (n == 2) {
    launch_n<2>(x, w, bias, out, out_f32, ni, m, k, stream);
  } else {
    launch_n<4>(x, w, bias, out, out_f32, ni, m, k, stream);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
