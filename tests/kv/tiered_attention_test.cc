// Attention over the tiers equals a plain-loop attention restricted to exactly the kept tokens
// (random sparse-tier masks, page sizes 1/4/16, GQA, decode and prefill after compression), and
// with budget >= context equals dense attention over every token.
#include "kv/tiered_attention.h"

#include <gtest/gtest.h>

#include <limits>
#include <numeric>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kv_sim.h"

namespace hardkv::kv {
namespace {

using testing::Dims;
using testing::Sim;
using testing::test_config;

TEST(MergeAttentionStates, LogSumExpWeights) {
  const float inf = std::numeric_limits<float>::infinity();
  // Row 0: equal lse -> mean. Row 1: b empty -> a. Row 2: both empty -> zeros, lse -inf.
  // Row 3: lse_a = log 1, lse_b = log 3 -> weights 1/4, 3/4.
  const float out_a[] = {1, 2, 5, 6, 7, 8, 1, 0};
  const float out_b[] = {3, 4, 9, 9, 7, 8, 0, 1};
  const float lse_a[] = {0.5f, 2.0f, -inf, 0.0f};
  const float lse_b[] = {0.5f, -inf, -inf, std::log(3.0f)};
  float out[8], lse[4];
  merge_attention_states(out_a, lse_a, out_b, lse_b, 4, 2, out, lse);
  EXPECT_FLOAT_EQ(out[0], 2.0f);
  EXPECT_FLOAT_EQ(out[1], 3.0f);
  EXPECT_FLOAT_EQ(out[2], 5.0f);
  EXPECT_FLOAT_EQ(out[3], 6.0f);
  EXPECT_FLOAT_EQ(lse[1], 2.0f);
  EXPECT_EQ(out[4], 0.0f);
  EXPECT_EQ(out[5], 0.0f);
  EXPECT_EQ(lse[2], -inf);
  EXPECT_FLOAT_EQ(out[6], 0.25f);
  EXPECT_FLOAT_EQ(out[7], 0.75f);
  EXPECT_NEAR(lse[3], std::log(4.0f), 1e-6);
  EXPECT_NEAR(lse[0], 0.5f + std::log(2.0f), 1e-6);
}

struct Shape {
  int page_size, block_size, q_heads, kv_heads, head_dim;
};

class TieredAttentionShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(TieredAttentionShapes, RandomMasksMatchRestrictedDense) {
  const Shape sh = GetParam();
  Dims d;
  d.page_size = sh.page_size;
  d.block_size = sh.block_size;
  d.q_heads = sh.q_heads;
  d.kv_heads = sh.kv_heads;
  d.head_dim = sh.head_dim;
  // Budget above every context: the event moves every token outside the window to head-pages.
  Sim sim(d, test_config(1000, 5, 2), 7 + sh.page_size);
  const std::vector<int64_t> ids = {11, 12, 13};
  const std::vector<int> lens = {37, 9, 60};
  for (size_t i = 0; i < ids.size(); ++i) {
    sim.add(ids[i]);
    sim.append(ids[i], lens[i]);
    sim.event(ids[i]);
    sim.expect_tiers_match(ids[i]);
  }
  // Random masks chosen by the test, never on sinks (the manager does not forbid it; the test
  // just keeps to what an event could produce).
  std::bernoulli_distribution coin(0.4);
  for (int64_t id : ids) {
    Sim::Seq& s = sim.seq(id);
    for (int l = 0; l < d.layers; ++l) {
      for (int h = 0; h < d.kv_heads; ++h) {
        const std::vector<int>& stored = s.stored[l * d.kv_heads + h];
        for (size_t i = 0; i < stored.size(); ++i) {
          if (stored[i] >= 2 && coin(sim.rng())) {
            sim.kv().set_masked(id, l, h, static_cast<int>(i), true);
            s.masked[l * d.kv_heads + h].insert(stored[i]);
          }
        }
      }
    }
  }
  for (int64_t id : ids) sim.expect_tiers_match(id);
  // Decode: one new token per sequence.
  for (int64_t id : ids) sim.append(id, 1);
  EXPECT_LT(sim.max_error(ids, {1, 1, 1}), 2e-6);
  // Prefill after compression: several new tokens, causal over the dense tier.
  for (size_t i = 0; i < ids.size(); ++i) sim.append(ids[i], static_cast<int>(3 + i));
  EXPECT_LT(sim.max_error(ids, {3, 4, 5}), 2e-6);
  // A sequence with no condensed tokens next to compressed ones.
  sim.add(14);
  sim.append(14, 6);
  EXPECT_LT(sim.max_error({11, 14, 13}, {2, 6, 1}), 2e-6);
}

INSTANTIATE_TEST_SUITE_P(PagesBlocksGqa, TieredAttentionShapes,
                         ::testing::Values(Shape{1, 4, 4, 2, 8}, Shape{4, 4, 4, 2, 8},
                                           Shape{16, 4, 4, 2, 8}, Shape{4, 16, 8, 2, 16},
                                           Shape{1, 1, 3, 3, 4}, Shape{16, 8, 6, 1, 8}));

// cpu::paged_attention (the backend reference) over a plain dense cache holding every token of
// the batch, sequence by sequence in blocks of 4.
std::vector<float> full_paged_attention(Sim& sim, const std::vector<int64_t>& ids,
                                        const std::vector<int32_t>& q_lens, int l,
                                        const std::vector<float>& q) {
  const Dims& d = sim.dims();
  const int bs = 4, row = d.kv_heads * d.head_dim;
  std::vector<float> k_cache, v_cache;
  std::vector<int32_t> query_indptr = {0}, kv_lens, block_indptr = {0}, block_indices;
  for (size_t i = 0; i < ids.size(); ++i) {
    const Sim::Seq& s = sim.seq(ids[i]);
    const int blocks = (s.n + bs - 1) / bs;
    for (int b = 0; b < blocks; ++b) {
      block_indices.push_back(static_cast<int32_t>(k_cache.size() / (bs * row)));
      for (int t = b * bs; t < (b + 1) * bs; ++t) {
        for (int e = 0; e < row; ++e) {
          k_cache.push_back(t < s.n ? s.k[l][static_cast<size_t>(t) * row + e] : 0.0f);
          v_cache.push_back(t < s.n ? s.v[l][static_cast<size_t>(t) * row + e] : 0.0f);
        }
      }
    }
    block_indptr.push_back(static_cast<int32_t>(block_indices.size()));
    query_indptr.push_back(query_indptr.back() + q_lens[i]);
    kv_lens.push_back(s.n);
  }
  std::vector<float> out(q.size());
  cpu::PagedAttentionArgs a{};
  a.q = q.data();
  a.k_cache = k_cache.data();
  a.v_cache = v_cache.data();
  a.out = out.data();
  a.query_indptr = query_indptr.data();
  a.kv_lens = kv_lens.data();
  a.block_indptr = block_indptr.data();
  a.block_indices = block_indices.data();
  a.num_seqs = static_cast<int64_t>(ids.size());
  a.num_blocks = static_cast<int64_t>(block_indices.size());
  a.block_size = bs;
  a.num_heads = d.q_heads;
  a.num_kv_heads = d.kv_heads;
  a.head_dim = d.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(d.head_dim));
  cpu::paged_attention(a);
  return out;
}

double max_diff_to_paged(Sim& sim, const std::vector<int64_t>& ids,
                         const std::vector<int32_t>& q_lens) {
  double err = 0;
  for (int l = 0; l < sim.dims().layers; ++l) {
    int rows = 0;
    for (int32_t x : q_lens) rows += x;
    const std::vector<float> q = sim.random_q(rows);
    const std::vector<float> got = sim.tiered(ids, q_lens, l, q);
    const std::vector<float> want = full_paged_attention(sim, ids, q_lens, l, q);
    for (size_t i = 0; i < got.size(); ++i) {
      err = std::max(err, std::isfinite(got[i]) ? std::abs(double(got[i]) - want[i]) : 1e30);
    }
  }
  return err;
}

// Budget >= context: the tiered cache attends to every token, so it equals full attention.
// (pyramid is left out: its deeper layers get quotas below the budget by design.)
TEST(TieredAttention, NoEvictionEqualsFullAttention) {
  for (const auto& [strategy, allocation] : std::vector<std::pair<std::string, std::string>>{
           {"attn", "uniform"}, {"rkv", "hard"}, {"snapkv", "adakv"}, {"h2o", "uniform"}}) {
    for (int page_size : {1, 4, 16}) {
      SCOPED_TRACE(strategy + "/" + allocation + " P=" + std::to_string(page_size));
      Dims d;
      d.page_size = page_size;
      auto cc = test_config(400, 4, 1, strategy, allocation);
      cc.upper_budget = 400;
      Sim sim(d, cc, 99);
      sim.add(1);
      sim.add(2);
      sim.append(1, 50);
      sim.append(2, 23);
      for (int step = 0; step < 4; ++step) {
        sim.event(1);
        sim.event(2);
        for (int64_t id : {1, 2}) {
          for (int l = 0; l < d.layers; ++l) {
            for (int h = 0; h < d.kv_heads; ++h) {
              std::vector<int> all(sim.seq(id).n);
              std::iota(all.begin(), all.end(), 0);
              ASSERT_EQ(sim.attended(id, l, h), all);
            }
          }
          sim.expect_tiers_match(id);
        }
        sim.append(1, 1);
        sim.append(2, 1);
        EXPECT_LT(sim.max_error({1, 2}, {1, 1}), 2e-6);
        EXPECT_LT(max_diff_to_paged(sim, {1, 2}, {1, 1}), 2e-6);
        sim.append(1, 7);
        sim.append(2, 3);
        EXPECT_LT(sim.max_error({2, 1}, {3, 7}), 2e-6);
        EXPECT_LT(max_diff_to_paged(sim, {2, 1}, {3, 7}), 2e-6);
      }
      EXPECT_EQ(sim.kv().usage(1).masked_tokens, 0);
    }
  }
}

// A graph step pads its tiered metadata to a fixed number of sequences: the real rows attend
// exactly as before (bit-identical, same arithmetic), the segments of every layer are renumbered,
// and each padding row attends its one dense token (its output is the value row it reads).
TEST(TieredAttention, PaddedMetaKeepsTheRealRows) {
  Dims d;
  d.page_size = 4;
  Sim sim(d, test_config(24, 4, 2), 3);
  const std::vector<int64_t> ids = {5, 6, 7};
  for (int64_t id : ids) {
    sim.add(id);
    sim.append(id, 40 + static_cast<int>(id));
    sim.event(id);  // evicts: condensed pages and masks differ per head
    sim.append(id, 1);
  }
  const std::vector<int32_t> q_lens = {1, 1, 1};
  const TieredAttentionMeta meta = sim.kv().build_attention_meta(ids, q_lens);
  const int padded_seqs = 8;
  const TieredAttentionMeta padded = pad_tiered_meta(meta, padded_seqs);
  ASSERT_EQ(padded.num_seqs, padded_seqs);
  ASSERT_EQ(padded.num_tokens, padded_seqs);
  ASSERT_EQ(padded.cond_len.size(), static_cast<size_t>(d.layers) * padded_seqs * d.kv_heads);
  const DenseKVView view = sim.view();
  const int row = d.q_heads * d.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.head_dim));
  for (int l = 0; l < d.layers; ++l) {
    for (int s = 0; s < padded_seqs; ++s) {
      for (int h = 0; h < d.kv_heads; ++h) {
        const int g = padded.segment(l, s, h);
        if (s >= meta.num_seqs) {
          EXPECT_EQ(padded.cond_len[g], 0);
          continue;
        }
        const int old = meta.segment(l, s, h);
        EXPECT_EQ(padded.cond_len[g], meta.cond_len[old]);
        EXPECT_EQ(padded.page_indptr[g + 1] - padded.page_indptr[g],
                  meta.page_indptr[old + 1] - meta.page_indptr[old]);
        EXPECT_EQ(padded.page_indptr[g], meta.page_indptr[old]);
        EXPECT_EQ(padded.mask_indptr[g], meta.mask_indptr[old]);
      }
    }
    std::vector<float> q = sim.random_q(padded_seqs);
    std::vector<float> want(static_cast<size_t>(meta.num_tokens) * row);
    std::vector<float> got(q.size(), std::nanf(""));
    tiered_attention_layer(sim.kv(), meta, l, q.data(), view.k[l], view.v[l], scale, want.data());
    tiered_attention_layer(sim.kv(), padded, l, q.data(), view.k[l], view.v[l], scale, got.data());
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "layer " << l;
    // A padding row sees one token (slot 0 of block 0): its output is that token's value row.
    for (int r = meta.num_tokens; r < padded_seqs; ++r) {
      for (int hq = 0; hq < d.q_heads; ++hq) {
        const int kvh = hq / (d.q_heads / d.kv_heads);
        for (int e = 0; e < d.head_dim; ++e) {
          ASSERT_EQ(got[(static_cast<size_t>(r) * d.q_heads + hq) * d.head_dim + e],
                    view.v[l][static_cast<size_t>(kvh) * d.head_dim + e]);
        }
      }
    }
  }
  EXPECT_THROW(pad_tiered_meta(meta, 2), Error);
}

}  // namespace
}  // namespace hardkv::kv
