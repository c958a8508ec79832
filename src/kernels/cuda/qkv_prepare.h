// Fused attention-input preparation from the fused q/k/v projection: per-head RMSNorm (Qwen3),
// RoPE, the query copy-out and the K/V cache store in one kernel (Backend::qkv_prepare).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

struct QkvPrepareParams {
  const __nv_bfloat16* qkv = nullptr;     // [T, (Hq + 2 Hkv) * D]
  const __nv_bfloat16* q_norm = nullptr;  // [D] or null
  const __nv_bfloat16* k_norm = nullptr;  // [D] or null
  float eps = 1e-6f;
  const int32_t* positions = nullptr;  // [T]
  const float* cos_sin = nullptr;      // [max_pos, D]
  int64_t max_pos = 0;
  const int32_t* slots = nullptr;  // [T], -1 = do not store
  __nv_bfloat16* q_out = nullptr;  // [T, Hq, D]
  __nv_bfloat16* k_cache = nullptr;  // [num_slots, Hkv, D]
  __nv_bfloat16* v_cache = nullptr;  // [num_slots, Hkv, D]
  int64_t num_slots = 0;
  int64_t num_tokens = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // even, <= 256
};

// One warp per (token, head) of the Hq + 2 Hkv heads. Normalised values are rounded to bf16
// before the rotation, as rms_norm followed by rope would store them.
void launch_qkv_prepare(const QkvPrepareParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
