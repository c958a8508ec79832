// Tensor-core paged attention for prefill and mixed steps (max_query_len > 1): flash-attention-2
// style, bf16 mma.sync with fp32 accumulation, K/V tiles gathered through the block table.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/attention.h"

namespace hardkv::cuda {

// (query token, head-in-group) rows per block: 4 warps x 16 rows of one m16n8k16 tile each.
inline constexpr int kPrefillRowTile = 64;

// Head dims with an instantiated kernel (others use the general kernel).
bool prefill_attention_supported(int head_dim);

// Launches on a plan from plan_paged_attention (kv_chunk a multiple of kAttentionKvTile, split
// partials in p.partial_o / p.partial_ml when num_splits > 1; the caller runs the combine).
void launch_prefill_attention(const PagedAttentionParams& p, cudaStream_t stream);

// Per-head-dim entry points, each instantiated in its own translation unit.
void launch_prefill_attention_d64(const PagedAttentionParams& p, cudaStream_t stream);
void launch_prefill_attention_d128(const PagedAttentionParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
