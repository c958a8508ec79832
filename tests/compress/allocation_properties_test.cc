// Properties of the allocations that hold for any input: hard keeps >= p_attn of its calibrated
// distribution (unless capped) within floor and cap; uniform keeps exactly its quota; streaming
// keeps nothing; adakv spends the layer total; pyramid falls with depth around the same mean; ties
// go to the lower position; and the reference code's known defects are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "compress/compressor.h"
#include "compress/rank_order.h"
#include "core/error.h"
#include "test_util.h"

namespace hardkv::compress {
namespace {

using testing::small_config;
using testing::views;

std::vector<ref::Head> random_layer(uint32_t seed, int num_heads) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> sharp(0.1, 4.0);
  std::uniform_int_distribution<int> len(0, 200);
  std::vector<ref::Head> heads;
  for (int h = 0; h < num_heads; ++h) {
    heads.push_back(ref::random_head(rng, 4, 2, 8, len(rng), sharp(rng), h % 3 == 0 ? 4 : 0));
  }
  return heads;
}

TEST(HardAllocation, KeptSetHoldsPAttnWithinFloorAndCap) {
  for (double p : {0.5, 0.9, 0.99, 1.0}) {
    CompressionConfig config = small_config("snapkv", "hard");
    config.p_attn = p;
    const Compressor compressor(config, 4);
    for (uint32_t seed = 10; seed < 30; ++seed) {
      SCOPED_TRACE(::testing::Message() << "p " << p << " seed " << seed);
      const std::vector<ref::Head> heads = random_layer(seed, 6);
      const LayerCompression got = compressor.compress_layer(1, views(heads));
      for (size_t h = 0; h < heads.size(); ++h) {
        const HeadSelection& s = got.heads[h];
        const int n = heads[h].n;
        const int kept = static_cast<int>(s.kept.size());
        EXPECT_LE(kept, config.candidate_cap());
        EXPECT_EQ(kept >= std::min(n, config.candidate_budget()), true);
        EXPECT_LE(kept, n);
        if (kept < config.candidate_cap() && n > 0) {
          EXPECT_GE(s.calibrated_mass, p) << "head " << h;
        }
        EXPECT_TRUE(std::is_sorted(s.kept.begin(), s.kept.end()));
        EXPECT_EQ(std::adjacent_find(s.kept.begin(), s.kept.end()), s.kept.end());
        EXPECT_GE(s.temperature, kMinTemperature);
        EXPECT_LE(s.temperature, kMaxTemperature);
      }
    }
  }
}

TEST(UniformAllocation, KeepsExactlyTheQuota) {
  const CompressionConfig config = small_config("rkv", "uniform");
  const Compressor compressor(config, 2);
  const std::vector<ref::Head> heads = random_layer(3, 8);
  const LayerCompression got = compressor.compress_layer(0, views(heads));
  for (size_t h = 0; h < heads.size(); ++h) {
    EXPECT_EQ(static_cast<int>(got.heads[h].kept.size()),
              std::min(heads[h].n, config.budget - config.window - config.sinks));
  }
}

TEST(StreamingStrategy, KeepsNoCandidateUnderEveryAllocation) {
  for (const char* allocation : {"uniform", "hard", "adakv", "pyramid"}) {
    const Compressor compressor(small_config("streaming", allocation), 2);
    const LayerCompression got = compressor.compress_layer(1, views(random_layer(5, 4)));
    for (const HeadSelection& s : got.heads) EXPECT_TRUE(s.kept.empty()) << allocation;
  }
}

TEST(AdaKVAllocation, SpendsTheLayerTotalWithSafeguardAndCap) {
  const CompressionConfig config = small_config("attn", "adakv");
  const Compressor compressor(config, 2);
  for (uint32_t seed = 40; seed < 50; ++seed) {
    const std::vector<ref::Head> heads = random_layer(seed, 6);
    const LayerCompression got = compressor.compress_layer(0, views(heads));
    const int quota = config.candidate_budget();
    const int safe = static_cast<int>(config.adakv_safeguard * quota);
    int64_t available = 0, total = 0;
    for (size_t h = 0; h < heads.size(); ++h) {
      const int kept = static_cast<int>(got.heads[h].kept.size());
      available += std::min(heads[h].n, config.candidate_cap());
      total += kept;
      EXPECT_GE(kept, std::min(safe, heads[h].n));
      EXPECT_LE(kept, config.candidate_cap());
    }
    EXPECT_EQ(total, std::min<int64_t>(available, int64_t{quota} * 6));
  }
}

TEST(PyramidAllocation, QuotaFallsWithDepthAroundTheBudget) {
  CompressionConfig config = small_config("attn", "pyramid");
  config.budget = 300;
  config.upper_budget = 1000;
  const int num_layers = 9;
  const Compressor compressor(config, num_layers);
  std::mt19937 rng(1);
  const std::vector<ref::Head> heads{ref::random_head(rng, 2, 1, 8, 900, 1.0)};
  std::vector<int> quota;
  for (int l = 0; l < num_layers; ++l) {
    quota.push_back(
        static_cast<int>(compressor.compress_layer(l, views(heads)).heads[0].kept.size()));
  }
  const int c = config.candidate_budget();  // 294: q_min = 14, q_max = 574
  EXPECT_EQ(quota.front(), 2 * c - c / 20);
  EXPECT_EQ(quota.back(), c / 20);
  EXPECT_TRUE(std::is_sorted(quota.rbegin(), quota.rend()));
  const double mean = std::accumulate(quota.begin(), quota.end(), 0.0) / num_layers;
  EXPECT_NEAR(mean, c, 1.0);
}

TEST(RankOrder, TiesGoToTheLowerPosition) {
  // All keys identical: every score ties, so every allocation keeps the earliest candidates.
  std::mt19937 rng(2);
  ref::Head h = ref::random_head(rng, 4, 2, 8, 50, 1.0);
  for (int j = 1; j < h.n; ++j) std::copy_n(h.k.begin(), 8, h.k.begin() + j * 8);
  std::vector<int32_t> first(18);
  std::iota(first.begin(), first.end(), 0);
  for (const char* strategy : {"attn", "snapkv", "h2o"}) {
    for (const char* allocation : {"uniform", "pyramid"}) {
      const Compressor compressor(small_config(strategy, allocation), 1);
      const LayerCompression got = compressor.compress_layer(0, views({h}));
      EXPECT_EQ(got.heads[0].kept, first) << strategy << " " << allocation;
    }
  }
  // rkv: R-KV's keep-most-recent rule exempts the latest duplicates (49 from every other row, 48
  // from row 49) from redundancy, so they rank first; the rest tie and go by position.
  const Compressor rkv(small_config("rkv", "uniform"), 1);
  std::vector<int32_t> rkv_kept(first.begin(), first.begin() + 16);
  rkv_kept.push_back(48);
  rkv_kept.push_back(49);
  EXPECT_EQ(rkv.compress_layer(0, views({h})).heads[0].kept, rkv_kept);
  EXPECT_EQ(rank_order({1.0f, 2.0f, 2.0f, 0.5f, 2.0f}), (std::vector<int32_t>{1, 2, 4, 0, 3}));
}

// Reference defect 1: top-p mass summed over the first n positions instead of the n largest.
// Attention focused on the LAST candidates must give a small n*, not n.
TEST(HardAllocation, TargetCountsLargestEntriesNotFirstPositions) {
  std::mt19937 rng(4);
  const ref::Head h = ref::focused_head(rng, 8, 2, 16, 200, {196, 198}, 6.0);
  const Compressor compressor(small_config("attn", "hard"), 1);
  const LayerCompression got = compressor.compress_layer(0, views({h}));
  EXPECT_LT(got.heads[0].target, 10);
  EXPECT_EQ(got.heads[0].kept.size(), 18u);  // floor
  EXPECT_NE(std::find(got.heads[0].kept.begin(), got.heads[0].kept.end(), 196),
            got.heads[0].kept.end());
  EXPECT_GT(got.heads[0].true_mass, 0.9);
}

// Reference defect 2: a scalar prod made every token "selected". A concentrated head under hard
// allocation must keep far fewer than all candidates, and exactly its TopP prefix.
TEST(HardAllocation, DoesNotSelectEverything) {
  std::mt19937 rng(6);
  const ref::Head h = ref::focused_head(rng, 8, 2, 16, 300, {10, 150, 290}, 5.0);
  CompressionConfig config = small_config("snapkv", "hard");
  config.upper_budget = 400;  // the cap cannot hide a select-everything bug
  const Compressor compressor(config, 1);
  const LayerCompression got = compressor.compress_layer(0, views({h}));
  EXPECT_LT(got.heads[0].kept.size(), 100u);
}

// Large inputs take rank_order's radix path: it must give the comparison sort's order (score
// descending, ties by index) on values with many ties, both signs, both zeros and infinities, and
// top_p_size the sum of the sorted entries.
TEST(RankOrder, LargeInputsMatchAComparisonSort) {
  std::mt19937 rng(12);
  for (int n : {64, 1000, 5000}) {
    std::vector<float> score(n);
    std::uniform_int_distribution<int> pick(0, 40);
    std::normal_distribution<float> normal(0.0f, 10.0f);
    for (float& s : score) {
      const int r = pick(rng);
      s = r < 10 ? static_cast<float>(r - 5) : r == 10 ? -0.0f : r == 11 ? 0.0f
          : r == 12 ? -INFINITY : normal(rng);
    }
    std::vector<int32_t> want(n);
    std::iota(want.begin(), want.end(), 0);
    std::sort(want.begin(), want.end(), [&](int32_t a, int32_t b) {
      return score[a] != score[b] ? score[a] > score[b] : a < b;
    });
    EXPECT_EQ(rank_order(score), want) << n;

    std::vector<float> dist(n);
    std::exponential_distribution<float> expo(1.0f);
    for (float& d : dist) d = pick(rng) < 8 ? 0.25f : expo(rng);  // ties too
    std::vector<double> sorted(dist.begin(), dist.end());
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    const double total = std::accumulate(sorted.begin(), sorted.end(), 0.0);
    for (double p : {0.5, 0.9, 0.99}) {
      int32_t k = n;
      double cumulative = 0.0;
      for (int32_t i = 1; i < n; ++i) {
        cumulative += sorted[i - 1];
        if (cumulative / total >= p) {
          k = i;
          break;
        }
      }
      EXPECT_EQ(top_p_size(dist, p), k) << n << " " << p;
    }
  }
}

// The temperature calibration puts p on exactly the top n* of the strategy's distribution.
TEST(TemperatureCalibration, PutsPOnTheTopK) {
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> score(500);
  for (float& s : score) s = normal(rng);
  const std::vector<int32_t> order = rank_order(score);
  for (int k : {5, 50, 200}) {
    const double t = calibrate_temperature(score, order, k, 0.9);
    EXPECT_NEAR(prefix_mass(score, order, k, t), 0.9, 1e-9) << k;
    EXPECT_EQ(top_p_count(score, order, t, 0.9), k);
  }
  // k >= p * n cannot be reached by flattening: the search stops at the flattest temperature.
  EXPECT_EQ(calibrate_temperature(score, order, 480, 0.9), kMaxTemperature);
}

TEST(H2OStrategy, ReturnsTheAccumulationOfKeptTokens) {
  std::mt19937 rng(9);
  ref::Head h = ref::random_head(rng, 8, 2, 8, 60, 1.0);
  h.acc.assign(h.n, 0.0f);
  h.acc[0] = 100.0f;  // a heavy hitter from earlier events is kept whatever the window says
  const Compressor compressor(small_config("h2o", "uniform"), 1);
  const LayerCompression got = compressor.compress_layer(0, views({h}));
  const std::vector<double> attn = ref::attention(h);
  ASSERT_EQ(got.accumulated[0].size(), got.heads[0].kept.size());
  EXPECT_EQ(got.heads[0].kept.front(), 0);
  for (size_t i = 0; i < got.heads[0].kept.size(); ++i) {
    const int j = got.heads[0].kept[i];
    EXPECT_NEAR(got.accumulated[0][i], h.acc[j] + 8 * attn[j], 1e-5);
  }
  h.acc[3] = -1.0f;
  EXPECT_THROW(compressor.compress_layer(0, views({h})), Error);
}

TEST(Compressor, RejectsBadInput) {
  const Compressor compressor(small_config("attn", "hard"), 2);
  std::mt19937 rng(1);
  ref::Head h = ref::random_head(rng, 2, 1, 8, 20, 1.0);
  EXPECT_THROW(compressor.compress_layer(2, views({h})), Error);
  h.pos[5] = h.pos[4];  // positions must increase
  EXPECT_THROW(compressor.compress_layer(0, views({h})), Error);
}

}  // namespace
}  // namespace hardkv::compress
