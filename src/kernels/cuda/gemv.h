// Skinny GEMM for decode (a few rows of x): out[n, m] = x[n, :] . w[m, :] (+ bias[m]), one warp
// per output column m streaming w's row with 16-byte loads. Memory-bound by design: at n <= 4 it
// reads the weights once at close to HBM bandwidth, where cuBLASLt's tiled kernels do not.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

inline constexpr int64_t kGemvMaxRows = 4;

// True when launch_gemv handles this problem (n <= kGemvMaxRows, k % 8 == 0, 16-byte aligned).
bool gemv_supported(const void* x, const void* w, int64_t n, int64_t k);

// x bf16 [n, k]; w bf16 [m, k]; bias bf16 [m] or null; out bf16 or F32 (out_f32) [n, m].
void launch_gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias,
                 void* out, bool out_f32, int64_t n, int64_t m, int64_t k, cudaStream_t stream);

}  // namespace hardkv::cuda
