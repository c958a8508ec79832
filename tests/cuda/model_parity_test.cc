// Whole-model parity: random tiny checkpoints (Qwen3 / Llama 3 / Qwen2 features) run on the CPU
// reference and the CUDA backend over the same paged batches (two sequences: batched prefill,
// then batched decode fed with the CPU's greedy tokens). The greedy tokens must agree wherever
// the CPU's top-2 logit margin exceeds 4x the row's rms logit difference (bf16 noise), and the
// logits must agree to bf16 level.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace hardkv {
namespace {

constexpr int kBlockSize = 16;

// Two sequences sharing one KV pool; sequence s owns blocks [s * blocks_per_seq, ...) in
// reversed order so block tables are not the identity.
struct Batch2 {
  int blocks_per_seq;
  std::vector<std::vector<int32_t>> tokens;  // per sequence, all tokens so far

  int32_t slot(int s, int pos) const {
    const int b = (s + 1) * blocks_per_seq - 1 - pos / kBlockSize;
    return b * kBlockSize + pos % kBlockSize;
  }
  // new_counts[s]: how many of the last tokens of sequence s are new this step.
  ForwardBatch make(const std::vector<int>& new_counts) const {
    ForwardBatch fb;
    fb.query_indptr = {0};
    fb.block_indptr = {0};
    for (size_t s = 0; s < tokens.size(); ++s) {
      const int len = static_cast<int>(tokens[s].size());
      for (int p = len - new_counts[s]; p < len; ++p) {
        fb.token_ids.push_back(tokens[s][p]);
        fb.positions.push_back(p);
        fb.slot_mapping.push_back(slot(static_cast<int>(s), p));
      }
      fb.query_indptr.push_back(static_cast<int32_t>(fb.token_ids.size()));
      fb.kv_lens.push_back(len);
      const int nb = (len + kBlockSize - 1) / kBlockSize;
      for (int b = 0; b < nb; ++b)
        fb.block_indices.push_back(slot(static_cast<int>(s), b * kBlockSize) / kBlockSize);
      fb.block_indptr.push_back(static_cast<int32_t>(fb.block_indices.size()));
      fb.logits_indices.push_back(fb.query_indptr.back() - 1);
    }
    return fb;
  }
};

std::vector<float> logits_host(Backend& be, const Tensor& t) {
  Tensor h = be.download(t);
  return std::vector<float>(h.data_as<float>(), h.data_as<float>() + h.numel());
}

class CudaModelParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaModelParityTest, GreedyTokensMatchCpu) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU model parity skipped";
  const std::string preset = GetParam();
  const auto dir = std::filesystem::temp_directory_path() / ("hardkv_cuda_parity_" + preset);
  RandomCheckpointOptions opts;
  opts.seed = 7;
  write_random_checkpoint(model_preset(preset), dir.string(), opts);

  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend(0);
  auto mc = Model::load(dir.string(), *cpu);
  auto mg = Model::load(dir.string(), *gpu);
  const int64_t vocab = mc->config().vocab_size;
  const int prompt_len[2] = {37, 5};
  const int steps = 24;
  Batch2 batch{(prompt_len[0] + steps) / kBlockSize + 1, {}};
  KVCache kv_c = mc->allocate_kv_cache(2 * batch.blocks_per_seq, kBlockSize);
  KVCache kv_g = mg->allocate_kv_cache(2 * batch.blocks_per_seq, kBlockSize);
  for (int s = 0; s < 2; ++s) {
    std::vector<int32_t> p(prompt_len[s]);
    for (int i = 0; i < prompt_len[s]; ++i) p[i] = (i * 37 + s * 101 + 11) % 256;
    batch.tokens.push_back(p);
  }

  int compared = 0, agreed = 0, ambiguous = 0;
  double err = 0, norm = 0;
  std::vector<int> new_counts = {prompt_len[0], prompt_len[1]};
  for (int step = 0; step <= steps; ++step) {
    const ForwardBatch fb = batch.make(new_counts);
    const std::vector<float> lc = logits_host(*cpu, mc->forward(fb, kv_c));
    const std::vector<float> lg = logits_host(*gpu, mg->forward(fb, kv_g));
    cpu->release_scratch();
    gpu->release_scratch();
    ASSERT_EQ(lc.size(), static_cast<size_t>(2 * vocab));
    for (int s = 0; s < 2; ++s) {
      const float* a = lc.data() + s * vocab;
      const float* b = lg.data() + s * vocab;
      for (int64_t i = 0; i < vocab; ++i) {
        ASSERT_TRUE(std::isfinite(b[i])) << preset << " step " << step << " seq " << s;
        err += (a[i] - b[i]) * (a[i] - b[i]);
        norm += a[i] * a[i];
      }
      const int top_c = static_cast<int>(std::max_element(a, a + vocab) - a);
      const int top_g = static_cast<int>(std::max_element(b, b + vocab) - b);
      std::vector<float> sorted(a, a + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      double row_err = 0;
      for (int64_t i = 0; i < vocab; ++i) row_err += (a[i] - b[i]) * (a[i] - b[i]);
      const double noise = std::sqrt(row_err / vocab);  // rms logit difference of this row
      if (sorted[0] - sorted[1] < 4 * noise) {
        ++ambiguous;  // a near-tie within bf16 noise: either token is a faithful greedy pick
      } else {
        ++compared;
        agreed += top_c == top_g;
        EXPECT_EQ(top_c, top_g) << preset << " step " << step << " seq " << s;
      }
      batch.tokens[s].push_back(top_c);  // both backends continue with the CPU's choice
    }
    new_counts = {1, 1};
  }
  const double nmse = err / norm;
  std::printf("[%s] greedy agreement %d/%d (+%d near-ties skipped), logits NMSE %.3g\n",
              preset.c_str(), agreed, compared, ambiguous, nmse);
  EXPECT_GE(compared, 40);  // of 50 (2 sequences x 25 steps): most steps must be decidable
  EXPECT_LT(nmse, 1e-3) << preset;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaModelParityTest,
                         ::testing::Values("tiny", "tiny-llama", "tiny-qwen2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace hardkv
