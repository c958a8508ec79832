// CPU paged causal attention with GQA: the reference every GPU attention kernel is checked
// against. Scores and softmax in double for a stable reference.
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void paged_attention(const PagedAttentionArgs& a) {
  HARDKV_CHECK(a.num_kv_heads > 0 && a.num_heads % a.num_kv_heads == 0, kInternal,
               "num_heads {} is not a multiple of num_kv_heads {}", a.num_heads, a.num_kv_heads);
  const int64_t group = a.num_heads / a.num_kv_heads;
  const int64_t d = a.head_dim;
  const int64_t kv_row = a.num_kv_heads * d;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t q_begin = a.query_indptr[s], q_len = a.query_indptr[s + 1] - q_begin;
    const int64_t kv_len = a.kv_lens[s];
    const int64_t nblocks = a.block_indptr[s + 1] - a.block_indptr[s];
    HARDKV_CHECK(q_len <= kv_len && kv_len <= nblocks * a.block_size, kInternal,
                 "sequence {}: {} new tokens, {} kv tokens, {} blocks of {}", s, q_len, kv_len,
                 nblocks, a.block_size);
    const int32_t* table = a.block_indices + a.block_indptr[s];
    // Threads only pay off for big problems: on a busy machine a parallel region waits for its
    // slowest (possibly descheduled) thread, which made small decode steps 10x slower.
    const bool parallel = q_len * a.num_heads * kv_len * d > (int64_t{1} << 22);
#pragma omp parallel for collapse(2) if (parallel)
    for (int64_t j = 0; j < q_len; ++j) {
      for (int64_t h = 0; h < a.num_heads; ++h) {
        const int64_t pos = kv_len - q_len + j;  // this query's position; attends to [0, pos]
        const int64_t kvh = h / group;
        const float* q = a.q + ((q_begin + j) * a.num_heads + h) * d;
        std::vector<double> score(pos + 1);
        double max_score = -INFINITY;
        for (int64_t p = 0; p <= pos; ++p) {
          const int64_t slot = static_cast<int64_t>(table[p / a.block_size]) * a.block_size +
                               p % a.block_size;
          const float* k = a.k_cache + slot * kv_row + kvh * d;
          double dot = 0.0;
          for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(q[i]) * k[i];
          score[p] = dot * a.scale;
          max_score = std::max(max_score, score[p]);
        }
        double denom = 0.0;
        for (int64_t p = 0; p <= pos; ++p) {
          score[p] = std::exp(score[p] - max_score);
          denom += score[p];
        }
        std::vector<double> acc(d, 0.0);
        for (int64_t p = 0; p <= pos; ++p) {
          const int64_t slot = static_cast<int64_t>(table[p / a.block_size]) * a.block_size +
                               p % a.block_size;
          const float* v = a.v_cache + slot * kv_row + kvh * d;
          const double w = score[p] / denom;
          for (int64_t i = 0; i < d; ++i) acc[i] += w * v[i];
        }
        float* o = a.out + ((q_begin + j) * a.num_heads + h) * d;
        for (int64_t i = 0; i < d; ++i) o[i] = static_cast<float>(acc[i]);
      }
    }
  }
}

}  // namespace hardkv::cpu
