// Attention over the HARD-KV tiers on the GPU (same semantics as kv::tiered_attention): each query
// head attends its kv-head's condensed head-pages minus masked tokens and, causally, the dense
// paged tier; one softmax over both (= the log-sum-exp merge of the two partial states).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace hardkv::cuda {

// Indexing follows kv::TieredAttentionMeta (src/kv/tiered_attention_meta.h), every array in device
// memory. Sequence s owns query rows [query_indptr[s], query_indptr[s+1]); its q_len rows are its
// last q_len dense tokens. Segment g = s * num_kv_heads + h (already offset to this layer):
// stored tokens 0..cond_len[g]-1, token i at page page_indices[page_indptr[g] + i / page_size],
// offset i % page_size; masked iff bit i % 64 of mask_words[mask_indptr[g] + i / 64] is set.
// Preconditions the kernel cannot check (no device->host sync): q_len_s <= dense_len[s],
// dense_start + dense_len within the block table, cond_len[g] <= max_cond_len,
// dense_len[s] <= max_dense_len, q_len_s <= max_query_len, all ids inside their pools.
struct TieredAttentionParams {
  const __nv_bfloat16* q = nullptr;        // [num_tokens, num_q_heads, head_dim] post-RoPE
  __nv_bfloat16* out = nullptr;            // [num_tokens, num_q_heads, head_dim]
  const __nv_bfloat16* page_k = nullptr;   // [num_pages, page_size, head_dim] this layer's pool
  const __nv_bfloat16* page_v = nullptr;   // [num_pages, page_size, head_dim]
  const __nv_bfloat16* dense_k = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]
  const __nv_bfloat16* dense_v = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]

  const int32_t* query_indptr = nullptr;         // [num_seqs + 1]
  const int32_t* dense_block_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* dense_block_indices = nullptr;  // [total dense blocks]
  const int32_t* dense_start = nullptr;          // [num_seqs] first live table token
  const int32_t* dense_len = nullptr;            // [num_seqs] live dense tokens, new ones included
  const int32_t* page_indptr = nullptr;          // [num_seqs * num_kv_heads + 1] (absolute)
  const int32_t* page_indices = nullptr;         // base of the step's page ids
  const int32_t* cond_len = nullptr;             // [num_seqs * num_kv_heads]
  const int32_t* mask_indptr = nullptr;          // [num_seqs * num_kv_heads + 1] or null (no mask)
  const uint64_t* mask_words = nullptr;          // base of the step's mask words or null

  int num_seqs = 0;
  int num_tokens = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int page_size = 0;
  int dense_block_size = 0;
  int max_query_len = 0;  // host-side bounds: they size the grid
  int max_cond_len = 0;
  int max_dense_len = 0;
  float scale = 1.f;

  // Split-KV over the virtual token list (condensed tokens, then visible dense tokens): each
  // block's list is divided into num_splits equal parts. Set by plan_tiered_attention.
  int rows_per_block = 0;    // (query token, head-in-group) rows per block: 1, 2, 4 or 8
  int tokens_in_flight = 0;  // tokens per worker per step: 4 or 8 (8 only without pipelined)
  int pipelined = 0;         // 1: K/V copied steps ahead through a shared-memory ring (cp.async)
  // > 0: the tensor-core kernel (tiered_attention_mma.cuh; head_dim <= 128, 16 rows per block)
  // with this many cp.async stages per warp (2 or 3); 0: the CUDA-core kernel above.
  int mma_stages = 0;
  int num_splits = 0;
  float* partial_o = nullptr;   // F32 [num_splits, num_tokens, num_q_heads, head_dim] (splits > 1)
  float* partial_ml = nullptr;  // F32 [num_splits, num_tokens, num_q_heads, 2] (max log2, sum)
};

// Chooses the kernel (tensor cores for head_dim <= 128 unless HARDKV_TIERED_MMA=0), its
// rows_per_block / tokens_in_flight / pipelined / mma_stages, and num_splits from the host-side
// bounds (splits until the grid holds about blocks_per_sm blocks per multiprocessor); returns the
// workspace size in floats (0 when num_splits == 1). Any split count suits either kernel.
size_t plan_tiered_attention(TieredAttentionParams& p, int num_sms, int blocks_per_sm = 4);

// Checks shapes and launches (plus the split combine kernel). No host sync: graph-capturable.
// head_dim in {32, 64, 128, 256}.
void launch_tiered_attention(const TieredAttentionParams& p, cudaStream_t stream);

// Per-head-dim entry points, each instantiated in its own translation unit.
void launch_tiered_attention_d32(const TieredAttentionParams& p, cudaStream_t stream);
void launch_tiered_attention_d64(const TieredAttentionParams& p, cudaStream_t stream);
void launch_tiered_attention_d128(const TieredAttentionParams& p, cudaStream_t stream);
void launch_tiered_attention_d256(const TieredAttentionParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
