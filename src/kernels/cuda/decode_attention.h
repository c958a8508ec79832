// Paged decode attention (one query token per sequence): a kernel specialised for q_len == 1 that
// keeps every warp streaming K/V, used by launch_paged_attention when max_query_len == 1.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/attention.h"

namespace hardkv::cuda {

// True when the decode kernel covers this shape (head_dim 64/128/256, GQA group 1/2/4);
// otherwise the general paged kernel runs.
bool decode_attention_supported(int head_dim, int group);

// Same contract as launch_paged_attention for a step whose sequences have at most one query
// token each (p planned by plan_paged_attention; with num_splits > 1 it writes the partials and
// the caller runs the combine). Sequences with no query token are skipped.
void launch_decode_attention(const PagedAttentionParams& p, cudaStream_t stream);

// HARDKV_ATTN_EARLY_PREP=0: false; else the fused kernel reads the position, cos/sin row, slot and
// q/k norm weights before waiting for the previous kernel (with HARDKV_ATTN_EARLY_KV). Read once.
bool decode_attention_prep_early();

// Per-head-dim entry points, each instantiated (for groups 1, 2, 4) in its own translation unit.
void launch_decode_attention_d64(const PagedAttentionParams& p, cudaStream_t stream);
void launch_decode_attention_d128(const PagedAttentionParams& p, cudaStream_t stream);
void launch_decode_attention_d256(const PagedAttentionParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
