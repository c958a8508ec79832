// Graph padding of decode batches: the batch sizes graphs are captured for, and a padded decode
// batch (fixed-width block tables, padding rows that store nothing) giving the same logits for
// the real rows as the unpadded batch, on the CPU model.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/model_runner.h"
#include "kernels/backend.h"
#include "model/model.h"
#include "tiny_model.h"

namespace hardkv {
namespace {

TEST(DecodePadding, GraphBatchSizes) {
  const std::vector<std::pair<int, int>> cases = {{1, 1},  {2, 2},   {3, 4},   {4, 4},  {5, 8},
                                                  {8, 8},  {9, 16},  {16, 16}, {17, 24},
                                                  {255, 256}, {256, 256}, {257, 264}};
  for (auto [n, want] : cases) EXPECT_EQ(graph_batch_size(n), want) << "n=" << n;
}

TEST(DecodePadding, PaddedBatchLayout) {
  ForwardBatch b;
  b.token_ids = {5, 6};
  b.positions = {9, 3};
  b.slot_mapping = {41, 14};
  b.query_indptr = {0, 1, 2};
  b.kv_lens = {10, 4};
  b.block_indptr = {0, 3, 4};
  b.block_indices = {2, 7, 10, 3};
  b.logits_indices = {0, 1};
  const ForwardBatch p = pad_decode_batch(b, 4, 16, 4);  // 4 block entries per row
  EXPECT_EQ(p.token_ids, (std::vector<int32_t>{5, 6, 0, 0}));
  EXPECT_EQ(p.positions, (std::vector<int32_t>{9, 3, 0, 0}));
  EXPECT_EQ(p.slot_mapping, (std::vector<int32_t>{41, 14, -1, -1}));
  EXPECT_EQ(p.query_indptr, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(p.kv_lens, (std::vector<int32_t>{10, 4, 1, 1}));
  EXPECT_EQ(p.block_indptr, (std::vector<int32_t>{0, 4, 8, 12, 16}));
  EXPECT_EQ(p.block_indices,
            (std::vector<int32_t>{2, 7, 10, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p.logits_indices, (std::vector<int32_t>{0, 1, 2, 3}));
}

// Three sequences prefilled into a CPU KV pool, then one decode step run plain and padded to 8
// rows: the real rows' logits must agree, and padding must not write the cache.
TEST(DecodePadding, PaddedDecodeGivesTheSameLogits) {
  auto be = make_cpu_backend();
  auto model = Model::load(test::tiny_model_dir(), *be);
  const int bs = 4;
  KVCache kv = model->allocate_kv_cache(64, bs);
  const std::vector<int> lens = {7, 13, 2};
  const std::vector<std::vector<int32_t>> tables = {{5, 1}, {0, 9, 3, 4}, {8}};
  auto slot = [&](int s, int p) { return tables[s][p / bs] * bs + p % bs; };
  ForwardBatch pre;
  pre.query_indptr = {0};
  pre.block_indptr = {0};
  for (int s = 0; s < 3; ++s) {
    for (int p = 0; p < lens[s]; ++p) {
      pre.token_ids.push_back((s * 31 + p * 7) % 200);
      pre.positions.push_back(p);
      pre.slot_mapping.push_back(slot(s, p));
    }
    pre.query_indptr.push_back(static_cast<int32_t>(pre.token_ids.size()));
    pre.kv_lens.push_back(lens[s]);
    const int nb = (lens[s] + bs - 1) / bs;
    pre.block_indices.insert(pre.block_indices.end(), tables[s].begin(), tables[s].begin() + nb);
    pre.block_indptr.push_back(static_cast<int32_t>(pre.block_indices.size()));
    pre.logits_indices.push_back(pre.query_indptr.back() - 1);
  }
  model->forward(pre, kv);
  be->release_scratch();

  ForwardBatch dec;
  dec.query_indptr = {0};
  dec.block_indptr = {0};
  for (int s = 0; s < 3; ++s) {
    dec.token_ids.push_back(100 + s);
    dec.positions.push_back(lens[s]);
    dec.slot_mapping.push_back(slot(s, lens[s]));
    dec.query_indptr.push_back(s + 1);
    dec.kv_lens.push_back(lens[s] + 1);
    const int nb = (lens[s] + 1 + bs - 1) / bs;
    dec.block_indices.insert(dec.block_indices.end(), tables[s].begin(), tables[s].begin() + nb);
    dec.block_indptr.push_back(static_cast<int32_t>(dec.block_indices.size()));
    dec.logits_indices.push_back(s);
  }
  const Tensor plain = be->download(model->forward(dec, kv));
  be->release_scratch();
  const std::vector<float> cache_before(kv.k[0].data_as<float>(),
                                        kv.k[0].data_as<float>() + kv.k[0].numel());
  const Tensor padded = be->download(model->forward(pad_decode_batch(dec, 8, 32, bs), kv));
  be->release_scratch();
  // The padded step rewrote the 3 real slots (with values equal up to GEMM rounding) and
  // nothing else.
  const float* k0 = kv.k[0].data_as<float>();
  const int64_t per_slot = kv.k[0].numel() / (64 * bs);
  for (int64_t i = 0; i < kv.k[0].numel(); ++i) {
    const int64_t sl = i / per_slot;
    const bool real = sl == dec.slot_mapping[0] || sl == dec.slot_mapping[1] ||
                      sl == dec.slot_mapping[2];
    if (real) {
      ASSERT_NEAR(k0[i], cache_before[i], 1e-5f * (1.0f + std::fabs(cache_before[i])));
    } else {
      ASSERT_EQ(k0[i], cache_before[i]) << "slot " << sl << " was written by padding";
    }
  }
  ASSERT_EQ(padded.dim(0), 8);
  const int64_t vocab = plain.dim(1);
  for (int r = 0; r < 3; ++r) {
    for (int64_t j = 0; j < vocab; ++j) {
      const float a = plain.data_as<float>()[r * vocab + j];
      const float b = padded.data_as<float>()[r * vocab + j];
      ASSERT_NEAR(a, b, 1e-4f * (1.0f + std::fabs(a))) << "row " << r << " logit " << j;
    }
  }
}

}  // namespace
}  // namespace hardkv
