// The two per-layer calls a model makes in HARD-KV mode (CPU reference, host fp32 tensors): feed
// the observation ring with the step's post-RoPE queries, and run attention over the tiers.
#pragma once

#include <cstdint>
#include <span>

#include "kv/headwise_kv.h"
#include "kv/tiered_attention_meta.h"

namespace hardkv::kv {

// q [num_tokens, num_q_heads, head_dim] post-RoPE queries of layer_idx for the batch laid out
// sequence by sequence (query_indptr [num_seqs + 1]); pushes each sequence's rows (only the last
// obs_window matter) into its observation ring.
void push_observations(HeadwiseKV& kv, std::span<const int64_t> seq_ids,
                       std::span<const int32_t> query_indptr, int layer_idx, const float* q);

// Attention of layer_idx over the tiers: q, out [meta.num_tokens, num_q_heads, head_dim];
// dense_k, dense_v: the layer's dense cache [num_blocks, block_size, num_kv_heads, head_dim];
// meta from kv.build_attention_meta for this step.
void tiered_attention_layer(const HeadwiseKV& kv, const TieredAttentionMeta& meta, int layer_idx,
                            const float* q, const float* dense_k, const float* dense_v, float scale,
                            float* out);

}  // namespace hardkv::kv
