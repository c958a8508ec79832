// Every strategy x allocation selects exactly the kept sets of the plain-loop reference
// (reference_selection.h) on random layers with ties, cap-bound, floor-bound and tiny heads.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "compress/allocation.h"
#include "compress/compressor.h"
#include "compress/strategy.h"
#include "core/error.h"
#include "test_util.h"

namespace hardkv::compress {
namespace {

using testing::params;
using testing::small_config;
using testing::views;

constexpr int kNumObs = 8;
constexpr int kGroup = 2;
constexpr int kDim = 16;
constexpr int kNumLayers = 8;

// A head whose true top-0.9 set has 21..30 candidates (between floor 18 and cap 34): the
// sharpness of its focused queries is searched with the reference's n*.
ref::Head moderate_head(uint32_t seed) {
  std::vector<int> spread;
  for (int t = 3; t < 150; t += 9) spread.push_back(t);
  for (double sharpness = 1.5; sharpness < 4.0; sharpness += 0.05) {
    std::mt19937 rng(seed + 100);
    ref::Head h = ref::focused_head(rng, kNumObs, kGroup, kDim, 150, spread, sharpness);
    const std::vector<double> a = ref::attention(h);
    const int n_star = ref::true_top_p(std::vector<float>(a.begin(), a.end()), 0.9);
    if (n_star > 20 && n_star <= 30) return h;
  }
  ADD_FAILURE() << "no sharpness gives a moderate head for seed " << seed;
  return ref::Head{};
}

// One layer: 0 diffuse (hard: cap), 1 focused on two late candidates (hard: floor), 2 moderate
// (hard: between), 3 duplicated keys (ties), 4 fewer candidates than the floor, 5 identical keys
// (all tied), 6 no candidates.
std::vector<ref::Head> make_layer(uint32_t seed, bool with_state) {
  std::mt19937 rng(seed);
  std::vector<ref::Head> heads;
  heads.push_back(ref::random_head(rng, kNumObs, kGroup, kDim, 120, 0.2));
  heads.push_back(ref::focused_head(rng, kNumObs, kGroup, kDim, 100, {97, 98}, 3.0));
  heads.push_back(moderate_head(seed));
  heads.push_back(ref::random_head(rng, kNumObs, kGroup, kDim, 90, 1.5, /*dup_every=*/3));
  heads.push_back(ref::random_head(rng, kNumObs, kGroup, kDim, 10, 1.0));
  ref::Head same = ref::random_head(rng, kNumObs, kGroup, kDim, 60, 1.0);
  for (int j = 1; j < same.n; ++j) std::copy_n(same.k.begin(), kDim, same.k.begin() + j * kDim);
  heads.push_back(same);
  heads.push_back(ref::random_head(rng, kNumObs, kGroup, kDim, 0, 1.0));
  if (with_state) {
    std::uniform_real_distribution<float> u(0.0f, 3.0f);
    for (ref::Head& h : heads) {
      h.acc.resize(h.n);
      for (float& a : h.acc) a = u(rng);
    }
  }
  return heads;
}

class SelectionVsReference : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
};

TEST_P(SelectionVsReference, KeptSetsMatch) {
  const auto& [strategy, allocation] = GetParam();
  const CompressionConfig config = small_config(strategy, allocation);
  const Compressor compressor(config, kNumLayers);
  for (uint32_t seed : {1u, 2u, 3u}) {
    for (bool with_state : {false, true}) {
      const std::vector<ref::Head> heads = make_layer(seed, with_state);
      const std::vector<HeadInput> inputs = views(heads);
      for (int layer : {0, 3, kNumLayers - 1}) {
        SCOPED_TRACE(::testing::Message()
                     << "seed " << seed << " state " << with_state << " layer " << layer);
        const LayerCompression got = compressor.compress_layer(layer, inputs);
        const std::vector<ref::HeadResult> want =
            ref::select(params(config), layer, kNumLayers, heads);
        ASSERT_EQ(got.heads.size(), want.size());
        for (size_t h = 0; h < want.size(); ++h) {
          SCOPED_TRACE(::testing::Message() << "head " << h);
          EXPECT_EQ(got.heads[h].kept, want[h].kept);
          if (allocation == "hard" && strategy != "streaming" && !want[h].kept.empty()) {
            EXPECT_EQ(got.heads[h].target, want[h].n_star);
            EXPECT_NEAR(got.heads[h].temperature, want[h].temperature, 1e-6 * want[h].temperature);
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllCombinations, SelectionVsReference,
    ::testing::Combine(::testing::Values("attn", "snapkv", "rkv", "streaming", "h2o"),
                       ::testing::Values("uniform", "hard", "adakv", "pyramid")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

// The layer of make_layer really exercises the cases it claims to (hard + attn).
TEST(SelectionCoverage, HardHitsCapFloorAndBetween) {
  const CompressionConfig config = small_config("attn", "hard");
  const Compressor compressor(config, kNumLayers);
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    const std::vector<ref::Head> heads = make_layer(seed, false);
    const LayerCompression got = compressor.compress_layer(0, views(heads));
    EXPECT_EQ(got.heads[0].kept.size(), 34u);  // diffuse: capped
    EXPECT_GT(got.heads[0].target, 34);
    EXPECT_EQ(got.heads[1].kept.size(), 18u);  // focused: floor
    EXPECT_LT(got.heads[1].target, 18);
    EXPECT_GT(got.heads[2].kept.size(), 18u);  // moderate: TopP decides
    EXPECT_LT(got.heads[2].kept.size(), 34u);
    EXPECT_EQ(got.heads[2].kept.size(), static_cast<size_t>(got.heads[2].target));
    EXPECT_EQ(got.heads[4].kept.size(), 10u);  // fewer candidates than the floor: all
    EXPECT_TRUE(got.heads[6].kept.empty());
  }
}

// Strategy scores (not only the kept sets) agree with the reference.
TEST(StrategyScores, MatchReference) {
  const std::vector<ref::Head> heads = make_layer(7, true);
  for (const char* name : {"attn", "snapkv", "rkv", "h2o"}) {
    SCOPED_TRACE(name);
    const CompressionConfig config = small_config(name, "uniform");
    const std::unique_ptr<Strategy> strategy = make_strategy(config);
    for (const ref::Head& h : heads) {
      const HeadScores got = strategy->score(testing::view(h));
      ref::HeadResult want;
      ref::score(params(config), h, want);
      ASSERT_EQ(got.score.size(), static_cast<size_t>(h.n));
      ASSERT_EQ(got.true_attn.size(), static_cast<size_t>(h.n));
      double total = 0.0;
      for (int j = 0; j < h.n; ++j) {
        EXPECT_NEAR(got.true_attn[j], want.attn[j], 1e-7);
        EXPECT_NEAR(got.score[j], want.phi[j], 1e-5);
        total += got.true_attn[j];
      }
      if (h.n > 0) {
        EXPECT_NEAR(total, 1.0, 1e-5);
      }
    }
  }
}

// Device scoring hands the strategies the true attention instead of queries (and keys, except to
// rkv): the kept sets still equal the reference's, which computes the attention itself.
TEST(PrecomputedAttention, SameKeptSets) {
  for (const char* strategy : {"attn", "snapkv", "rkv", "streaming", "h2o"}) {
    for (const char* allocation : {"uniform", "hard"}) {
      SCOPED_TRACE(::testing::Message() << strategy << " x " << allocation);
      const CompressionConfig config = small_config(strategy, allocation);
      const Compressor compressor(config, kNumLayers);
      const bool needs_keys = compressor.strategy().needs_keys();
      EXPECT_EQ(needs_keys, std::string(strategy) == "rkv");
      const std::vector<ref::Head> heads = make_layer(5, std::string(strategy) == "h2o");
      std::vector<std::vector<float>> attn;
      for (const ref::Head& h : heads) {
        const std::vector<double> a = ref::attention(h);
        attn.emplace_back(a.begin(), a.end());
      }
      std::vector<HeadInput> inputs = views(heads);
      for (size_t h = 0; h < inputs.size(); ++h) {
        inputs[h].true_attn = attn[h].data();
        inputs[h].q_obs = nullptr;
        if (!needs_keys) inputs[h].keys = nullptr;
      }
      const LayerCompression got = compressor.compress_layer(0, inputs);
      const std::vector<ref::HeadResult> want = ref::select(params(config), 0, kNumLayers, heads);
      for (size_t h = 0; h < want.size(); ++h) {
        SCOPED_TRACE(::testing::Message() << "head " << h);
        EXPECT_EQ(got.heads[h].kept, want[h].kept);
      }
    }
  }
}

// Without queries, true attention or (for rkv) keys, a strategy refuses the input.
TEST(PrecomputedAttention, MissingInputsRejected) {
  const std::vector<ref::Head> heads = make_layer(5, false);
  HeadInput in = testing::view(heads[0]);
  const std::vector<double> a = ref::attention(heads[0]);
  const std::vector<float> attn(a.begin(), a.end());
  in.q_obs = nullptr;
  EXPECT_THROW(make_strategy(small_config("attn", "uniform"))->score(in), Error);
  in.true_attn = attn.data();
  in.keys = nullptr;
  EXPECT_NO_THROW(make_strategy(small_config("attn", "uniform"))->score(in));
  EXPECT_THROW(make_strategy(small_config("rkv", "uniform"))->score(in), Error);
}

}  // namespace
}  // namespace hardkv::compress
