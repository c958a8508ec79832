// rkv with a precomputed redundancy (device scoring hands it over instead of the keys): the kept
// sets equal the reference's, which computes attention and redundancy itself from queries and
// keys; a redundancy computed with another similarity threshold is refused.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "compress/compressor.h"
#include "compress/strategy.h"
#include "core/error.h"
#include "reference_selection.h"
#include "test_util.h"

namespace hardkv::compress {
namespace {

using testing::params;
using testing::small_config;
using testing::views;

constexpr int kNumLayers = 4;

std::vector<ref::Head> make_heads(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<ref::Head> heads;
  heads.push_back(ref::random_head(rng, 8, 2, 16, 120, 0.2));
  heads.push_back(ref::random_head(rng, 8, 2, 16, 90, 1.5, /*dup_every=*/3));
  heads.push_back(ref::focused_head(rng, 8, 2, 16, 100, {97, 98}, 3.0));
  heads.push_back(ref::random_head(rng, 8, 2, 16, 1, 1.0));
  heads.push_back(ref::random_head(rng, 8, 2, 16, 0, 1.0));
  return heads;
}

TEST(PrecomputedRedundancy, SameKeptSetsWithoutKeys) {
  for (const char* allocation : {"uniform", "hard"}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE(::testing::Message() << allocation << " seed " << seed);
      const CompressionConfig config = small_config("rkv", allocation);
      const Compressor compressor(config, kNumLayers);
      const std::vector<ref::Head> heads = make_heads(seed);
      std::vector<std::vector<float>> attn, red;
      for (const ref::Head& h : heads) {
        const std::vector<double> a = ref::attention(h);
        const std::vector<double> r =
            h.n > 0 ? ref::rkv_redundancy(h, config.rkv_threshold) : std::vector<double>{};
        attn.emplace_back(a.begin(), a.end());
        red.emplace_back(r.begin(), r.end());
      }
      std::vector<HeadInput> inputs = views(heads);
      for (size_t h = 0; h < inputs.size(); ++h) {
        inputs[h].q_obs = nullptr;
        inputs[h].keys = nullptr;
        inputs[h].true_attn = attn[h].data();
        inputs[h].redundancy = red[h].data();
        inputs[h].redundancy_threshold = config.rkv_threshold;
      }
      const LayerCompression got = compressor.compress_layer(1, inputs);
      const std::vector<ref::HeadResult> want = ref::select(params(config), 1, kNumLayers, heads);
      ASSERT_EQ(got.heads.size(), want.size());
      for (size_t h = 0; h < want.size(); ++h) {
        SCOPED_TRACE(::testing::Message() << "head " << h);
        EXPECT_EQ(got.heads[h].kept, want[h].kept);
      }
    }
  }
}

TEST(PrecomputedRedundancy, OtherThresholdRefused) {
  const std::vector<ref::Head> heads = make_heads(4);
  const CompressionConfig config = small_config("rkv", "uniform");
  const std::vector<double> a = ref::attention(heads[0]);
  const std::vector<double> r = ref::rkv_redundancy(heads[0], 0.7);
  const std::vector<float> attn(a.begin(), a.end()), red(r.begin(), r.end());
  HeadInput in = testing::view(heads[0]);
  in.keys = nullptr;
  in.true_attn = attn.data();
  in.redundancy = red.data();
  in.redundancy_threshold = 0.7;
  EXPECT_THROW(make_strategy(config)->score(in), Error);
  in.redundancy_threshold = config.rkv_threshold;
  EXPECT_NO_THROW(make_strategy(config)->score(in));
}

}  // namespace
}  // namespace hardkv::compress
