// Compression events with eviction: the cache's tiers follow a shadow re-derived from the spec
// (candidates, masks, rewrite rule), attention stays equal to the kept-token reference, masked
// tokens can be selected again before a rewrite, a rewrite frees pages without changing
// attention, and a pool too small for the result fails before changing anything.
#include <gtest/gtest.h>

#include "core/error.h"
#include "kv_sim.h"

namespace hardkv::kv {
namespace {

using testing::Dims;
using testing::Sim;
using testing::test_config;

struct Mode {
  const char* strategy;
  const char* allocation;
  double rewrite_threshold;
  bool every_time;
  int page_size;
};

class EvictionModes : public ::testing::TestWithParam<Mode> {};

TEST_P(EvictionModes, TiersFollowShadowAndAttentionMatches) {
  const Mode m = GetParam();
  Dims d;
  d.page_size = m.page_size;
  auto cc = test_config(16, 4, 2, m.strategy, m.allocation);
  cc.rewrite_threshold = m.rewrite_threshold;
  cc.rewrite_every_time = m.every_time;
  Sim sim(d, cc, 1234);
  sim.add(1);
  sim.add(2);
  sim.append(1, 40);  // prefill longer than the budget
  sim.append(2, 25);
  int64_t masked = 0, unmasked = 0, rewrites = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    for (int64_t id : {1, 2}) {
      const CompressionEventResult r = sim.event(id);
      masked += r.tokens_masked;
      unmasked += r.tokens_unmasked;
      rewrites += r.num_rewrites;
      sim.expect_tiers_match(id);
    }
    sim.append(1, 1);
    sim.append(2, 1);
    EXPECT_LT(sim.max_error({1, 2}, {1, 1}), 2e-6);
    sim.append(1, 5);
    sim.append(2, 8);
    EXPECT_LT(sim.max_error({1, 2}, {5, 8}), 2e-6);
  }
  // Uniform: right after an event a head attends to sinks + quota + window = budget tokens;
  // streaming: to sinks + window only.
  if (std::string(m.allocation) == "uniform") {
    sim.event(1);
    const bool streaming = std::string(m.strategy) == "streaming";
    for (int l = 0; l < d.layers; ++l) {
      for (int h = 0; h < d.kv_heads; ++h) {
        EXPECT_EQ(static_cast<int>(sim.attended(1, l, h).size()),
                  streaming ? cc.sinks + cc.window : cc.budget);
      }
    }
  }
  if (std::string(m.strategy) == "h2o") {  // the state is carried (and checked by the shadow)
    double acc = 0;
    for (int l = 0; l < d.layers; ++l) {
      for (int h = 0; h < d.kv_heads; ++h) {
        for (float a : sim.kv().head(1, l, h).accumulated) acc += a;
      }
    }
    EXPECT_GT(acc, 0.0);
  }
  if (m.every_time || m.rewrite_threshold == 0.0) {
    EXPECT_EQ(sim.kv().total_usage().masked_tokens, 0);
  }
  if (!m.every_time && m.rewrite_threshold >= 1.0) {
    EXPECT_EQ(rewrites, 0);
    EXPECT_GT(masked, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    StrategiesAndRewrite, EvictionModes,
    ::testing::Values(Mode{"attn", "uniform", 1.0, false, 4}, Mode{"attn", "uniform", 0.0, true, 1},
                      Mode{"snapkv", "hard", 0.3, false, 4}, Mode{"rkv", "hard", 1.0, false, 16},
                      Mode{"rkv", "adakv", 0.5, false, 1}, Mode{"h2o", "pyramid", 0.0, false, 4},
                      Mode{"h2o", "uniform", 1.0, false, 4},
                      Mode{"streaming", "uniform", 0.5, false, 4}));

// Keys along e0 or e1 and observation queries along one of them make the selection explicit.
std::vector<float> queries_along(int axis, int rows, const Dims& d) {
  std::vector<float> q(static_cast<size_t>(rows) * d.q_heads * d.head_dim, 0.0f);
  for (int r = 0; r < rows * d.q_heads; ++r) q[static_cast<size_t>(r) * d.head_dim + axis] = 8.0f;
  return q;
}

TEST(CautiousUpdate, MaskedTokenIsSelectedAgainBeforeARewrite) {
  for (bool every_time : {false, true}) {
    SCOPED_TRACE(every_time ? "rewrite every time" : "never rewrite");
    Dims d;
    d.layers = 1;
    d.kv_heads = 1;
    d.q_heads = 2;
    auto cc = test_config(6, 2, 1);  // uniform quota: 6 - 2 - 1 = 3 candidates
    cc.rewrite_threshold = 1.0;
    cc.rewrite_every_time = every_time;
    Sim sim(d, cc, 5);
    // Positions 1..3 have keys along e1 (the token under watch is position 2), the rest along e0.
    auto keys = [](int pos, int, int, std::vector<float>& k) {
      std::fill(k.begin(), k.end(), 0.0f);
      k[(pos >= 1 && pos <= 3) ? 1 : 0] = pos == 2 ? 1.0f : 0.9f;
    };
    sim.add(1);
    sim.append(1, 6, keys);  // candidates 1..3: all kept
    sim.event(1);
    sim.expect_tiers_match(1);
    EXPECT_EQ(sim.kv().head(1, 0, 0).positions, (std::vector<int32_t>{0, 1, 2, 3}));
    sim.append(1, 4, keys);  // positions 6..9 along e0; candidates 1..7
    sim.push_obs(1, 0, queries_along(0, 6, d), 6);
    const CompressionEventResult r1 = sim.event(1);
    sim.expect_tiers_match(1);
    // e0 queries keep 4, 5, 6, 7 over 1, 2, 3 (quota 3 of e0 keys, ties to lower positions: 4..6).
    EXPECT_EQ(sim.attended(1, 0, 0), (std::vector<int>{0, 4, 5, 6, 8, 9}));
    const HeadPages& hp = sim.kv().head(1, 0, 0);
    if (every_time) {
      EXPECT_EQ(hp.positions, (std::vector<int32_t>{0, 4, 5, 6}));
      EXPECT_EQ(r1.num_rewrites, 1);
    } else {
      EXPECT_EQ(hp.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6}));
      EXPECT_TRUE(sim.kv().is_masked(1, 0, 0, 2));
      EXPECT_EQ(r1.tokens_masked, 3);
    }
    EXPECT_LT(sim.max_error({1}, {1}), 2e-6);
    // Now the observation queries point along e1: position 2 (strongest on e1) comes back only
    // if it is still stored.
    sim.push_obs(1, 0, queries_along(1, 6, d), 6);
    const CompressionEventResult r2 = sim.event(1);
    sim.expect_tiers_match(1);
    const std::vector<int> att = sim.attended(1, 0, 0);
    const bool has2 = std::find(att.begin(), att.end(), 2) != att.end();
    EXPECT_EQ(has2, !every_time);
    if (!every_time) {
      EXPECT_FALSE(sim.kv().is_masked(1, 0, 0, 2));
      EXPECT_EQ(r2.tokens_unmasked, 3);  // 1, 2, 3 all along e1
    }
    EXPECT_LT(sim.max_error({1}, {1}), 2e-6);
  }
}

TEST(Rewrite, FreesPagesAndLeavesAttentionUnchanged) {
  for (int page_size : {1, 4, 16}) {
    SCOPED_TRACE(::testing::Message() << "P " << page_size);
    Dims d;
    d.page_size = page_size;
    auto cc = test_config(20, 4, 2);
    cc.rewrite_threshold = 1.0;  // never by threshold
    Sim sim(d, cc, 77);
    sim.add(3);
    sim.append(3, 90);
    for (int i = 0; i < 3; ++i) {
      sim.event(3);
      sim.append(3, 30);
    }
    sim.append(3, 1);
    const KVMemoryUsage before = sim.kv().usage(3);
    ASSERT_GT(before.masked_tokens, 0);
    const std::vector<float> q = sim.random_q(1);
    std::vector<std::vector<float>> out_before;
    for (int l = 0; l < d.layers; ++l) out_before.push_back(sim.tiered({3}, {1}, l, q));
    int64_t freed = 0, expected_freed = 0;
    for (int l = 0; l < d.layers; ++l) {
      for (int h = 0; h < d.kv_heads; ++h) {
        Sim::Seq& s = sim.seq(3);
        const int stored = static_cast<int>(s.stored[l * d.kv_heads + h].size());
        const int kept = stored - static_cast<int>(s.masked[l * d.kv_heads + h].size());
        expected_freed += (stored + page_size - 1) / page_size - (kept + page_size - 1) / page_size;
        std::erase_if(s.stored[l * d.kv_heads + h],
                      [&](int p) { return s.masked[l * d.kv_heads + h].count(p) != 0; });
        s.masked[l * d.kv_heads + h].clear();
        freed += sim.kv().rewrite_head(3, l, h);
      }
    }
    sim.expect_tiers_match(3);
    EXPECT_EQ(freed, expected_freed);
    if (page_size == 1) {
      EXPECT_EQ(freed, before.masked_tokens);
    }
    const KVMemoryUsage after = sim.kv().usage(3);
    EXPECT_EQ(after.masked_tokens, 0);
    EXPECT_EQ(after.condensed_pages, before.condensed_pages - freed);
    for (int l = 0; l < d.layers; ++l) {
      const std::vector<float> out = sim.tiered({3}, {1}, l, q);
      for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], out_before[l][i], 1e-6);
    }
    EXPECT_LT(sim.max_error({3}, {1}), 2e-6);
  }
}

TEST(MemoryPressure, OptionRewritesEveryMaskedHead) {
  Dims d;
  auto cc = test_config(16, 4, 2);
  cc.rewrite_threshold = 1.0;
  Sim sim(d, cc, 8);
  sim.add(1);
  sim.append(1, 60);
  sim.event(1);
  sim.append(1, 20);
  sim.event(1);
  ASSERT_GT(sim.kv().usage(1).masked_tokens, 0);
  sim.append(1, 20);
  CompressionEventOptions pressure;
  pressure.memory_pressure = true;
  const CompressionEventResult r = sim.event(1, pressure);
  sim.expect_tiers_match(1);
  EXPECT_GT(r.num_rewrites, 0);
  EXPECT_EQ(sim.kv().usage(1).masked_tokens, 0);
  EXPECT_LT(sim.max_error({1}, {1}), 2e-6);
}

TEST(MemoryPressure, SmallPoolRewritesInsteadOfFailing) {
  Dims d;
  d.layers = 1;
  d.page_size = 1;
  auto cc = test_config(12, 2, 1);  // quota 9 per head
  cc.rewrite_threshold = 1.0;
  // Room for (9 + 1 sinks) tokens per head plus a little: holding masked tokens would not fit.
  d.num_pages = 2 * 12;
  Sim sim(d, cc, 9);
  sim.add(1);
  sim.append(1, 14);
  sim.event(1);
  const compress::Compressor compressor(cc, d.layers);
  int64_t rewrites = 0;
  for (int i = 0; i < 4; ++i) {
    sim.append(1, 9);
    // Past the shadow here (it does not model the pool): the pool bound is what is checked.
    rewrites += run_compression_event(sim.kv(), 1, sim.view(), compressor).num_rewrites;
    EXPECT_LE(sim.kv().page_pool(0).num_used_pages(), d.num_pages);
  }
  EXPECT_GT(rewrites, 0);
}

TEST(MemoryPressure, PoolTooSmallFailsBeforeAnyChange) {
  Dims d;
  d.page_size = 1;
  d.num_pages = 30;  // per layer; 2 heads x 21 kept tokens do not fit
  auto cc = test_config(200, 4, 2);
  Sim sim(d, cc, 10);
  sim.add(1);
  sim.add(2);
  sim.append(1, 25);
  sim.append(2, 10);
  sim.event(2);  // 2 x 6 pages per layer
  const KVMemoryUsage before = sim.kv().usage(1);
  const int free_before = sim.kv().page_pool(1).num_free_pages();
  try {
    run_compression_event(sim.kv(), 1, sim.view(), compress::Compressor(cc, d.layers));
    FAIL() << "expected kOutOfMemory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory) << e.what();
  }
  sim.expect_tiers_match(1);  // shadow not updated: nothing moved
  sim.expect_tiers_match(2);
  EXPECT_EQ(sim.kv().usage(1).total_bytes(), before.total_bytes());
  EXPECT_EQ(sim.kv().page_pool(1).num_free_pages(), free_before);
  sim.append(1, 1);
  EXPECT_LT(sim.max_error({1, 2}, {1, 1}), 2e-6);
}

TEST(CompressionEvent, NeedsObservationQueries) {
  Dims d;
  auto cc = test_config(16, 4, 2);
  Sim sim(d, cc, 1);
  sim.add(1);
  sim.kv().append_tokens(1, 30);
  try {
    run_compression_event(sim.kv(), 1, sim.view(), compress::Compressor(cc, d.layers));
    FAIL() << "expected kInvalidArgument";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("observation"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hardkv::kv

namespace hardkv::kv {
namespace {

// No sinks and no window: every token is a candidate and the dense tier empties at each event.
TEST(CompressionEvent, NoSinksNoWindow) {
  Dims d;
  d.page_size = 3;
  auto cc = test_config(8, 0, 0, "snapkv", "uniform");
  cc.rewrite_threshold = 0.25;
  Sim sim(d, cc, 44);
  sim.add(1);
  sim.append(1, 21);
  for (int round = 0; round < 4; ++round) {
    sim.event(1);
    sim.expect_tiers_match(1);
    EXPECT_EQ(sim.kv().sequence(1).dense_begin, sim.seq(1).n);
    EXPECT_EQ(sim.kv().usage(1).dense_blocks, sim.seq(1).n % d.block_size != 0 ? 1 : 0);
    sim.append(1, 2);
    EXPECT_LT(sim.max_error({1}, {2}), 2e-6);
  }
}

}  // namespace
}  // namespace hardkv::kv
