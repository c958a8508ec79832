// BlockManager: allocation, reference counts, prefix-cache hits and revival, and the
// check-then-act off-by-one cases reported against nano-vLLM's block manager.
#include "engine/block_manager.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "core/error.h"

namespace hardkv {
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t start) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = start + i;
  return t;
}

Sequence make_seq(int64_t id, std::vector<int32_t> tokens) {
  return Sequence(id, std::move(tokens), SamplingParams{}, 0.0);
}

// Marks everything as computed and registers full blocks, as a forward step followed by
// postprocess would.
void compute_all(BlockManager& bm, Sequence& seq) {
  seq.num_computed_tokens = seq.num_tokens();
  bm.commit(seq);
}

TEST(BlockManager, AllocateAndFreeTrackRefCounts) {
  BlockManager bm(10, 4, true);
  Sequence a = make_seq(0, iota_tokens(10, 100));
  ASSERT_TRUE(bm.can_allocate(a));
  bm.allocate(a);
  ASSERT_EQ(a.block_table.size(), 3u);  // ceil(10 / 4)
  EXPECT_EQ(a.num_computed_tokens, 0);
  EXPECT_EQ(bm.num_free_blocks(), 7);
  for (int id : a.block_table) EXPECT_EQ(bm.ref_count(id), 1);
  bm.free(a);
  EXPECT_TRUE(a.block_table.empty());
  EXPECT_EQ(bm.num_free_blocks(), 10);
  for (int id = 0; id < 10; ++id) EXPECT_EQ(bm.ref_count(id), 0);
}

TEST(BlockManager, SharedPrefixHitsAndRaisesRefCount) {
  BlockManager bm(10, 4, true);
  Sequence a = make_seq(0, iota_tokens(12, 100));
  bm.allocate(a);
  compute_all(bm, a);
  // b shares the first 8 tokens (2 full blocks) and then differs.
  std::vector<int32_t> tb = iota_tokens(8, 100);
  tb.push_back(7);
  tb.push_back(8);
  Sequence b = make_seq(1, tb);
  bm.allocate(b);
  EXPECT_EQ(b.num_cached_tokens, 8);
  EXPECT_EQ(b.num_computed_tokens, 8);
  ASSERT_EQ(b.block_table.size(), 3u);
  EXPECT_EQ(b.block_table[0], a.block_table[0]);
  EXPECT_EQ(b.block_table[1], a.block_table[1]);
  EXPECT_NE(b.block_table[2], a.block_table[2]);
  EXPECT_EQ(bm.ref_count(a.block_table[0]), 2);
  EXPECT_EQ(bm.ref_count(a.block_table[2]), 1);
  EXPECT_EQ(bm.num_free_blocks(), 6);
  const BlockManagerStats s = bm.stats();
  EXPECT_EQ(s.num_queried_tokens, 12 + 10);
  EXPECT_EQ(s.num_hit_tokens, 8);
  EXPECT_NEAR(s.hit_rate(), 8.0 / 22.0, 1e-12);
}

TEST(BlockManager, HashChainsOnThePrefix) {
  // Same second block after a different first block: no hit (the hash covers the prefix).
  BlockManager bm(10, 4, true);
  std::vector<int32_t> ta = {1, 2, 3, 4, 9, 9, 9, 9, 5};
  std::vector<int32_t> tb = {1, 2, 3, 5, 9, 9, 9, 9, 5};
  Sequence a = make_seq(0, ta);
  bm.allocate(a);
  compute_all(bm, a);
  Sequence b = make_seq(1, tb);
  bm.allocate(b);
  EXPECT_EQ(b.num_cached_tokens, 0);
}

TEST(BlockManager, IdenticalPromptLeavesOneTokenToCompute) {
  BlockManager bm(10, 4, true);
  Sequence a = make_seq(0, iota_tokens(8, 0));
  bm.allocate(a);
  compute_all(bm, a);
  Sequence b = make_seq(1, iota_tokens(8, 0));
  bm.allocate(b);
  // Both blocks are cached, but a step must produce logits: only (8 - 1) / 4 = 1 block is reused.
  EXPECT_EQ(b.num_cached_tokens, 4);
  EXPECT_EQ(b.num_uncomputed_tokens(), 4);
  EXPECT_EQ(b.block_table[0], a.block_table[0]);
  EXPECT_NE(b.block_table[1], a.block_table[1]);
}

TEST(BlockManager, FreedCachedBlocksAreRevivable) {
  BlockManager bm(4, 4, true);
  Sequence a = make_seq(0, iota_tokens(9, 50));
  bm.allocate(a);
  compute_all(bm, a);
  const std::vector<int32_t> a_blocks = a.block_table;
  bm.free(a);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  EXPECT_EQ(bm.stats().num_cached_free_blocks_now, 2);
  Sequence c = make_seq(1, iota_tokens(9, 50));
  ASSERT_TRUE(bm.can_allocate(c));
  bm.allocate(c);
  EXPECT_EQ(c.num_cached_tokens, 8);
  EXPECT_EQ(c.block_table[0], a_blocks[0]);
  EXPECT_EQ(c.block_table[1], a_blocks[1]);
  EXPECT_EQ(bm.stats().num_revived_blocks, 2);
  EXPECT_EQ(bm.num_free_blocks(), 1);
}

TEST(BlockManager, ReusedBlockLosesItsCachedIdentity) {
  BlockManager bm(3, 4, true);
  Sequence a = make_seq(0, iota_tokens(12, 0));
  bm.allocate(a);
  compute_all(bm, a);
  bm.free(a);
  Sequence d = make_seq(1, iota_tokens(12, 1000));  // takes all 3 blocks, overwriting a's K/V
  bm.allocate(d);
  bm.free(d);  // d never computed: its blocks carry no hash
  Sequence c = make_seq(2, iota_tokens(12, 0));
  bm.allocate(c);
  EXPECT_EQ(c.num_cached_tokens, 0);  // a stale hash entry would have served overwritten blocks
}

TEST(BlockManager, UncomputedBlocksAreNotServed) {
  // A block is registered only after its K/V is computed (commit), e.g. during chunked prefill.
  BlockManager bm(10, 4, true);
  Sequence a = make_seq(0, iota_tokens(12, 0));
  bm.allocate(a);
  a.num_computed_tokens = 6;  // one chunk of 6 tokens ran: block 0 full, block 1 half
  bm.commit(a);
  Sequence b = make_seq(1, iota_tokens(12, 0));
  bm.allocate(b);
  EXPECT_EQ(b.num_cached_tokens, 4);
}

TEST(BlockManager, CanAllocateChargesRevivedBlocks) {
  // Cache hits on free blocks consume free blocks too; counting them as free over-reports.
  BlockManager bm(4, 4, true);
  Sequence a = make_seq(0, iota_tokens(8, 0));
  bm.allocate(a);
  compute_all(bm, a);
  Sequence hog = make_seq(1, iota_tokens(8, 500));
  bm.allocate(hog);  // 2 blocks in use
  bm.free(a);        // a's 2 blocks: free and cached
  ASSERT_EQ(bm.num_free_blocks(), 2);
  Sequence c = make_seq(2, iota_tokens(12, 0));  // 2 cached blocks + 1 new = 3 free blocks
  EXPECT_FALSE(bm.can_allocate(c));
  EXPECT_THROW(bm.allocate(c), Error);
  EXPECT_TRUE(c.block_table.empty());
  EXPECT_EQ(bm.num_free_blocks(), 2);
  EXPECT_EQ(bm.stats().num_cached_free_blocks_now, 2);
  bm.free(hog);
  EXPECT_TRUE(bm.can_allocate(c));
  bm.allocate(c);
  EXPECT_EQ(c.num_cached_tokens, 8);
}

TEST(BlockManager, AppendAtBlockBoundaries) {
  // Prompt length == block size: the block is full and hashed after prefill; the first sampled
  // token (token index 4) needs a new block, the following ones up to index 7 do not.
  BlockManager bm(3, 4, true);
  Sequence a = make_seq(0, iota_tokens(4, 0));
  bm.allocate(a);
  compute_all(bm, a);
  EXPECT_EQ(a.num_hashed_blocks, 1);
  Sequence hog = make_seq(1, iota_tokens(8, 90));
  bm.allocate(hog);  // pool now empty
  ASSERT_EQ(bm.num_free_blocks(), 0);

  a.append_token(77);  // len 5: token 4 starts block 1
  EXPECT_FALSE(bm.can_append(a));
  EXPECT_THROW(bm.may_append(a), Error);
  EXPECT_EQ(a.block_table.size(), 1u);
  bm.free(hog);
  ASSERT_TRUE(bm.can_append(a));
  bm.may_append(a);
  EXPECT_EQ(a.block_table.size(), 2u);
  compute_all(bm, a);

  hog = make_seq(2, iota_tokens(3, 90));
  bm.allocate(hog);
  ASSERT_EQ(bm.num_free_blocks(), 0);
  for (int len = 6; len <= 8; ++len) {  // tokens 5..7 fill block 1: no new block
    a.append_token(len);
    EXPECT_TRUE(bm.can_append(a)) << "len " << len;
    bm.may_append(a);
    EXPECT_EQ(a.block_table.size(), 2u);
    compute_all(bm, a);
  }
  EXPECT_EQ(a.num_hashed_blocks, 2);  // block 1 became full at len 8 and is registered
  a.append_token(9);                  // len 9: token 8 needs block 2, none free
  EXPECT_FALSE(bm.can_append(a));
}

TEST(BlockManager, NoPrefixCachingNeverHits) {
  BlockManager bm(10, 4, false);
  Sequence a = make_seq(0, iota_tokens(12, 0));
  bm.allocate(a);
  compute_all(bm, a);
  Sequence b = make_seq(1, iota_tokens(12, 0));
  bm.allocate(b);
  EXPECT_EQ(b.num_cached_tokens, 0);
  EXPECT_EQ(bm.stats().num_hit_tokens, 0);
}

// Random operations on a tiny pool: can_* always equals "the act succeeds", and reference counts
// always equal the number of block-table entries naming each block.
TEST(BlockManager, RandomisedCheckThenActIsExact) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 20; ++trial) {
    const int bs = 1 + trial % 5;
    BlockManager bm(8, bs, trial % 3 != 0);
    std::vector<std::unique_ptr<Sequence>> live;
    int64_t next_id = 0;
    for (int op = 0; op < 400; ++op) {
      const int kind = rng() % 4;
      if (kind == 0 || live.empty()) {
        // Few distinct token streams so that prefixes repeat.
        const int n = 1 + rng() % (3 * bs + 2);
        const int32_t base = static_cast<int32_t>(rng() % 3) * 1000;
        auto s = std::make_unique<Sequence>(next_id++, iota_tokens(n, base), SamplingParams{}, 0);
        const bool can = bm.can_allocate(*s);
        bool ok = true;
        try {
          bm.allocate(*s);
        } catch (const Error&) {
          ok = false;
        }
        ASSERT_EQ(can, ok);
        if (ok) live.push_back(std::move(s));
      } else if (kind == 1) {
        Sequence& s = *live[rng() % live.size()];
        s.num_computed_tokens = s.num_tokens();
        bm.commit(s);
        s.append_token(static_cast<int32_t>(s.num_tokens()) + (s.token_ids[0] / 1000) * 1000);
        const bool can = bm.can_append(s);
        bool ok = true;
        try {
          bm.may_append(s);
        } catch (const Error&) {
          ok = false;
        }
        ASSERT_EQ(can, ok);
        if (!ok) s.token_ids.pop_back();
      } else {
        const size_t i = rng() % live.size();
        bm.free(*live[i]);
        live.erase(live.begin() + static_cast<long>(i));
      }
      std::vector<int> refs(8, 0);
      for (auto& s : live) {
        ASSERT_EQ(static_cast<int>(s->block_table.size()), bm.num_blocks_for(s->num_tokens()));
        for (int id : s->block_table) ++refs[id];
      }
      int used = 0;
      for (int id = 0; id < 8; ++id) {
        ASSERT_EQ(bm.ref_count(id), refs[id]);
        used += refs[id] > 0;
      }
      ASSERT_EQ(bm.num_used_blocks(), used);
    }
    for (auto& s : live) bm.free(*s);
    EXPECT_EQ(bm.num_free_blocks(), 8);
  }
}

}  // namespace
}  // namespace hardkv
