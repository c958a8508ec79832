// SwiGLU activation on bf16: out[t, i] = silu(gate_up[t, i]) * gate_up[t, I + i].
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// gate_up bf16 [num_tokens, 2 * inter]; out bf16 [num_tokens, inter].
void launch_silu_mul(const __nv_bfloat16* gate_up, __nv_bfloat16* out, int64_t num_tokens,
                     int64_t inter, cudaStream_t stream);

}  // namespace hardkv::cuda
