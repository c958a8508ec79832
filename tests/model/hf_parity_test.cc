// Parity with HuggingFace transformers: logits and greedy continuations recorded by
// tools/hf_parity/make_fixtures.py (transformers 5.17, fp32) on tiny random checkpoints of each
// family, recomputed here on the CPU backend through the paged-KV decoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/model.h"

namespace hardkv {
namespace {

const std::string kFixtures = std::string(HARDKV_FIXTURES_DIR) + "/hf/";

// Paged layout of one sequence: block table is a fixed shuffled permutation so that logical and
// physical block order differ.
struct OneSequenceCache {
  KVCache kv;
  std::vector<int32_t> table;
  int block_size;

  OneSequenceCache(const Model& model, int block_size, int max_tokens) : block_size(block_size) {
    const int blocks = (max_tokens + block_size - 1) / block_size;
    kv = model.allocate_kv_cache(blocks + 3, block_size);
    table.resize(blocks);
    std::iota(table.begin(), table.end(), 3);
    std::mt19937 rng(7);
    std::shuffle(table.begin(), table.end(), rng);
  }

  // A batch of `ids` appended at position `start` (prefill when start == 0 and many ids).
  ForwardBatch batch(const std::vector<int32_t>& ids, int start, bool all_logits) const {
    ForwardBatch b;
    const int n = static_cast<int>(ids.size());
    b.token_ids = ids;
    for (int i = 0; i < n; ++i) {
      const int pos = start + i;
      b.positions.push_back(pos);
      b.slot_mapping.push_back(table[pos / block_size] * block_size + pos % block_size);
      if (all_logits || i == n - 1) b.logits_indices.push_back(i);
    }
    b.query_indptr = {0, n};
    b.kv_lens = {start + n};
    const int used = (start + n + block_size - 1) / block_size;
    b.block_indptr = {0, used};
    b.block_indices.assign(table.begin(), table.begin() + used);
    return b;
  }
};

std::vector<int32_t> to_i32(const Tensor& t) {
  EXPECT_EQ(t.dtype(), DType::kI64);
  std::vector<int32_t> out(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<int32_t>(t.data_as<int64_t>()[i]);
  return out;
}

int32_t argmax_row(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

class HfParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfParity, LogitsAndGreedyMatchTransformers) {
  const std::string dir = kFixtures + GetParam();
  auto backend = make_cpu_backend();
  auto model = Model::load(dir, *backend);
  auto ref = SafetensorsFile::open(dir + "/reference.safetensors");
  const int64_t vocab = model->config().vocab_size;
  for (int p = 0;; ++p) {
    const std::string key = "prompt_" + std::to_string(p);
    const TensorInfo* ids_info = ref->find(key + "_ids");
    if (ids_info == nullptr) {
      ASSERT_GT(p, 0) << "no prompts in " << dir;
      break;
    }
    const std::vector<int32_t> ids = to_i32(ref->view(*ids_info));
    const Tensor want = ref->view(*ref->find(key + "_logits"));
    const std::vector<int32_t> want_greedy = to_i32(ref->view(*ref->find(key + "_greedy")));
    ASSERT_EQ(want.shape(), (Shape{static_cast<int64_t>(ids.size()), vocab}));

    for (int block_size : {1, 4, 16}) {
      SCOPED_TRACE(key + " block_size " + std::to_string(block_size));
      OneSequenceCache cache(*model, block_size,
                             static_cast<int>(ids.size() + want_greedy.size()));
      // Prefill: logits of every prompt position.
      Tensor got = backend->download(model->forward(cache.batch(ids, 0, true), cache.kv));
      ASSERT_EQ(got.shape(), want.shape());
      float max_abs = 0.0f, max_diff = 0.0f;
      for (int64_t i = 0; i < want.numel(); ++i) {
        max_abs = std::max(max_abs, std::fabs(want.data_as<float>()[i]));
        max_diff = std::max(max_diff, std::fabs(want.data_as<float>()[i] - got.data_as<float>()[i]));
      }
      EXPECT_LE(max_diff, 1e-4f * max_abs) << "max |logit| " << max_abs;
      // Greedy decode one token per step through the paged cache.
      std::vector<int32_t> greedy;
      int32_t next = argmax_row(got.data_as<float>() + (ids.size() - 1) * vocab, vocab);
      int pos = static_cast<int>(ids.size());
      while (greedy.size() < want_greedy.size()) {
        greedy.push_back(next);
        if (greedy.size() == want_greedy.size()) break;
        Tensor step = backend->download(model->forward(cache.batch({next}, pos++, false), cache.kv));
        next = argmax_row(step.data_as<float>(), vocab);
      }
      EXPECT_EQ(greedy, want_greedy);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, HfParity,
                         ::testing::Values("qwen3", "qwen2", "llama3", "llama2_bias"));

}  // namespace
}  // namespace hardkv
