// Writes new K/V rows into the paged KV cache by slot mapping.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// k, v bf16 [num_tokens, row] (row = num_kv_heads * head_dim); slots I32 [num_tokens];
// k_cache, v_cache bf16 [num_slots, row] (= [num_blocks, block_size, Hkv, D] flattened).
// Slot -1 skips the token; a slot outside [0, num_slots) is skipped too (host validates).
void launch_kv_store(const __nv_bfloat16* k, const __nv_bfloat16* v, const int32_t* slots,
                     __nv_bfloat16* k_cache, __nv_bfloat16* v_cache, int64_t num_tokens,
                     int64_t row, int64_t num_slots, cudaStream_t stream);

}  // namespace hardkv::cuda
