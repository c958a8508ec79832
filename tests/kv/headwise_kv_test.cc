// HeadwiseKV bookkeeping: memory accounting per tier (bytes held == sum over heads of stored
// tokens rounded to pages + the dense tail, everything free after the last sequence), isolation
// between sequences, dense-tier growth and retirement, the observation ring, event triggers.
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "kv/model_hooks.h"
#include "kv_sim.h"

namespace hardkv::kv {
namespace {

using testing::Dims;
using testing::Sim;
using testing::test_config;

// Independent expectation of a sequence's bytes from the shadow: condensed pages per head and
// dense blocks from [floor(dense_begin / bs) * bs, n).
void expect_accounting(Sim& sim, int64_t id) {
  const Dims& d = sim.dims();
  const Sim::Seq& s = sim.seq(id);
  const int64_t bpth = 2LL * d.head_dim * 4;
  int64_t pages = 0, stored = 0, masked = 0;
  for (size_t i = 0; i < s.stored.size(); ++i) {
    pages += (static_cast<int64_t>(s.stored[i].size()) + d.page_size - 1) / d.page_size;
    stored += static_cast<int64_t>(s.stored[i].size());
    masked += static_cast<int64_t>(s.masked[i].size());
  }
  const int64_t blocks = (s.n + d.block_size - 1) / d.block_size - s.dense_begin / d.block_size;
  const KVMemoryUsage u = sim.kv().usage(id);
  EXPECT_EQ(u.condensed_pages, pages);
  EXPECT_EQ(u.stored_tokens, stored);
  EXPECT_EQ(u.masked_tokens, masked);
  EXPECT_EQ(u.dense_blocks, blocks);
  EXPECT_EQ(u.condensed_bytes, pages * d.page_size * bpth);
  EXPECT_EQ(u.sparse_bytes, masked * bpth);
  EXPECT_EQ(u.dense_bytes, blocks * d.block_size * d.layers * d.kv_heads * bpth);
  EXPECT_EQ(u.total_bytes(), u.condensed_bytes + u.dense_bytes);
  if (d.page_size == 1) {
    EXPECT_EQ(u.condensed_bytes, stored * bpth);
  }
}

TEST(Accounting, BytesHeldMatchKeptTokensAndEverythingIsFreedAtTheEnd) {
  for (int page_size : {1, 4, 16}) {
    for (bool every_time : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "P " << page_size << " every " << every_time);
      Dims d;
      d.page_size = page_size;
      d.block_size = 8;
      auto cc = test_config(24, 6, 2, "snapkv", "hard");
      cc.rewrite_every_time = every_time;
      cc.rewrite_threshold = 0.4;
      Sim sim(d, cc, 21);
      const std::vector<int64_t> ids = {5, 6, 7};
      for (size_t i = 0; i < ids.size(); ++i) {
        sim.add(ids[i]);
        sim.append(ids[i], 20 + 17 * static_cast<int>(i));
        expect_accounting(sim, ids[i]);
      }
      for (int round = 0; round < 5; ++round) {
        for (int64_t id : ids) {
          sim.event(id);
          expect_accounting(sim, id);
          sim.append(id, 1 + round * 3);
          expect_accounting(sim, id);
        }
      }
      int64_t pages = 0, blocks = 0;
      KVMemoryUsage total;
      for (int64_t id : ids) {
        pages += sim.kv().usage(id).condensed_pages;
        blocks += sim.kv().usage(id).dense_blocks;
      }
      int used_pages = 0;
      for (int l = 0; l < d.layers; ++l) used_pages += sim.kv().page_pool(l).num_used_pages();
      EXPECT_EQ(used_pages, pages);
      EXPECT_EQ(sim.pool().num_blocks() - sim.pool().num_free_blocks(), blocks);
      EXPECT_EQ(sim.kv().total_usage().condensed_pages, pages);
      EXPECT_EQ(sim.kv().total_usage().dense_blocks, blocks);
      sim.free(6);
      EXPECT_FALSE(sim.kv().has_sequence(6));
      sim.free(5);
      sim.free(7);
      for (int l = 0; l < d.layers; ++l) {
        EXPECT_EQ(sim.kv().page_pool(l).num_free_pages(), d.num_pages);
      }
      EXPECT_EQ(sim.pool().num_free_blocks(), d.num_blocks);
      EXPECT_EQ(sim.kv().total_usage().total_bytes(), 0);
    }
  }
}

TEST(Accounting, DestructorReturnsDenseBlocksToTheAllocator) {
  DenseBlockPool pool(16, 4);
  {
    HeadwiseKVConfig c;
    c.num_layers = 1;
    c.num_kv_heads = 1;
    c.num_q_heads = 1;
    c.head_dim = 4;
    c.num_pages = 4;
    HeadwiseKV kv(c, pool);
    kv.add_sequence(1);
    kv.append_tokens(1, 10);
    EXPECT_EQ(pool.num_free_blocks(), 13);
  }
  EXPECT_EQ(pool.num_free_blocks(), 16);
}

// Compressing, rewriting and growing one sequence never changes another's K/V or attention.
TEST(Isolation, CompressingOneSequenceLeavesAnotherUnchanged) {
  Dims d;
  d.page_size = 2;
  auto cc = test_config(16, 4, 2, "rkv", "hard");
  cc.rewrite_every_time = true;
  Sim sim(d, cc, 31);
  sim.add(1);
  sim.add(2);
  sim.append(1, 50);
  sim.append(2, 45);
  sim.event(1);
  sim.event(2);
  sim.append(2, 3);
  const std::vector<float> q = sim.random_q(3);
  std::vector<std::vector<float>> alone, keys;
  for (int l = 0; l < d.layers; ++l) {
    alone.push_back(sim.tiered({2}, {3}, l, q));
    for (int h = 0; h < d.kv_heads; ++h) {
      const HeadPages& hp = sim.kv().head(2, l, h);
      std::vector<float> rows;
      for (int i = 0; i < hp.num_stored(); ++i) {
        const float* k = sim.kv().page_pool(l).k_row(hp.pages[i / 2], i % 2);
        const float* v = sim.kv().page_pool(l).v_row(hp.pages[i / 2], i % 2);
        rows.insert(rows.end(), k, k + d.head_dim);
        rows.insert(rows.end(), v, v + d.head_dim);
      }
      keys.push_back(rows);
    }
  }
  const KVMemoryUsage usage2 = sim.kv().usage(2);
  // Churn sequence 1: events with rewrites (pages freed and reused), growth, a new sequence.
  for (int round = 0; round < 4; ++round) {
    sim.append(1, 9);
    sim.event(1);
  }
  sim.add(3);
  sim.append(3, 30);
  sim.event(3);
  sim.free(3);
  sim.append(1, 1);
  for (int l = 0; l < d.layers; ++l) {
    EXPECT_EQ(sim.tiered({2}, {3}, l, q), alone[l]) << "layer " << l;
    for (int h = 0; h < d.kv_heads; ++h) {
      const HeadPages& hp = sim.kv().head(2, l, h);
      std::vector<float> rows;
      for (int i = 0; i < hp.num_stored(); ++i) {
        const float* k = sim.kv().page_pool(l).k_row(hp.pages[i / 2], i % 2);
        const float* v = sim.kv().page_pool(l).v_row(hp.pages[i / 2], i % 2);
        rows.insert(rows.end(), k, k + d.head_dim);
        rows.insert(rows.end(), v, v + d.head_dim);
      }
      EXPECT_EQ(rows, keys[l * d.kv_heads + h]);
    }
    // In a batch with sequence 1, sequence 2's rows are the same as alone.
    std::vector<float> q_batch = sim.random_q(1);
    q_batch.insert(q_batch.end(), q.begin(), q.end());
    const std::vector<float> batch = sim.tiered({1, 2}, {1, 3}, l, q_batch);
    const size_t row = static_cast<size_t>(d.q_heads) * d.head_dim;
    EXPECT_EQ(std::vector<float>(batch.begin() + row, batch.end()), alone[l]);
  }
  EXPECT_EQ(sim.kv().usage(2).total_bytes(), usage2.total_bytes());
  EXPECT_LT(sim.max_error({1, 2}, {1, 3}), 2e-6);
}

HeadwiseKVConfig small_kv_config() {
  HeadwiseKVConfig c;
  c.num_layers = 1;
  c.num_kv_heads = 2;
  c.num_q_heads = 4;
  c.head_dim = 4;
  c.page_size = 4;
  c.num_pages = 8;
  c.obs_window = 3;
  return c;
}

// The condensed version moves with every condensed/sparse change and only then, and a meta built
// without its condensed part has the same dense part.
TEST(AttentionMeta, CondensedVersionAndDensePartOnly) {
  Dims d;
  Sim sim(d, test_config(16, 4, 2), 41);
  sim.add(1);
  sim.append(1, 40);
  HeadwiseKV& kv = sim.kv();
  uint64_t v = kv.condensed_version();
  sim.append(1, 3);  // dense tier only
  EXPECT_EQ(kv.condensed_version(), v);
  sim.event(1);
  EXPECT_NE(kv.condensed_version(), v);
  v = kv.condensed_version();
  kv.set_masked(1, 0, 0, 0, true);
  EXPECT_NE(kv.condensed_version(), v);
  v = kv.condensed_version();
  kv.rewrite_head(1, 0, 0);
  EXPECT_NE(kv.condensed_version(), v);
  const std::vector<int64_t> ids = {1};
  const std::vector<int32_t> q = {1};
  const TieredAttentionMeta full = kv.build_attention_meta(ids, q);
  const TieredAttentionMeta dense = kv.build_attention_meta(ids, q, /*with_condensed=*/false);
  EXPECT_EQ(dense.query_indptr, full.query_indptr);
  EXPECT_EQ(dense.dense_block_indices, full.dense_block_indices);
  EXPECT_EQ(dense.dense_start, full.dense_start);
  EXPECT_EQ(dense.dense_len, full.dense_len);
  EXPECT_EQ(dense.max_dense_len, full.max_dense_len);
  EXPECT_FALSE(full.page_indices.empty());
  EXPECT_TRUE(dense.page_indices.empty() && dense.page_indptr.empty() && dense.cond_len.empty());
}

TEST(DenseTier, SlotsGrowthRetirementAndOutOfMemory) {
  DenseBlockPool pool(5, 4);
  HeadwiseKV kv(small_kv_config(), pool);
  kv.add_sequence(1);
  EXPECT_EQ(kv.dense_blocks_needed(1, 9), 3);
  const std::vector<int32_t> slots = kv.append_tokens(1, 9);
  ASSERT_EQ(slots.size(), 9u);
  const std::vector<int32_t>& table = kv.sequence(1).dense_blocks;
  ASSERT_EQ(table.size(), 3u);
  for (int p = 0; p < 9; ++p) {
    EXPECT_EQ(slots[p], table[p / 4] * 4 + p % 4);
    EXPECT_EQ(kv.dense_slot(1, p), slots[p]);
  }
  // 13 more tokens need 3 more blocks, only 2 are free: check-then-act, nothing changes on failure.
  EXPECT_TRUE(kv.can_append(1, 11));
  EXPECT_FALSE(kv.can_append(1, 13));
  EXPECT_THROW(kv.append_tokens(1, 13), Error);
  EXPECT_EQ(kv.sequence(1).num_tokens, 9);
  EXPECT_EQ(pool.num_free_blocks(), 2);
  // Retiring positions < 7 frees block 0 (positions 0..3) only; block 1 (4..7) still holds 7.
  kv.retire_dense_before(1, 7);
  EXPECT_EQ(pool.num_free_blocks(), 3);
  EXPECT_EQ(kv.sequence(1).dense_base, 4);
  EXPECT_THROW(kv.dense_slot(1, 6), Error);
  EXPECT_EQ(kv.dense_slot(1, 8), slots[8]);
  kv.retire_dense_before(1, 8);
  EXPECT_EQ(pool.num_free_blocks(), 4);
  EXPECT_TRUE(kv.can_append(1, 9));
  const std::vector<int32_t> more = kv.append_tokens(1, 3);
  EXPECT_EQ(kv.dense_slot(1, 11), more[2]);
  EXPECT_THROW(kv.retire_dense_before(1, 5), Error);   // backwards
  EXPECT_THROW(kv.retire_dense_before(1, 13), Error);  // past the end
  kv.free_sequence(1);
  EXPECT_EQ(pool.num_free_blocks(), 5);
  EXPECT_THROW(kv.free_sequence(1), Error);
  EXPECT_THROW(kv.append_tokens(1, 1), Error);
}

TEST(DenseTier, DueForCompression) {
  DenseBlockPool pool(64, 4);
  HeadwiseKV kv(small_kv_config(), pool);
  kv.add_sequence(1);
  kv.append_tokens(1, 10);
  EXPECT_FALSE(kv.due_for_compression(1, /*budget=*/10, /*interval=*/3));
  kv.append_tokens(1, 1);
  EXPECT_TRUE(kv.due_for_compression(1, 10, 3));  // past the budget, no event yet
  kv.note_event(1);
  EXPECT_FALSE(kv.due_for_compression(1, 10, 3));
  kv.append_tokens(1, 1);
  kv.append_tokens(1, 1);
  EXPECT_FALSE(kv.due_for_compression(1, 10, 3));
  kv.append_tokens(1, 1);
  EXPECT_TRUE(kv.due_for_compression(1, 10, 3));
}

TEST(ObsQueries, RingKeepsTheLastRowsOldestFirstPerGroup) {
  ObsQueries obs(2, 3, 4, 2);  // 2 layers, 3 rows, 4 query heads, head_dim 2
  auto rows = [](int first, int n) {
    std::vector<float> q;
    for (int r = first; r < first + n; ++r) {
      for (int h = 0; h < 4; ++h) {
        q.push_back(100.0f * r + h);
        q.push_back(-(100.0f * r + h));
      }
    }
    return q;
  };
  obs.push(0, rows(0, 2).data(), 2);
  EXPECT_EQ(obs.count(0), 2);
  EXPECT_EQ(obs.count(1), 0);
  obs.push(0, rows(2, 2).data(), 2);  // wraps: keeps rows 1, 2, 3
  std::vector<float> out(3 * 2 * 2);
  obs.gather_group(0, 1, 2, out.data());  // kv-head 1 of group 2: query heads 2, 3
  const std::vector<float> want = {102, -102, 103, -103, 202, -202,
                                   203, -203, 302, -302, 303, -303};
  EXPECT_EQ(out, want);
  obs.push(1, rows(10, 5).data(), 5);  // more rows than capacity in one push: rows 12..14
  EXPECT_EQ(obs.count(1), 3);
  std::vector<float> out1(3 * 4 * 2);
  obs.gather_group(1, 0, 4, out1.data());
  EXPECT_EQ(out1[0], 1200.0f);
  EXPECT_EQ(out1[8], 1300.0f);
  EXPECT_EQ(out1[16], 1400.0f);
  EXPECT_EQ(out1[23], -1403.0f);
  EXPECT_THROW(obs.gather_group(0, 2, 2, out.data()), Error);
  obs.clear();
  EXPECT_EQ(obs.count(0), 0);
}

TEST(ObsQueries, PushObservationsSplitsABatchBySequence) {
  DenseBlockPool pool(8, 4);
  HeadwiseKV kv(small_kv_config(), pool);  // obs_window 3, 4 query heads, head_dim 4
  kv.add_sequence(7);
  kv.add_sequence(9);
  std::vector<float> q(6 * 4 * 4);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(i / 16);  // value = row
  const std::vector<int64_t> ids = {9, 7};
  const std::vector<int32_t> indptr = {0, 2, 6};  // seq 9: rows 0, 1; seq 7: rows 2..5
  push_observations(kv, ids, indptr, 0, q.data());
  ASSERT_EQ(kv.obs_queries(9).count(0), 2);
  ASSERT_EQ(kv.obs_queries(7).count(0), 3);
  std::vector<float> out(3 * 2 * 4);
  kv.obs_queries(7).gather_group(0, 0, 2, out.data());
  EXPECT_EQ(out[0], 3.0f);  // rows 3, 4, 5 kept
  EXPECT_EQ(out[8], 4.0f);
  EXPECT_EQ(out[23], 5.0f);
  kv.obs_queries(9).gather_group(0, 1, 2, out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[15], 1.0f);
}

TEST(HeadwiseKVConfig, RejectsImpossibleShapes) {
  DenseBlockPool pool(4, 4);
  auto bad = [&](auto mutate) {
    HeadwiseKVConfig c = small_kv_config();
    mutate(c);
    EXPECT_THROW(HeadwiseKV(c, pool), Error);
  };
  bad([](HeadwiseKVConfig& c) { c.num_q_heads = 3; });
  bad([](HeadwiseKVConfig& c) { c.page_size = 0; });
  bad([](HeadwiseKVConfig& c) { c.num_pages = 0; });
  bad([](HeadwiseKVConfig& c) { c.head_dim = 0; });
  bad([](HeadwiseKVConfig& c) { c.obs_window = 0; });
}

}  // namespace
}  // namespace hardkv::kv
