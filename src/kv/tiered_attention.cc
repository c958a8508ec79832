// CPU tiered attention (see tiered_attention.h): scores and softmax in double, one pass per
// (query row, head) over each tier, then a log-sum-exp merge.
#include "kv/tiered_attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace hardkv::kv {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void check_args(const TieredAttentionArgs& a) {
  HARDKV_CHECK(a.num_kv_heads > 0 && a.num_q_heads % a.num_kv_heads == 0, kInternal,
               "num_q_heads {} is not a multiple of num_kv_heads {}", a.num_q_heads,
               a.num_kv_heads);
  HARDKV_CHECK(a.head_dim > 0 && a.page_size > 0 && a.dense_block_size > 0, kInternal,
               "tiered attention needs head_dim, page_size, block_size > 0");
}

// Softmax-weighted sum over rows given by key_at/value_at (index -> row pointer or null to skip).
template <typename RowFn>
void attend(const float* q, int64_t d, double scale, int64_t n, RowFn&& rows, float* out,
            float* lse) {
  std::vector<double> score(n, kNegInf);
  double max_score = kNegInf;
  for (int64_t t = 0; t < n; ++t) {
    const float* k = rows(t, true);
    if (k == nullptr) continue;
    double dot = 0.0;
    for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(q[i]) * k[i];
    score[t] = dot * scale;
    max_score = std::max(max_score, score[t]);
  }
  if (max_score == kNegInf) {
    for (int64_t i = 0; i < d; ++i) out[i] = 0.0f;
    *lse = -std::numeric_limits<float>::infinity();
    return;
  }
  double denom = 0.0;
  std::vector<double> acc(d, 0.0);
  for (int64_t t = 0; t < n; ++t) {
    if (score[t] == kNegInf) continue;
    const double w = std::exp(score[t] - max_score);
    denom += w;
    const float* v = rows(t, false);
    for (int64_t i = 0; i < d; ++i) acc[i] += w * v[i];
  }
  for (int64_t i = 0; i < d; ++i) out[i] = static_cast<float>(acc[i] / denom);
  *lse = static_cast<float>(max_score + std::log(denom));
}

}  // namespace

void set_layer_meta(const TieredAttentionMeta& m, int layer_idx, TieredAttentionArgs& a) {
  HARDKV_CHECK(layer_idx >= 0 && layer_idx < m.num_layers, kInvalidArgument,
               "layer {} is outside the metadata's {} layers", layer_idx, m.num_layers);
  const int64_t first = static_cast<int64_t>(layer_idx) * m.num_seqs * m.num_kv_heads;
  a.query_indptr = m.query_indptr.data();
  a.dense_block_indptr = m.dense_block_indptr.data();
  a.dense_block_indices = m.dense_block_indices.data();
  a.dense_start = m.dense_start.data();
  a.dense_len = m.dense_len.data();
  a.page_indptr = m.page_indptr.data() + first;
  a.page_indices = m.page_indices.data();
  a.cond_len = m.cond_len.data() + first;
  a.mask_indptr = m.mask_indptr.data() + first;
  a.mask_words = m.mask_words.data();
  a.num_seqs = m.num_seqs;
  a.num_kv_heads = m.num_kv_heads;
  a.page_size = m.page_size;
  a.dense_block_size = m.dense_block_size;
}

void condensed_attention(const TieredAttentionArgs& a, float* out, float* lse) {
  check_args(a);
  const int64_t group = a.num_q_heads / a.num_kv_heads, d = a.head_dim, P = a.page_size;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t q_begin = a.query_indptr[s], q_len = a.query_indptr[s + 1] - q_begin;
#pragma omp parallel for collapse(2) if (q_len * a.num_q_heads > 8)
    for (int64_t j = 0; j < q_len; ++j) {
      for (int64_t h = 0; h < a.num_q_heads; ++h) {
        const int64_t g = s * a.num_kv_heads + h / group;
        const int32_t* pages = a.page_indices + a.page_indptr[g];
        const uint64_t* mask = a.mask_indptr == nullptr ? nullptr : a.mask_words + a.mask_indptr[g];
        const int64_t row = (q_begin + j) * a.num_q_heads + h;
        auto rows = [&](int64_t t, bool key) -> const float* {
          if (mask != nullptr && ((mask[t / 64] >> (t % 64)) & 1u)) return nullptr;
          const int64_t idx = (static_cast<int64_t>(pages[t / P]) * P + t % P) * d;
          return (key ? a.page_k : a.page_v) + idx;
        };
        attend(a.q + row * d, d, a.scale, a.cond_len[g], rows, out + row * d, lse + row);
      }
    }
  }
}

void dense_attention(const TieredAttentionArgs& a, float* out, float* lse) {
  check_args(a);
  const int64_t group = a.num_q_heads / a.num_kv_heads, d = a.head_dim, bs = a.dense_block_size;
  const int64_t kv_row = a.num_kv_heads * d;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t q_begin = a.query_indptr[s], q_len = a.query_indptr[s + 1] - q_begin;
    const int64_t start = a.dense_start[s], len = a.dense_len[s];
    const int64_t nblocks = a.dense_block_indptr[s + 1] - a.dense_block_indptr[s];
    HARDKV_CHECK(q_len <= len && start + len <= nblocks * bs, kInternal,
                 "sequence {}: {} queries, dense tokens [{}, {}) in {} blocks of {}", s, q_len,
                 start, start + len, nblocks, bs);
    const int32_t* table = a.dense_block_indices + a.dense_block_indptr[s];
#pragma omp parallel for collapse(2) if (q_len * a.num_q_heads > 8)
    for (int64_t j = 0; j < q_len; ++j) {
      for (int64_t h = 0; h < a.num_q_heads; ++h) {
        const int64_t kvh = h / group;
        const int64_t visible = len - q_len + j + 1;  // live dense tokens up to this query
        const int64_t row = (q_begin + j) * a.num_q_heads + h;
        auto rows = [&](int64_t i, bool key) -> const float* {
          const int64_t t = start + i;
          const int64_t slot = static_cast<int64_t>(table[t / bs]) * bs + t % bs;
          return (key ? a.dense_k : a.dense_v) + slot * kv_row + kvh * d;
        };
        attend(a.q + row * d, d, a.scale, visible, rows, out + row * d, lse + row);
      }
    }
  }
}

void merge_attention_states(const float* out_a, const float* lse_a, const float* out_b,
                            const float* lse_b, int64_t n, int64_t d, float* out, float* lse_out) {
  for (int64_t r = 0; r < n; ++r) {
    const double la = lse_a[r], lb = lse_b[r];
    const double m = std::max(la, lb);
    float* o = out + r * d;
    if (m == kNegInf) {
      for (int64_t i = 0; i < d; ++i) o[i] = 0.0f;
      if (lse_out != nullptr) lse_out[r] = -std::numeric_limits<float>::infinity();
      continue;
    }
    const double wa = std::exp(la - m), wb = std::exp(lb - m);
    const double denom = wa + wb;
    for (int64_t i = 0; i < d; ++i) {
      o[i] = static_cast<float>((wa * out_a[r * d + i] + wb * out_b[r * d + i]) / denom);
    }
    if (lse_out != nullptr) lse_out[r] = static_cast<float>(m + std::log(denom));
  }
}

void tiered_attention(const TieredAttentionArgs& a) {
  const int64_t rows = static_cast<int64_t>(a.query_indptr[a.num_seqs]) * a.num_q_heads;
  std::vector<float> cond_out(rows * a.head_dim), cond_lse(rows);
  std::vector<float> dense_out(rows * a.head_dim), dense_lse(rows);
  condensed_attention(a, cond_out.data(), cond_lse.data());
  dense_attention(a, dense_out.data(), dense_lse.data());
  merge_attention_states(cond_out.data(), cond_lse.data(), dense_out.data(), dense_lse.data(), rows,
                         a.head_dim, a.out, nullptr);
}

}  // namespace hardkv::kv
