// Paged causal attention (prefill and decode, varlen batch, GQA) on bf16 Q and a paged bf16 KV
// cache, with optional split-KV (flash-decoding) whose partial results a combine kernel merges.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace hardkv::cuda {

// Indexing follows hardkv::AttentionMeta (src/kernels/backend.h): sequence i owns query rows
// [query_indptr[i], query_indptr[i+1]) and kv_lens[i] tokens in blocks
// block_indices[block_indptr[i] ..]; query row j has position kv_lens[i] - q_len_i + j.
struct PagedAttentionParams {
  const __nv_bfloat16* q = nullptr;        // [num_tokens, num_q_heads, head_dim]
  const __nv_bfloat16* k_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]
  const __nv_bfloat16* v_cache = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]
  __nv_bfloat16* out = nullptr;            // [num_tokens, num_q_heads, head_dim]
  const int32_t* query_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* kv_lens = nullptr;        // [num_seqs]
  const int32_t* block_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* block_indices = nullptr;  // [total blocks]
  int num_seqs = 0;
  int num_tokens = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 0;
  int max_query_len = 0;  // host-side bounds: they size the grid
  int max_kv_len = 0;
  float scale = 1.f;
  // Split-KV: split s covers kv positions [s * kv_chunk, (s + 1) * kv_chunk). With num_splits > 1
  // the partials go to the workspace and a combine kernel writes `out`.
  int num_splits = 1;
  int kv_chunk = 0;             // positions per split, a multiple of kAttentionKvTile
  float* partial_o = nullptr;   // F32 [num_splits, num_tokens, num_q_heads, head_dim]
  float* partial_ml = nullptr;  // F32 [num_splits, num_tokens, num_q_heads, 2] (max, sum)
  // Decode kernel only: with split_counters set, the last split block of each (sequence, KV
  // head) to finish merges the partials itself (no combine kernel). [num_seqs * num_kv_heads],
  // zero on entry, left zero.
  unsigned* split_counters = nullptr;
  // Decode kernel only (plan_paged_attention sets it; 2 <= num_splits <= 16): the split blocks of
  // each (sequence, KV head) run as one thread-block cluster and merge in distributed shared
  // memory; no workspace, no combine kernel.
  bool cluster_merge = false;
  // Decode kernel only (plan_paged_attention sets it): groups 1-2 run the variant compiled for 4
  // resident blocks per multiprocessor (<= 128 registers) instead of the compiler's register
  // choice (~168 registers, 3 blocks).
  bool occupancy4 = false;

  // Fused input preparation (decode kernel only, set by launch_decode_attention_from_qkv): q is
  // not read; every block builds its query heads from qkv (rms_norm with q_norm when set, RoPE at
  // positions[token]) and the block holding a sequence's last KV position first stores that
  // token's key (k_norm, RoPE) and value at slots[token], which must be that position's slot.
  const __nv_bfloat16* qkv = nullptr;     // [num_tokens, (num_q_heads + 2 num_kv_heads) * D]
  const __nv_bfloat16* q_norm = nullptr;  // [D] or null
  const __nv_bfloat16* k_norm = nullptr;  // [D] or null
  float eps = 1e-6f;
  const int32_t* positions = nullptr;  // [num_tokens]
  const float* cos_sin = nullptr;      // F32 [max_pos, D]
  int max_pos = 0;
  const int32_t* slots = nullptr;      // [num_tokens]; -1 (or out of range): not stored
  int64_t num_slots = 0;
  __nv_bfloat16* k_cache_w = nullptr;  // k_cache, writable
  __nv_bfloat16* v_cache_w = nullptr;  // v_cache, writable
  // Fused only: read metadata, block table and the first K/V step before pdl_wait() (legal
  // because no earlier kernel of the step writes them; HARDKV_ATTN_EARLY_KV=0 turns it off).
  bool kv_before_wait = false;
};

inline constexpr int kAttentionKvTile = 64;   // KV positions per shared-memory tile
inline constexpr int kAttentionRowTile = 16;  // (query token, head-in-group) rows per block
inline constexpr int kDecodeMaxClusterSplits = 16;  // cluster_merge: the largest cluster

// Chooses num_splits and kv_chunk so that the grid holds about four blocks per multiprocessor
// (decode at small batch), and returns the workspace size in floats.
size_t plan_paged_attention(PagedAttentionParams& p, int num_sms);

// Checks shapes and launches (plus the combine kernel when num_splits > 1 and the kernel does
// not merge its splits itself: split_counters unset, or not the decode kernel).
// head_dim in {16, 32, 64, 128, 256}.
void launch_paged_attention(const PagedAttentionParams& p, cudaStream_t stream);

// Per-head-dim entry points, each instantiated in its own translation unit.
void launch_paged_attention_d16(const PagedAttentionParams& p, cudaStream_t stream);
void launch_paged_attention_d32(const PagedAttentionParams& p, cudaStream_t stream);
void launch_paged_attention_d64(const PagedAttentionParams& p, cudaStream_t stream);
void launch_paged_attention_d128(const PagedAttentionParams& p, cudaStream_t stream);
void launch_paged_attention_d256(const PagedAttentionParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
