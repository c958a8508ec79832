// CPU reference of attention over the HARD-KV tiers: per query head, attention over its kv-head's
// condensed pages minus masked tokens -> (out, lse), attention over the dense tier (causal) ->
// (out, lse), merged by log-sum-exp. The CUDA kernel has the same three parts.
#pragma once

#include <cstdint>

#include "kv/tiered_attention_meta.h"

namespace hardkv::kv {

// One layer's inputs. Metadata arrays are TieredAttentionMeta's; the segment arrays (page_indptr,
// cond_len, mask_indptr) are already offset to this layer's first segment (layer_args() does it).
struct TieredAttentionArgs {
  const float* q = nullptr;        // [num_tokens, num_q_heads, head_dim] post-RoPE
  float* out = nullptr;            // [num_tokens, num_q_heads, head_dim]
  const float* page_k = nullptr;   // [num_pages, page_size, head_dim] this layer's head-page pool
  const float* page_v = nullptr;   // [num_pages, page_size, head_dim]
  const float* dense_k = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim] this layer
  const float* dense_v = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]

  const int32_t* query_indptr = nullptr;         // [num_seqs + 1]
  const int32_t* dense_block_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* dense_block_indices = nullptr;  // [total dense blocks]
  const int32_t* dense_start = nullptr;          // [num_seqs]
  const int32_t* dense_len = nullptr;            // [num_seqs]
  const int32_t* page_indptr = nullptr;          // [num_seqs * num_kv_heads + 1] (absolute)
  const int32_t* page_indices = nullptr;         // base of the step's page ids
  const int32_t* cond_len = nullptr;             // [num_seqs * num_kv_heads]
  const int32_t* mask_indptr = nullptr;          // [num_seqs * num_kv_heads + 1] or null
  const uint64_t* mask_words = nullptr;          // base of the step's mask words or null

  int64_t num_seqs = 0;
  int64_t num_q_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t page_size = 0;
  int64_t dense_block_size = 0;
  float scale = 1.0f;
};

// Fills the metadata pointers of args for layer_idx from meta (which must outlive args).
void set_layer_meta(const TieredAttentionMeta& meta, int layer_idx, TieredAttentionArgs& args);

// Partial attention over the condensed tier minus masked tokens: out [T, Hq, D] fp32 (0 where no
// token is attended) and lse [T, Hq] fp32 = log sum exp(scale q.k) (-inf where none).
void condensed_attention(const TieredAttentionArgs& args, float* out, float* lse);
// Partial causal attention over the dense tier, same outputs.
void dense_attention(const TieredAttentionArgs& args, float* out, float* lse);
// Merges two partial states of n rows of head_dim: out = (e^lse_a out_a + e^lse_b out_b) /
// (e^lse_a + e^lse_b); a row with both lse -inf gets zeros. out may alias out_a.
void merge_attention_states(const float* out_a, const float* lse_a, const float* out_b,
                            const float* lse_b, int64_t n, int64_t head_dim, float* out,
                            float* lse_out);
// The full tiered attention into args.out.
void tiered_attention(const TieredAttentionArgs& args);

}  // namespace hardkv::kv
