// RMSNorm and fused residual-add + RMSNorm on bf16 rows (fp32 statistics).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w
// x, out bf16 [num_rows, dim] (may alias); w bf16 [dim].
void launch_rms_norm(const __nv_bfloat16* x, const __nv_bfloat16* w, float eps, __nv_bfloat16* out,
                     int64_t num_rows, int64_t dim, cudaStream_t stream);

// residual += x (rounded to bf16); x = rms_norm(residual) * w
// x, residual bf16 [num_rows, dim]; w bf16 [dim].
void launch_add_rms_norm(__nv_bfloat16* x, __nv_bfloat16* residual, const __nv_bfloat16* w,
                         float eps, int64_t num_rows, int64_t dim, cudaStream_t stream);

}  // namespace hardkv::cuda
