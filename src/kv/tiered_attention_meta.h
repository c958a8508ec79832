// TieredAttentionMeta: the flat int32 metadata of one step's attention over the HARD-KV tiers
// (condensed head-pages minus masked tokens, and the dense tier), built on the host once per step
// by HeadwiseKV::build_attention_meta and read by every layer's tiered attention.
#pragma once

#include <cstdint>
#include <vector>

namespace hardkv::kv {

// Sequence s owns query rows [query_indptr[s], query_indptr[s+1]) (the step's new tokens, the
// last q_len_s tokens of the sequence, all in the dense tier).
//
// Dense tier of sequence s: its block table is dense_block_indices[dense_block_indptr[s] ..
// dense_block_indptr[s+1]); the table's token order starts at the first slot of its first block.
// Live dense tokens are table tokens [dense_start[s], dense_start[s] + dense_len[s]); table token
// t lives in slot block_indices[.. + t / block_size] * block_size + t % block_size. Query row j of
// s (q_len_s rows) is table token dense_start + dense_len - q_len_s + j and attends causally to
// table tokens [dense_start, itself].
//
// Condensed + sparse tiers, one segment per (layer, sequence, kv-head), segment index
// g = (layer * num_seqs + s) * num_kv_heads + h: the head's stored tokens 0..cond_len[g]-1, token i
// in page page_indices[page_indptr[g] + i / page_size] at offset i % page_size; token i is masked
// (stored but deselected, not attended) iff bit i % 64 of mask_words[mask_indptr[g] + i / 64] is
// set. Every condensed token is older than every dense token, so no causal mask applies there.
struct TieredAttentionMeta {
  int num_seqs = 0;
  int num_layers = 0;
  int num_kv_heads = 0;
  int page_size = 0;
  int dense_block_size = 0;
  int num_tokens = 0;     // query rows == query_indptr[num_seqs]
  int max_query_len = 0;  // host-side bounds for launch grids
  int max_dense_len = 0;
  int max_cond_len = 0;

  std::vector<int32_t> query_indptr;         // [num_seqs + 1]
  std::vector<int32_t> dense_block_indptr;   // [num_seqs + 1]
  std::vector<int32_t> dense_block_indices;  // [dense_block_indptr[num_seqs]]
  std::vector<int32_t> dense_start;          // [num_seqs]
  std::vector<int32_t> dense_len;            // [num_seqs] live dense tokens incl. the new ones

  std::vector<int32_t> page_indptr;   // [num_layers * num_seqs * num_kv_heads + 1]
  std::vector<int32_t> page_indices;  // [page_indptr.back()] page ids in the layer's pool
  std::vector<int32_t> cond_len;      // [num_layers * num_seqs * num_kv_heads] stored tokens
  std::vector<int32_t> mask_indptr;   // [num_layers * num_seqs * num_kv_heads + 1] word offsets
  std::vector<uint64_t> mask_words;   // [mask_indptr.back()] packed sparse-tier bits

  int segment(int layer_idx, int seq_idx, int kv_head) const {
    return (layer_idx * num_seqs + seq_idx) * num_kv_heads + kv_head;
  }
};

// m padded to num_seqs >= m.num_seqs sequences (a CUDA-graph step of fixed shape): each added
// sequence has one query row, which attends to the single dense token at table slot 0 of block
// dense_block (any valid block id: the row's output is discarded), and no condensed tokens in any
// (layer, kv-head). The real sequences keep their indices, rows and attention; segments are
// renumbered for the new num_seqs. The condensed arrays are padded only when m carries them.
TieredAttentionMeta pad_tiered_meta(const TieredAttentionMeta& m, int num_seqs, int dense_block = 0);

}  // namespace hardkv::kv
