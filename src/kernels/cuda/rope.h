// Rotary position embedding (rotate-half convention) on bf16 heads, from a precomputed fp32
// cos/sin table; plus the Qwen3 fused per-head RMSNorm + RoPE.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// In place on x bf16 [num_tokens, num_heads, head_dim] at positions I32 [num_tokens];
// cos_sin F32 [max_pos, head_dim]: cos(pos * f_i) in [:head_dim/2], sin in [head_dim/2:].
// x1 = x[:D/2], x2 = x[D/2:]  ->  [x1 cos - x2 sin, x2 cos + x1 sin].
// A position outside [0, max_pos) leaves its row unchanged (the host validates positions).
void launch_rope(__nv_bfloat16* x, const int32_t* positions, const float* cos_sin,
                 int64_t num_tokens, int64_t num_heads, int64_t head_dim, int64_t max_pos,
                 cudaStream_t stream);

// Qwen3: x = rope(rms_norm(x[t, h, :]) * w) in place, one warp per head row.
// x bf16 [num_tokens, num_heads, head_dim]; w bf16 [head_dim]; head_dim % 64 == 0, <= 256.
void launch_qk_norm_rope(__nv_bfloat16* x, const __nv_bfloat16* w, float eps,
                         const int32_t* positions, const float* cos_sin, int64_t num_tokens,
                         int64_t num_heads, int64_t head_dim, int64_t max_pos, cudaStream_t stream);

}  // namespace hardkv::cuda
