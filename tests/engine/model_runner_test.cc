// build_forward_batch: the flat int32 arrays of a mixed step (a prefill chunk, a decode, a
// finishing prefill), written out by hand from the AttentionMeta indexing contract.
#include "engine/model_runner.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace hardkv {
namespace {

TEST(ModelRunner, BuildsFlatBatchOfAMixedStep) {
  const int bs = 4;
  // A: 10-token prompt, first chunk of 6 tokens (no sample). Blocks 7, 2, 9.
  Sequence a(0, {10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, SamplingParams{}, 0);
  a.block_table = {7, 2, 9};
  // B: decoding: 5 tokens, 4 computed, the last sampled token runs. Blocks 3, 5.
  Sequence b(1, {20, 21, 22, 23}, SamplingParams{}, 0);
  b.append_token(24);
  b.num_computed_tokens = 4;
  b.block_table = {3, 5};
  // C: prompt of 6 tokens with 4 cached; the last 2 run and sample. Blocks 1, 0.
  Sequence c(2, {30, 31, 32, 33, 34, 35}, SamplingParams{}, 0);
  c.num_computed_tokens = 4;
  c.block_table = {1, 0};
  SchedulerOutput out;
  out.seqs = {{&a, 6, false}, {&b, 1, true}, {&c, 2, true}};
  out.num_tokens = 9;
  out.num_samples = 2;

  const ForwardBatch fb = build_forward_batch(out, bs);
  EXPECT_EQ(fb.token_ids, (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 24, 34, 35}));
  EXPECT_EQ(fb.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 4, 4, 5}));
  // slot = block * 4 + offset
  EXPECT_EQ(fb.slot_mapping, (std::vector<int32_t>{28, 29, 30, 31, 8, 9, 20, 0, 1}));
  EXPECT_EQ(fb.query_indptr, (std::vector<int32_t>{0, 6, 7, 9}));
  EXPECT_EQ(fb.kv_lens, (std::vector<int32_t>{6, 5, 6}));
  // Only the blocks covering kv_lens: A 2 of 3, B 2, C 2.
  EXPECT_EQ(fb.block_indptr, (std::vector<int32_t>{0, 2, 4, 6}));
  EXPECT_EQ(fb.block_indices, (std::vector<int32_t>{7, 2, 3, 5, 1, 0}));
  EXPECT_EQ(fb.logits_indices, (std::vector<int32_t>{6, 8}));
}

TEST(ModelRunner, TokenSeedsDifferPerPositionAndRequest) {
  EXPECT_NE(token_rng_seed(1, 0), token_rng_seed(1, 1));
  EXPECT_NE(token_rng_seed(1, 0), token_rng_seed(2, 0));
  EXPECT_EQ(token_rng_seed(5, 3), token_rng_seed(5, 3));
}

// A shrinking batch replays a larger graph it already has (within 8 rows or a quarter more), and a
// step whose KV bucket is below a captured one (within a factor of two) replays that one.
TEST(ModelRunner, ReusesCapturedGraphsNearTheNeededShape) {
  const std::vector<std::pair<int, int>> captured = {{256, 1024}, {8, 512}, {64, 2048}, {64, 512}};
  EXPECT_EQ(reuse_graph_batch({}, 16), 16);  // nothing captured
  EXPECT_EQ(reuse_graph_batch(captured, 248), 256);
  EXPECT_EQ(reuse_graph_batch(captured, 208), 256);  // 256 <= 208 * 5 / 4 = 260
  EXPECT_EQ(reuse_graph_batch(captured, 200), 200);  // 256 > max(200 + 8, 250): too much padding
  EXPECT_EQ(reuse_graph_batch(captured, 56), 64);
  EXPECT_EQ(reuse_graph_batch(captured, 4), 8);
  EXPECT_EQ(reuse_graph_batch(captured, 1), 8);
  EXPECT_EQ(reuse_graph_batch(captured, 72), 72);  // never a smaller graph
  EXPECT_EQ(reuse_graph_kv_bound(captured, 64, 512), 512);
  EXPECT_EQ(reuse_graph_kv_bound(captured, 64, 256), 512);
  EXPECT_EQ(reuse_graph_kv_bound(captured, 64, 1024), 2048);
  EXPECT_EQ(reuse_graph_kv_bound(captured, 64, 128), 128);    // 512 is over twice the need
  EXPECT_EQ(reuse_graph_kv_bound(captured, 64, 4096), 4096);  // never a smaller bound
  EXPECT_EQ(reuse_graph_kv_bound(captured, 8, 1024), 1024);   // other batches do not count
}

// What a step stages for its metadata: each int32 array padded to 16 entries, one copy rounded to
// 256 bytes (a padded decode step's block tables dominate it).
TEST(ModelRunner, CountsTheMetadataBytesOfAStep) {
  ForwardBatch b;
  b.token_ids = {1, 2, 3};
  b.positions = {0, 1, 2};
  b.slot_mapping = {0, 1, 2};
  b.logits_indices = {2};
  b.query_indptr = {0, 3};
  b.kv_lens = {3};
  b.block_indptr = {0, 1};
  b.block_indices = {7};
  EXPECT_EQ(forward_metadata_bytes(b), 512u);  // 8 arrays x 16 entries x 4 bytes
  ForwardBatch wide = pad_decode_batch(ForwardBatch{}, 512, 40960, 16);
  // 512 rows x 2,560 block-table entries dominate: 5 MiB and a little.
  EXPECT_EQ(forward_metadata_bytes(wide),
            (4 * 512 + 2 * 528 + 512 + 512 * 2560) * 4 / 256 * 256 + 256);
}

// The start-up warm-up must leave no decode step without a graph: for every batch a step can have
// (1 .. max graph batch) and every KV length, the reuse rules pick a warmed-up key.
TEST(ModelRunner, WarmUpCoversEveryDecodeStepShape) {
  EXPECT_EQ(warmup_graph_batches(512),
            (std::vector<int>{1, 2, 4, 8, 24, 40, 56, 80, 104, 136, 176, 224, 288, 368, 464, 512}));
  EXPECT_EQ(warmup_graph_batches(4), (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(warmup_kv_bounds(4096), (std::vector<int>{256, 512, 1024, 2048, 4096}));
  EXPECT_EQ(warmup_kv_bounds(3000), (std::vector<int>{256, 512, 1024, 2048, 3000}));
  EXPECT_EQ(warmup_kv_bounds(100), (std::vector<int>{100}));
  for (const int max_batch : {1, 3, 8, 100, 512}) {
    for (const int max_len : {100, 3000, 4096}) {
      std::vector<std::pair<int, int>> keys;
      for (int b : warmup_graph_batches(max_batch)) {
        EXPECT_LE(b, max_batch);
        for (int len : warmup_kv_bounds(max_len)) keys.emplace_back(b, len);
      }
      for (int n = 1; graph_batch_size(n) <= max_batch; ++n) {
        const int batch = reuse_graph_batch(keys, graph_batch_size(n));
        for (int len = 1; len <= max_len; len += 37) {
          // The bucket forward_graphed asks for: the next power of two >= 256, at most max_len.
          int need = 256;
          while (need < len) need *= 2;
          need = std::max(std::min(need, max_len), len);
          const int bound = reuse_graph_kv_bound(keys, batch, need);
          EXPECT_TRUE(std::find(keys.begin(), keys.end(), std::make_pair(batch, bound)) !=
                      keys.end())
              << "max batch " << max_batch << " max len " << max_len << ": " << n << " rows, "
              << len << " tokens -> (" << batch << ", " << bound << ") not warmed up";
        }
      }
    }
  }
}

}  // namespace
}  // namespace hardkv
