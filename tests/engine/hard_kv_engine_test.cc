// The engine in HARD-KV mode (kv_mode "hard", CPU backend, tiny random model): greedy outputs equal
// dense mode when nothing is evicted (batched, chunked prefill, preemption), eviction shrinks
// memory below dense and frees everything at the end, a compressed request never changes another
// request's output, and impossible configurations are rejected with clear messages.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "engine/llm_engine.h"
#include "hardkv/llm.h"
#include "tiny_model.h"

namespace hardkv {
namespace {

EngineConfig dense_config() { return test::tiny_engine_config(); }

EngineConfig hard_config(const std::string& strategy, const std::string& allocation, int budget) {
  EngineConfig c = dense_config();
  c.kv_mode = "hard";
  c.compression.strategy = strategy;
  c.compression.allocation = allocation;
  c.compression.budget = budget;
  c.compression.upper_budget = 2 * budget;
  c.compression.window = 8;
  c.compression.sinks = 1;
  c.compression.interval = 8;
  c.compression.obs_window = 8;
  c.compression.page_size = 4;
  return c;
}

std::vector<std::vector<int32_t>> random_prompts(int n, int min_len, int max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> prompts(n);
  for (auto& p : prompts) {
    p.resize(min_len + rng() % (max_len - min_len + 1));
    for (auto& t : p) t = static_cast<int32_t>(rng() % 256);
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

std::vector<std::vector<int32_t>> run(const EngineConfig& config,
                                      const std::vector<std::vector<int32_t>>& prompts,
                                      int max_tokens) {
  LLM llm(test::tiny_model_dir(), config);
  std::vector<std::vector<int32_t>> out;
  for (const RequestOutput& o : llm.generate(prompts, greedy(max_tokens), false)) {
    EXPECT_TRUE(o.error.empty()) << o.error;
    out.push_back(o.token_ids);
  }
  return out;
}

// --- no eviction: budget >= context -> identical to dense ----------------------------------------

struct Combo {
  const char* strategy;
  const char* allocation;
};

class HardNoEviction : public ::testing::TestWithParam<Combo> {};

TEST_P(HardNoEviction, GreedyOutputsEqualDenseBatched) {
  const auto prompts = random_prompts(5, 3, 40, 11);
  const int max_tokens = 16;  // context <= 56 < budget
  const auto dense = run(dense_config(), prompts, max_tokens);
  const auto hard =
      run(hard_config(GetParam().strategy, GetParam().allocation, 64), prompts, max_tokens);
  ASSERT_EQ(hard.size(), dense.size());
  for (size_t i = 0; i < dense.size(); ++i) {
    ASSERT_EQ(dense[i].size(), static_cast<size_t>(max_tokens));
    EXPECT_EQ(hard[i], dense[i]) << "prompt " << i;
  }
}

TEST_P(HardNoEviction, ChunkedPrefillAndPreemptionEqualDense) {
  const auto prompts = random_prompts(4, 20, 40, 12);
  const int max_tokens = 12;
  const auto dense = run(dense_config(), prompts, max_tokens);
  EngineConfig c = hard_config(GetParam().strategy, GetParam().allocation, 64);
  c.max_num_batched_tokens = 7;  // prefill in chunks, prefill chunks next to decodes
  c.num_kv_blocks = 24;          // 96 slots for 4 x <= 52 tokens: preemption by recompute
  LLM llm(test::tiny_model_dir(), c);
  const std::vector<RequestOutput> outs = llm.generate(prompts, greedy(max_tokens), false);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(outs[i].error.empty()) << outs[i].error;
    EXPECT_EQ(outs[i].token_ids, dense[i]) << "prompt " << i;
  }
  EXPECT_GT(llm.stats().num_preemptions, 0) << "the pool was meant to force a preemption";
}

INSTANTIATE_TEST_SUITE_P(Combos, HardNoEviction,
                         ::testing::Values(Combo{"attn", "uniform"}, Combo{"snapkv", "hard"},
                                           Combo{"rkv", "hard"}),
                         [](const auto& info) {
                           return std::string(info.param.strategy) + "_" + info.param.allocation;
                         });

// --- eviction ------------------------------------------------------------------------------------

// Bytes dense mode would hold for n tokens (no block rounding).
int64_t dense_bytes(const kv::HeadwiseKVConfig& kc, int n) {
  return int64_t{n} * kc.num_layers * kc.num_kv_heads * kc.bytes_per_token_head();
}

class HardEviction : public ::testing::TestWithParam<Combo> {};

TEST_P(HardEviction, MemoryBelowDenseOutputsValidAllFreedAtEnd) {
  const int budget = 24;
  EngineConfig c = hard_config(GetParam().strategy, GetParam().allocation, budget);
  LLMEngine engine(test::tiny_model_dir(), c);
  const HardKVSpace& hard = *engine.hard_kv();
  const kv::HeadwiseKVConfig& kc = hard.kv().config();
  const auto prompts = random_prompts(3, 50, 70, 21);
  const int max_tokens = 40;
  std::vector<int64_t> ids;
  for (const auto& p : prompts) ids.push_back(engine.add_request(p, greedy(max_tokens), {}));
  std::vector<RequestOutput> outs;
  int checked_after_event = 0;
  bool below_dense = false;
  while (engine.has_unfinished()) {
    for (RequestOutput& o : engine.step()) outs.push_back(std::move(o));
    for (int64_t id : ids) {
      if (!hard.kv().has_sequence(id)) continue;
      const kv::SequenceKV& s = hard.kv().sequence(id);
      const kv::KVMemoryUsage u = hard.kv().usage(id);
      if (s.num_events > 0 && u.total_bytes() < dense_bytes(kc, s.num_tokens)) below_dense = true;
      if (s.num_events == 0 || s.steps_since_event != 0) continue;
      // Right after an event: every head attends to fewer tokens than the sequence has, and the
      // counts follow the allocation (c = budget - window - sinks = 15 candidates, L = H = 2):
      // uniform/hard: >= budget per head (uniform: exactly); adakv: the layer's heads share
      // H x budget; pyramid: quotas 2c and 0 over the two layers, so a head's layers sum to
      // L x budget.
      const std::string alloc = GetParam().allocation;
      std::vector<int> layer_sum(kc.num_layers, 0), head_sum(kc.num_kv_heads, 0);
      for (int l = 0; l < kc.num_layers; ++l) {
        for (int h = 0; h < kc.num_kv_heads; ++h) {
          const kv::HeadPages& hp = hard.kv().head(id, l, h);
          const int attended = hp.num_stored() - hp.num_masked + (s.num_tokens - s.dense_begin);
          EXPECT_LT(attended, s.num_tokens) << "layer " << l << " head " << h;
          if (alloc == "uniform") {
            EXPECT_EQ(attended, budget);
          }
          if (alloc == "hard") {
            EXPECT_GE(attended, budget);
          }
          layer_sum[l] += attended;
          head_sum[h] += attended;
        }
        if (alloc == "adakv") {
          EXPECT_EQ(layer_sum[l], kc.num_kv_heads * budget) << "layer " << l;
        }
      }
      if (alloc == "pyramid") {
        for (int h = 0; h < kc.num_kv_heads; ++h) {
          EXPECT_EQ(head_sum[h], kc.num_layers * budget) << "head " << h;
        }
      }
      ++checked_after_event;
    }
  }
  EXPECT_GT(checked_after_event, 0) << "no compression event happened";
  EXPECT_TRUE(below_dense);
  EXPECT_GT(hard.event_totals().events, 0);
  EXPECT_GT(hard.event_totals().tokens_dropped + hard.event_totals().tokens_masked, 0);
  ASSERT_EQ(outs.size(), prompts.size());
  for (const RequestOutput& o : outs) {
    EXPECT_TRUE(o.error.empty()) << o.error;
    ASSERT_EQ(o.token_ids.size(), static_cast<size_t>(max_tokens));
    for (int32_t t : o.token_ids) EXPECT_TRUE(t >= 0 && t < 320) << t;
  }
  // Everything is free.
  EXPECT_EQ(hard.kv().num_sequences(), 0);
  EXPECT_EQ(hard.kv().total_usage().total_bytes(), 0);
  EXPECT_EQ(hard.dense_pool().num_free_blocks(), hard.dense_pool().num_blocks());
  for (int l = 0; l < kc.num_layers; ++l) {
    EXPECT_EQ(hard.kv().page_pool(l).num_used_pages(), 0) << "layer " << l;
  }
  const EngineStats st = engine.stats();
  EXPECT_EQ(st.kv_mode, "hard");
  EXPECT_EQ(st.kv_dense_bytes_now + st.kv_condensed_bytes_now, 0);
  EXPECT_GT(st.kv_compression_events, 0);
}

INSTANTIATE_TEST_SUITE_P(Combos, HardEviction,
                         ::testing::Values(Combo{"attn", "uniform"}, Combo{"snapkv", "hard"},
                                           Combo{"rkv", "hard"}, Combo{"h2o", "adakv"},
                                           Combo{"snapkv", "pyramid"}),
                         [](const auto& info) {
                           return std::string(info.param.strategy) + "_" + info.param.allocation;
                         });

TEST(HardKVEngine, RewriteEveryTimeLeavesNoMaskedTokens) {
  EngineConfig c = hard_config("rkv", "hard", 24);
  c.compression.rewrite_every_time = true;
  LLMEngine engine(test::tiny_model_dir(), c);
  const int64_t id = engine.add_request(random_prompts(1, 60, 60, 5)[0], greedy(30), {});
  int64_t max_sparse = 0;
  while (engine.has_unfinished()) {
    engine.step();
    if (engine.hard_kv()->kv().has_sequence(id)) {
      max_sparse = std::max(max_sparse, engine.hard_kv()->kv().usage(id).masked_tokens);
    }
  }
  EXPECT_EQ(max_sparse, 0);
  EXPECT_GT(engine.hard_kv()->event_totals().events, 1);
}

TEST(HardKVEngine, AbortAfterCompressionFreesEverything) {
  LLMEngine engine(test::tiny_model_dir(), hard_config("snapkv", "uniform", 24));
  const auto prompts = random_prompts(2, 60, 60, 51);
  const int64_t a = engine.add_request(prompts[0], greedy(60), {});
  const int64_t b = engine.add_request(prompts[1], greedy(20), {});
  const kv::HeadwiseKV& kv = engine.hard_kv()->kv();
  std::vector<RequestOutput> outs;
  while (engine.has_unfinished() && (!kv.has_sequence(a) || kv.sequence(a).num_events < 2)) {
    for (RequestOutput& o : engine.step()) outs.push_back(std::move(o));
  }
  ASSERT_TRUE(kv.has_sequence(a)) << "request a finished before its second event";
  const int64_t held_before = kv.total_usage().total_bytes();
  ASSERT_TRUE(engine.abort(a));
  for (RequestOutput& o : engine.step()) outs.push_back(std::move(o));
  EXPECT_FALSE(kv.has_sequence(a));
  EXPECT_LT(kv.total_usage().total_bytes(), held_before);
  while (engine.has_unfinished()) {
    for (RequestOutput& o : engine.step()) outs.push_back(std::move(o));
  }
  bool saw_abort = false, saw_b = false;
  for (const RequestOutput& o : outs) {
    saw_abort |= o.request_id == a && o.finish_reason == FinishReason::kAbort;
    saw_b |= o.request_id == b && o.token_ids.size() == 20u;
  }
  EXPECT_TRUE(saw_abort);
  EXPECT_TRUE(saw_b);
  EXPECT_EQ(kv.num_sequences(), 0);
  EXPECT_EQ(kv.total_usage().total_bytes(), 0);
  EXPECT_EQ(engine.hard_kv()->dense_pool().num_free_blocks(),
            engine.hard_kv()->dense_pool().num_blocks());
}

// --- isolation -----------------------------------------------------------------------------------

TEST(HardKVEngine, CompressedNeighbourDoesNotChangeShortRequest) {
  const EngineConfig c = hard_config("snapkv", "hard", 24);
  const std::vector<int32_t> short_prompt = random_prompts(1, 8, 8, 31)[0];
  const std::vector<int32_t> long_prompt = random_prompts(1, 80, 80, 32)[0];
  const int short_tokens = 12;  // 20 tokens < budget: never compressed
  const auto alone = run(c, {short_prompt}, short_tokens);

  LLMEngine engine(test::tiny_model_dir(), c);
  const int64_t long_id = engine.add_request(long_prompt, greedy(40), {});
  const int64_t short_id = engine.add_request(short_prompt, greedy(short_tokens), {});
  std::vector<int32_t> short_out;
  while (engine.has_unfinished()) {
    for (const RequestOutput& o : engine.step()) {
      if (o.request_id == short_id) short_out = o.token_ids;
    }
  }
  EXPECT_GT(engine.hard_kv()->event_totals().events, 0) << "the long request was not compressed";
  EXPECT_EQ(short_out, alone[0]);
  (void)long_id;
}

// --- statistics ----------------------------------------------------------------------------------

TEST(HardKVEngine, StatsJsonHasSelectionMemoryAndTimes) {
  LLM llm(test::tiny_model_dir(), hard_config("rkv", "hard", 24));
  llm.generate(random_prompts(2, 40, 50, 41), greedy(20), false);
  const std::string js = llm.kv_stats_json();
  for (const char* key : {"\"selection\"", "\"kept_mean\"", "\"temperature_mean\"", "\"memory\"",
                          "\"dense_bytes\"", "\"condensed_bytes\"", "\"sparse_bytes\"",
                          "\"select_seconds\"", "\"apply_seconds\"", "\"compression\""}) {
    EXPECT_NE(js.find(key), std::string::npos) << key << " missing in " << js.substr(0, 200);
  }
  LLM dense(test::tiny_model_dir(), dense_config());
  EXPECT_EQ(dense.kv_stats_json(), "{}");
}

// --- configuration
// ---------------------------------------------------------------------------------

std::string validation_error(const EngineConfig& c) {
  try {
    c.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    return e.message();
  }
  return "";
}

TEST(HardKVEngine, ConfigValidation) {
  EngineConfig c = dense_config();
  c.kv_mode = "sparse";
  EXPECT_NE(validation_error(c).find("kv_mode must be dense or hard"), std::string::npos);

  c = hard_config("rkv", "hard", 64);
  EXPECT_EQ(validation_error(c), "");
  c.backend = "cuda";  // HARD-KV runs on the CUDA backend too (device tiers)
  EXPECT_EQ(validation_error(c), "");

  c = hard_config("rkv", "hard", 64);
  c.compression.budget = 5;  // < window 8 + sinks 1
  const std::string m = validation_error(c);
  EXPECT_NE(m.find("kv_mode hard"), std::string::npos) << m;
  EXPECT_NE(m.find("budget"), std::string::npos) << m;

  c = hard_config("nope", "hard", 64);
  EXPECT_NE(validation_error(c).find("nope"), std::string::npos);

  c = hard_config("rkv", "hard", 64);
  c.num_head_pages = 0;
  EXPECT_NE(validation_error(c).find("num_head_pages"), std::string::npos);

  // Dense mode ignores the compression settings.
  c = dense_config();
  c.compression.budget = 5;
  EXPECT_EQ(validation_error(c), "");

  // The engine constructor validates too.
  c = hard_config("rkv", "hard", 64);
  c.compression.p_attn = 0;
  EXPECT_THROW(LLM(test::tiny_model_dir(), c), Error);
}

}  // namespace
}  // namespace hardkv
