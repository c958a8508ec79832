// pad_tiered_meta (see tiered_attention_meta.h): fixed-shape step metadata for CUDA-graph steps.
#include "kv/tiered_attention_meta.h"

#include <algorithm>

#include "core/error.h"

namespace hardkv::kv {

TieredAttentionMeta pad_tiered_meta(const TieredAttentionMeta& m, int num_seqs, int dense_block) {
  HARDKV_CHECK(num_seqs >= m.num_seqs && dense_block >= 0, kInvalidArgument,
               "cannot pad tiered metadata of {} sequences to {} (dense block {})", m.num_seqs,
               num_seqs, dense_block);
  TieredAttentionMeta p = m;
  p.num_seqs = num_seqs;
  for (int s = m.num_seqs; s < num_seqs; ++s) {
    p.query_indptr.push_back(p.query_indptr.back() + 1);
    p.dense_block_indices.push_back(dense_block);
    p.dense_block_indptr.push_back(static_cast<int32_t>(p.dense_block_indices.size()));
    p.dense_start.push_back(0);
    p.dense_len.push_back(1);
  }
  p.num_tokens = p.query_indptr.back();
  if (num_seqs > m.num_seqs) {
    p.max_query_len = std::max(p.max_query_len, 1);
    p.max_dense_len = std::max(p.max_dense_len, 1);
  }
  if (m.page_indptr.empty()) return p;  // no condensed part to renumber
  const int H = m.num_kv_heads;
  const size_t old_segments = static_cast<size_t>(m.num_layers) * m.num_seqs * H;
  HARDKV_CHECK(m.page_indptr.size() == old_segments + 1 && m.cond_len.size() == old_segments &&
                   m.mask_indptr.size() == old_segments + 1,
               kInvalidArgument, "tiered metadata: condensed arrays do not match {} segments",
               old_segments);
  p.page_indptr.assign(1, 0);
  p.mask_indptr.assign(1, 0);
  p.cond_len.clear();
  for (int l = 0; l < m.num_layers; ++l) {
    for (int s = 0; s < num_seqs; ++s) {
      for (int h = 0; h < H; ++h) {
        if (s < m.num_seqs) {  // the page ids and mask words stay where they are
          const int g = m.segment(l, s, h);
          p.page_indptr.push_back(m.page_indptr[g + 1]);
          p.mask_indptr.push_back(m.mask_indptr[g + 1]);
          p.cond_len.push_back(m.cond_len[g]);
        } else {
          p.page_indptr.push_back(p.page_indptr.back());
          p.mask_indptr.push_back(p.mask_indptr.back());
          p.cond_len.push_back(0);
        }
      }
    }
  }
  return p;
}

}  // namespace hardkv::kv
