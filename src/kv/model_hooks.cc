// Model-side HARD-KV hooks (see model_hooks.h).
#include "kv/model_hooks.h"

#include "core/error.h"
#include "kv/tiered_attention.h"

namespace hardkv::kv {

void push_observations(HeadwiseKV& kv, std::span<const int64_t> seq_ids,
                       std::span<const int32_t> query_indptr, int layer_idx, const float* q) {
  HARDKV_CHECK(query_indptr.size() == seq_ids.size() + 1, kInvalidArgument,
               "{} sequences need {} query offsets, got {}", seq_ids.size(), seq_ids.size() + 1,
               query_indptr.size());
  const int64_t row = static_cast<int64_t>(kv.config().num_q_heads) * kv.config().head_dim;
  for (size_t i = 0; i < seq_ids.size(); ++i) {
    const int n = query_indptr[i + 1] - query_indptr[i];
    kv.obs_queries(seq_ids[i])
        .push(layer_idx, q == nullptr ? nullptr : q + query_indptr[i] * row, n);
  }
}

void tiered_attention_layer(const HeadwiseKV& kv, const TieredAttentionMeta& meta, int layer_idx,
                            const float* q, const float* dense_k, const float* dense_v, float scale,
                            float* out) {
  TieredAttentionArgs a;
  set_layer_meta(meta, layer_idx, a);
  a.q = q;
  a.out = out;
  a.page_k = kv.page_pool(layer_idx).k_data();
  a.page_v = kv.page_pool(layer_idx).v_data();
  a.dense_k = dense_k;
  a.dense_v = dense_v;
  a.num_q_heads = kv.config().num_q_heads;
  a.head_dim = kv.config().head_dim;
  a.scale = scale;
  tiered_attention(a);
}

}  // namespace hardkv::kv
