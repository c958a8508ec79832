// The engine on the CPU backend with a tiny random model: batch invariance, preemption, prefix
// caching, chunked prefill, per-request errors, stop strings, streaming and abort. Reference
// outputs come from the same engine run in the simplest configuration (one request alone, a big
// pool, no chunking, no prefix cache), which these features must not change.
#include "hardkv/llm.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "kernels/backend.h"
#include "model/model.h"
#include "tiny_model.h"
#include "tokenizer/tokenizer.h"

namespace hardkv {
namespace {

EngineConfig plain_config() { return test::tiny_engine_config(); }

std::vector<std::vector<int32_t>> random_prompts(int n, int min_len, int max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> prompts(n);
  for (auto& p : prompts) {
    p.resize(min_len + rng() % (max_len - min_len + 1));
    for (auto& t : p) t = static_cast<int32_t>(rng() % 256);  // byte tokens
  }
  return prompts;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

SamplingParams seeded(int max_tokens, int64_t seed) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_k = 40;
  p.seed = seed;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// Each prompt generated alone, in the plainest configuration.
std::vector<std::vector<int32_t>> alone(const std::vector<std::vector<int32_t>>& prompts,
                                        const std::vector<SamplingParams>& params) {
  LLM llm(test::tiny_model_dir(), plain_config());
  std::vector<std::vector<int32_t>> outs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<std::vector<int32_t>> one{prompts[i]};
    auto r = llm.generate(one, params[i], false);
    EXPECT_EQ(r[0].finish_reason, FinishReason::kLength) << r[0].error;
    outs.push_back(r[0].token_ids);
  }
  return outs;
}

std::vector<std::vector<int32_t>> together(const std::vector<std::vector<int32_t>>& prompts,
                                           const std::vector<SamplingParams>& params,
                                           const EngineConfig& config, EngineStats* stats) {
  LLM llm(test::tiny_model_dir(), config);
  auto r = llm.generate(prompts, params, false);
  std::vector<std::vector<int32_t>> outs;
  for (auto& o : r) {
    EXPECT_EQ(o.finish_reason, FinishReason::kLength) << o.error;
    outs.push_back(o.token_ids);
  }
  if (stats) *stats = llm.stats();
  return outs;
}

class LLMTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prompts_ = random_prompts(6, 3, 40, 11);
    for (size_t i = 0; i < prompts_.size(); ++i) {
      params_.push_back(i % 2 ? seeded(12 + 3 * i, 100 + i) : greedy(12 + 3 * i));
    }
    if (reference_.empty()) reference_ = alone(prompts_, params_);
  }
  std::vector<std::vector<int32_t>> prompts_;
  std::vector<SamplingParams> params_;
  static std::vector<std::vector<int32_t>> reference_;
};
std::vector<std::vector<int32_t>> LLMTest::reference_;

TEST_F(LLMTest, BatchInvariance) {
  EXPECT_EQ(together(prompts_, params_, plain_config(), nullptr), reference_);
}

TEST_F(LLMTest, PreemptionGivesTheSameOutputs) {
  EngineConfig c = plain_config();
  c.num_kv_blocks = 20;  // 80 token slots for 6 requests of up to 67 tokens
  EngineStats stats;
  EXPECT_EQ(together(prompts_, params_, c, &stats), reference_);
  EXPECT_GT(stats.num_preemptions, 0) << "the pool was not small enough to force preemption";
}

TEST_F(LLMTest, ChunkedPrefillGivesTheSameOutputs) {
  for (int chunk : {1, 3, 7, 16}) {
    EngineConfig c = plain_config();
    c.max_num_batched_tokens = chunk;
    EXPECT_EQ(together(prompts_, params_, c, nullptr), reference_) << "chunk " << chunk;
  }
}

TEST_F(LLMTest, PrefixCachingHitsAndGivesTheSameOutputs) {
  // Repeated and extended prompts, run one after another so that the earlier ones are cached.
  std::vector<std::vector<int32_t>> prompts = {prompts_[1], prompts_[1], prompts_[1], prompts_[3]};
  prompts[2].insert(prompts[2].end(), {5, 6, 7, 8, 9, 10, 11});
  std::vector<SamplingParams> params = {greedy(10), seeded(10, 5), greedy(10), greedy(10)};
  const auto ref = alone(prompts, params);
  EngineConfig c = plain_config();
  c.enable_prefix_caching = true;
  LLM llm(test::tiny_model_dir(), c);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<std::vector<int32_t>> one{prompts[i]};
    auto r = llm.generate(one, params[i], false);
    EXPECT_EQ(r[0].token_ids, ref[i]) << "prompt " << i;
    if (i == 1 || i == 2) {
      EXPECT_GT(r[0].metrics.num_cached_prompt_tokens, 0) << "prompt " << i;
    }
  }
  EXPECT_GT(llm.stats().prefix_hit_tokens, 0);
  // And all together (shared blocks within a batch, with preemption-free big pool).
  EngineStats stats;
  EXPECT_EQ(together(prompts, params, c, &stats), ref);
}

TEST(LLM, BadRequestsGetErrorsAndTheRestCompletes) {
  EngineConfig c = plain_config();
  c.max_model_len = 32;
  LLM llm(test::tiny_model_dir(), c);
  std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3}, std::vector<int32_t>(40, 5), {}, {4, 5, 6}, {7, 8}, {1000000}};
  std::vector<SamplingParams> params(prompts.size(), greedy(5));
  params[3].temperature = -1.0f;
  auto r = llm.generate(prompts, params, false);
  ASSERT_EQ(r.size(), prompts.size());
  EXPECT_EQ(r[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(r[0].token_ids.size(), 5u);
  EXPECT_EQ(r[1].finish_reason, FinishReason::kError);
  EXPECT_NE(r[1].error.find("max_model_len"), std::string::npos) << r[1].error;
  EXPECT_EQ(r[2].finish_reason, FinishReason::kError);
  EXPECT_NE(r[2].error.find("empty"), std::string::npos) << r[2].error;
  EXPECT_EQ(r[3].finish_reason, FinishReason::kError);
  EXPECT_NE(r[3].error.find("temperature"), std::string::npos) << r[3].error;
  EXPECT_EQ(r[4].finish_reason, FinishReason::kLength);
  EXPECT_EQ(r[5].finish_reason, FinishReason::kError);
  EXPECT_NE(r[5].error.find("vocabulary"), std::string::npos) << r[5].error;
  // The length limit: a prompt of 30 tokens can grow to max_model_len (32) only.
  std::vector<std::vector<int32_t>> longp = {std::vector<int32_t>(30, 9)};
  auto l = llm.generate(longp, greedy(100), false);
  EXPECT_EQ(l[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(l[0].token_ids.size(), 2u);
}

TEST(LLM, StopStringsCutTheTextAndStreamingMatchesIt) {
  LLM llm(test::tiny_model_dir(), plain_config());
  const std::vector<std::string> prompt = {"Hello, world"};
  SamplingParams p = greedy(40);
  auto full = llm.generate(prompt, p, false);
  ASSERT_EQ(full[0].finish_reason, FinishReason::kLength);
  const std::string& text = full[0].text;
  ASSERT_GE(text.size(), 6u) << "random model produced too little text";
  EXPECT_EQ(text, llm.tokenizer().decode(full[0].token_ids, true));

  // A stop string taken from the middle of the greedy text.
  const std::string stop = text.substr(text.size() / 2, 2);
  p.stop = {stop};
  std::string streamed;
  bool saw_final = false;
  const int64_t id = llm.add_request(prompt[0], p, [&](const StreamEvent& ev) {
    EXPECT_FALSE(saw_final);
    streamed += ev.text;
    saw_final = ev.finished;
  });
  std::vector<RequestOutput> outs;
  while (llm.has_unfinished()) {
    for (auto& o : llm.step()) outs.push_back(std::move(o));
  }
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].request_id, id);
  EXPECT_EQ(outs[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(outs[0].text, text.substr(0, text.find(stop)));
  EXPECT_TRUE(saw_final);
  EXPECT_EQ(streamed, outs[0].text);
}

TEST(LLM, AbortEndsARequestAndOthersContinue) {
  LLM llm(test::tiny_model_dir(), plain_config());
  const int64_t a = llm.add_request(std::vector<int32_t>{1, 2, 3}, greedy(50));
  const int64_t b = llm.add_request(std::vector<int32_t>{4, 5, 6}, greedy(8));
  llm.step();
  llm.step();
  EXPECT_TRUE(llm.abort(a));
  EXPECT_FALSE(llm.abort(a));
  std::map<int64_t, RequestOutput> outs;
  while (llm.has_unfinished()) {
    for (auto& o : llm.step()) outs[o.request_id] = std::move(o);
  }
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[a].finish_reason, FinishReason::kAbort);
  EXPECT_LT(outs[a].token_ids.size(), 50u);
  EXPECT_EQ(outs[b].finish_reason, FinishReason::kLength);
  EXPECT_EQ(outs[b].token_ids.size(), 8u);
  EXPECT_GE(outs[b].metrics.time_to_first_token, 0);
  EXPECT_GE(outs[b].metrics.time_per_output_token, 0);
  EXPECT_EQ(llm.stats().num_used_blocks_now, 0);
}

}  // namespace
}  // namespace hardkv

namespace hardkv {
namespace {

// Independent reference: a plain loop over Model::forward with blocks in order (slot == position),
// whole-prompt prefill then one token per step, argmax written here.
std::vector<int32_t> plain_greedy(const std::vector<int32_t>& prompt, int max_tokens) {
  auto backend = make_cpu_backend();
  auto model = Model::load(test::tiny_model_dir(), *backend);
  const int bs = 8;
  const int total = static_cast<int>(prompt.size()) + max_tokens;
  KVCache kv = model->allocate_kv_cache((total + bs - 1) / bs, bs);
  std::vector<int32_t> out;
  std::vector<int32_t> step = prompt;
  int pos = 0;
  for (int i = 0; i < max_tokens; ++i) {
    ForwardBatch b;
    const int n = static_cast<int>(step.size());
    b.token_ids = step;
    for (int j = 0; j < n; ++j, ++pos) {
      b.positions.push_back(pos);
      b.slot_mapping.push_back(pos);
    }
    b.query_indptr = {0, n};
    b.kv_lens = {pos};
    const int used = (pos + bs - 1) / bs;
    b.block_indptr = {0, used};
    for (int j = 0; j < used; ++j) b.block_indices.push_back(j);
    b.logits_indices = {n - 1};
    Tensor logits = backend->download(model->forward(b, kv));
    backend->release_scratch();
    const float* row = logits.data_as<float>();
    int32_t best = 0;
    for (int64_t v = 1; v < model->config().vocab_size; ++v) {
      if (row[v] > row[best]) best = static_cast<int32_t>(v);
    }
    out.push_back(best);
    step = {best};
  }
  return out;
}

TEST(LLM, GreedyMatchesAPlainModelLoop) {
  const auto prompts = random_prompts(3, 5, 30, 99);
  EngineConfig c = plain_config();
  c.max_num_batched_tokens = 7;  // chunked, batched, paged: the engine's whole machinery
  c.num_kv_blocks = 24;
  c.enable_prefix_caching = true;
  LLM llm(test::tiny_model_dir(), c);
  auto outs = llm.generate(prompts, greedy(20), false);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(outs[i].token_ids, plain_greedy(prompts[i], 20)) << "prompt " << i;
  }
}

}  // namespace
}  // namespace hardkv
