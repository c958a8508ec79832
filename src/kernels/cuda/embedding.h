// Token embedding lookup on the GPU: out[t, :] = table[ids[t], :] (bf16 rows, 16-byte copies).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// ids I32 [num_tokens]; table bf16 [vocab_size, hidden]; out bf16 [num_tokens, hidden].
// An id -(r + 1) < 0 is a placeholder for sampled[r] (I32 [num_sampled], device: the latest
// sampled tokens). An id outside [0, vocab_size) (or a placeholder past num_sampled) yields a
// zero row (the host validates ids; this keeps the kernel from reading out of bounds).
void launch_embedding(const int32_t* ids, const int32_t* sampled, int32_t num_sampled,
                      const __nv_bfloat16* table, __nv_bfloat16* out, int64_t num_tokens,
                      int64_t hidden, int64_t vocab_size, cudaStream_t stream);

// out[i, :] = x[idx[i], :]    x bf16 [num_src_rows, width]; idx I32 [num_rows]; out bf16
// [num_rows, width]. Same kernel as embedding (a row gather); used for last-token logits.
void launch_gather_rows(const __nv_bfloat16* x, const int32_t* idx, __nv_bfloat16* out,
                        int64_t num_rows, int64_t width, int64_t num_src_rows, cudaStream_t stream);

}  // namespace hardkv::cuda
