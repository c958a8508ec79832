// HARD-KV scoring on the GPU, the expensive part of attn/snapkv/h2o/rkv scoring: per kv-head,
// the observation queries of its GQA group against every candidate key, softmax per query row
// over the candidates only, averaged over rows: a[j] = mean_(obs, g) softmax_j(q . k_j * scale).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace hardkv::cuda {

// Segment g = s * num_kv_heads + h (one layer). Its candidates, in order (= position order, as
// kv::run_compression_event lists them): stored condensed tokens [cond_begin[g], cond_end[g]) of
// its head-pages (token i at page page_indices[page_indptr[g] + i / page_size], offset
// i % page_size), then dense table tokens [dense_cand_start[s], + dense_cand_len[s]) of sequence
// s's block table. Its rows: observation queries obs_indptr[s] .. obs_indptr[s+1]-1 of the query
// heads h * group .. h * group + group - 1. score_indptr[g+1] - score_indptr[g] must equal the
// candidate count and be at most max_candidates; rows at most max_obs * group.
struct HkvScoreParams {
  const __nv_bfloat16* q_obs = nullptr;    // [total_obs, num_q_heads, head_dim] post-RoPE
  const int32_t* obs_indptr = nullptr;     // [num_seqs + 1]
  const __nv_bfloat16* page_k = nullptr;   // [num_pages, page_size, head_dim]
  const __nv_bfloat16* dense_k = nullptr;  // [num_blocks, block_size, num_kv_heads, head_dim]
  const int32_t* page_indptr = nullptr;    // [num_seqs * num_kv_heads + 1]
  const int32_t* page_indices = nullptr;
  const int32_t* cond_begin = nullptr;           // [num_seqs * num_kv_heads]
  const int32_t* cond_end = nullptr;             // [num_seqs * num_kv_heads]
  const int32_t* dense_block_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* dense_block_indices = nullptr;  // [total dense blocks]
  const int32_t* dense_cand_start = nullptr;     // [num_seqs]
  const int32_t* dense_cand_len = nullptr;       // [num_seqs]
  const int32_t* score_indptr = nullptr;         // [num_seqs * num_kv_heads + 1]
  float* scores = nullptr;                       // [score_indptr[last]] a[j], sums to 1
  float* row_stats = nullptr;  // workspace F32 [num_seqs * num_kv_heads, max_obs * group, 2]
  int num_seqs = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int page_size = 0;
  int dense_block_size = 0;
  int max_obs = 0;  // host-side bounds: they size the grids
  int max_candidates = 0;
  float scale = 1.f;
};

// Floats of row_stats the launch needs.
size_t hkv_score_workspace(const HkvScoreParams& p);

// Two passes of bf16 tensor-core Q.K^T (fp32 accumulate): per (segment, 64-row tile) the rows'
// softmax max and sum over all candidates, then per (segment, 64-candidate tile) the column
// means. head_dim in {32, 64, 128, 256}. No host sync: graph-capturable.
void launch_hkv_score(const HkvScoreParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
