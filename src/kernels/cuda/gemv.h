// Skinny GEMM for decode (a few rows of x): out[n, m] = x[n, :] . w[m, :] (+ bias[m]), warps
// streaming w's rows with 16-byte loads. Memory-bound by design: at n <= 4 it reads the weights
// once at close to HBM bandwidth, where cuBLASLt's tiled kernels do not. Optional prologues build
// x in shared memory from the previous op's output (fused residual-add + RMSNorm, or SiLU * up),
// saving that op's launch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

inline constexpr int64_t kGemvMaxRows = 4;

// True when launch_gemv handles this problem (n <= kGemvMaxRows, k % 8 == 0, 16-byte aligned).
bool gemv_supported(const void* x, const void* w, int64_t n, int64_t k);

// x bf16 [n, k]; w bf16 [m, k]; bias bf16 [m] or null; out bf16 or F32 (out_f32) [n, m].
// num_sms picks the grid shape (narrow matrices split each row over 4 warps).
void launch_gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias,
                 void* out, bool out_f32, int64_t n, int64_t m, int64_t k, int num_sms,
                 cudaStream_t stream);

// True when the fused prologue kernels handle this problem: gemv_supported, k < 4096 and x [n, k]
// fits the kernel's shared memory (47 KB), every pointer 16-byte aligned. HARDKV_FUSED_GEMV=0:
// false.
bool gemv_prologue_supported(const void* x, const void* w, int64_t n, int64_t k);

// residual += x (rounded to bf16); x = rms_norm(residual) * norm_w (bf16); out = x w^T (+ bias),
// in one kernel: every block normalises the rows into shared memory, the last block to finish
// reading writes residual and x back. counter: a device uint32 that is 0 on entry (left 0).
// x, residual bf16 [n, k]; norm_w bf16 [k]; w bf16 [m, k]; bias [m] or null; out bf16 [n, m].
void launch_add_rms_norm_gemv(__nv_bfloat16* x, __nv_bfloat16* residual,
                              const __nv_bfloat16* norm_w, float eps, unsigned* counter,
                              const __nv_bfloat16* w, const __nv_bfloat16* bias,
                              __nv_bfloat16* out, int64_t n, int64_t m, int64_t k, int num_sms,
                              cudaStream_t stream);

// out = (silu(gate_up[:, :k]) * gate_up[:, k:]) w^T (+ bias), the product rounded to bf16 as
// silu_mul would. gate_up bf16 [n, 2k]; w bf16 [m, k]; bias [m] or null; out bf16 [n, m].
void launch_silu_mul_gemv(const __nv_bfloat16* gate_up, const __nv_bfloat16* w,
                          const __nv_bfloat16* bias, __nv_bfloat16* out, int64_t n, int64_t m,
                          int64_t k, int num_sms, cudaStream_t stream);

}  // namespace hardkv::cuda
