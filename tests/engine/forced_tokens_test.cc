// Teacher forcing and log-probabilities through the engine: forced tokens come back as the
// output, and each log-probability equals log_softmax of the model's logits at that position,
// computed here from one plain full-sequence forward of the CPU model. HARD-KV mode with a
// budget above the context gives the same log-probabilities as dense mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "hardkv/llm.h"
#include "kernels/backend.h"
#include "model/model.h"
#include "tiny_model.h"

namespace hardkv {
namespace {

std::vector<int32_t> seq_tokens(int n, int mul, int add) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * mul + add) % 250;
  return t;
}

// log_softmax(logits of position p)[tokens[p + 1]] for p in [prompt_len - 1, n - 1), from one
// prefill of the whole sequence with logits at every position.
std::vector<double> reference_logprobs(const std::vector<int32_t>& tokens, int prompt_len) {
  auto be = make_cpu_backend();
  auto model = Model::load(test::tiny_model_dir(), *be);
  const int n = static_cast<int>(tokens.size());
  const int bs = 4;
  KVCache kv = model->allocate_kv_cache((n + bs - 1) / bs, bs);
  ForwardBatch b;
  b.token_ids = tokens;
  for (int p = 0; p < n; ++p) {
    b.positions.push_back(p);
    b.slot_mapping.push_back(p);
    if (p >= prompt_len - 1 && p < n - 1) b.logits_indices.push_back(p);
  }
  b.query_indptr = {0, n};
  b.kv_lens = {n};
  for (int i = 0; i < (n + bs - 1) / bs; ++i) b.block_indices.push_back(i);
  b.block_indptr = {0, static_cast<int32_t>(b.block_indices.size())};
  const Tensor logits = model->forward(b, kv);
  const int64_t vocab = logits.dim(1);
  std::vector<double> out;
  for (int r = 0; r < logits.dim(0); ++r) {
    const float* row = logits.data_as<float>() + r * vocab;
    double m = row[0];
    for (int64_t j = 1; j < vocab; ++j) m = std::max(m, static_cast<double>(row[j]));
    double z = 0;
    for (int64_t j = 0; j < vocab; ++j) z += std::exp(row[j] - m);
    out.push_back(row[tokens[prompt_len + r]] - m - std::log(z));
  }
  return out;
}

SamplingParams forcing(const std::vector<int32_t>& forced) {
  SamplingParams p;
  p.temperature = 0.8f;  // sampling is bypassed by forcing
  p.seed = 3;
  p.max_tokens = 1000;
  p.ignore_eos = true;
  p.logprobs = true;
  p.forced_tokens = forced;
  return p;
}

TEST(ForcedTokens, ReturnForcedTokensAndTheirLogprobs) {
  const std::vector<int32_t> prompt = seq_tokens(9, 7, 3);
  const std::vector<int32_t> forced = seq_tokens(23, 13, 5);
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), forced.begin(), forced.end());
  const std::vector<double> ref = reference_logprobs(all, static_cast<int>(prompt.size()));

  LLM llm(test::tiny_model_dir(), test::tiny_engine_config());
  // Batched with an unforced request, which must be unaffected by the other's forcing.
  std::vector<std::vector<int32_t>> prompts = {prompt, seq_tokens(5, 3, 1)};
  SamplingParams plain;
  plain.temperature = 0;
  plain.max_tokens = 6;
  plain.ignore_eos = true;
  std::vector<SamplingParams> params = {forcing(forced), plain};
  const auto out = llm.generate(prompts, params, false);
  EXPECT_EQ(out[0].token_ids, forced);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kLength);
  ASSERT_EQ(out[0].logprobs.size(), forced.size());
  for (size_t i = 0; i < forced.size(); ++i) {
    EXPECT_NEAR(out[0].logprobs[i], ref[i], 1e-4) << "token " << i;
  }
  EXPECT_TRUE(out[1].logprobs.empty());  // not asked for
  EXPECT_EQ(out[1].token_ids.size(), 6u);

  // max_tokens shorter than the forced list ends the request first.
  SamplingParams shorter = forcing(forced);
  shorter.max_tokens = 4;
  std::vector<std::vector<int32_t>> one = {prompt};
  const auto cut = llm.generate(one, shorter, false);
  EXPECT_EQ(cut[0].token_ids, std::vector<int32_t>(forced.begin(), forced.begin() + 4));
}

TEST(ForcedTokens, OutOfVocabularyForcedTokenIsARequestError) {
  LLM llm(test::tiny_model_dir(), test::tiny_engine_config());
  std::vector<std::vector<int32_t>> one = {seq_tokens(4, 1, 0)};
  const auto out = llm.generate(one, forcing({1, 2, 1 << 30}), false);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kError);
  EXPECT_NE(out[0].error.find("forced token id"), std::string::npos) << out[0].error;
}

TEST(ForcedTokens, HardModeWithoutEvictionScoresLikeDense) {
  const std::vector<int32_t> prompt = seq_tokens(20, 11, 2);
  const std::vector<int32_t> forced = seq_tokens(40, 17, 9);
  std::vector<std::vector<int32_t>> one = {prompt};
  LLM dense(test::tiny_model_dir(), test::tiny_engine_config());
  const auto d = dense.generate(one, forcing(forced), false);
  EngineConfig hc = test::tiny_engine_config();
  hc.kv_mode = "hard";
  hc.compression.budget = 256;  // above the 60-token context: nothing is evicted
  hc.compression.upper_budget = 512;
  hc.compression.window = 8;
  hc.compression.interval = 8;  // events still run (and must keep everything)
  hc.compression.obs_window = 8;
  hc.compression.page_size = 4;
  LLM hard(test::tiny_model_dir(), hc);
  const auto h = hard.generate(one, forcing(forced), false);
  ASSERT_EQ(h[0].logprobs.size(), d[0].logprobs.size());
  for (size_t i = 0; i < d[0].logprobs.size(); ++i) {
    EXPECT_NEAR(h[0].logprobs[i], d[0].logprobs[i], 1e-5) << "token " << i;
  }
}

}  // namespace
}  // namespace hardkv
