// Sampler: filtered distributions against hand-computed values, greedy ties, seeded determinism,
// empirical frequencies, and parameter validation.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "sampling/sampler.h"

namespace hardkv {
namespace {

std::vector<double> dist(const std::vector<float>& logits, const SamplingParams& p) {
  std::vector<double> probs(logits.size());
  sampling_distribution(logits, p, probs);
  return probs;
}

// log of probabilities {0.5, 0.25, 0.125, 0.0625, 0.0625}: softmax at T=1 gives them back.
const std::vector<float> kLogits = {std::log(0.5f), std::log(0.25f), std::log(0.125f),
                                    std::log(0.0625f), std::log(0.0625f)};

TEST(Sampler, TemperatureOneIsSoftmax) {
  SamplingParams p;
  auto d = dist(kLogits, p);
  const double want[] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(d[i], want[i], 1e-6);
}

TEST(Sampler, TemperatureSharpens) {
  SamplingParams p;
  p.temperature = 0.5f;  // p_i^2 renormalised: {0.25, 0.0625, 0.015625, 0.00390625 x2} / 0.3359375
  auto d = dist(kLogits, p);
  EXPECT_NEAR(d[0], 0.25 / 0.3359375, 1e-6);
  EXPECT_NEAR(d[3], 0.00390625 / 0.3359375, 1e-6);
}

TEST(Sampler, TopKTopPMinP) {
  SamplingParams p;
  p.top_k = 2;  // {0.5, 0.25} -> {2/3, 1/3}
  auto d = dist(kLogits, p);
  EXPECT_NEAR(d[0], 2.0 / 3, 1e-6);
  EXPECT_NEAR(d[1], 1.0 / 3, 1e-6);
  EXPECT_EQ(d[2], 0.0);

  p = SamplingParams{};
  p.top_p = 0.8f;  // cumulative 0.5, 0.75, 0.875 -> first three
  d = dist(kLogits, p);
  EXPECT_NEAR(d[2], 0.125 / 0.875, 1e-6);
  EXPECT_EQ(d[3], 0.0);

  p = SamplingParams{};
  p.min_p = 0.3f;  // keep p >= 0.15: {0.5, 0.25}
  d = dist(kLogits, p);
  EXPECT_NEAR(d[1], 1.0 / 3, 1e-6);
  EXPECT_EQ(d[2], 0.0);
}

TEST(Sampler, GreedyPicksLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Rng rng(1);
  EXPECT_EQ(sample_token(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}, p, rng), 1);
}

TEST(Sampler, SeededStreamsAreDeterministicAndFollowTheDistribution) {
  SamplingParams p;
  p.top_k = 4;  // {0.5, 0.25, 0.125, 0.0625} / 0.9375
  Rng a(42), b(42);
  std::vector<int> counts(5, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const int32_t ta = sample_token(kLogits, p, a);
    ASSERT_EQ(ta, sample_token(kLogits, p, b));
    ++counts[ta];
  }
  EXPECT_EQ(counts[4], 0);
  const double want[] = {0.5 / 0.9375, 0.25 / 0.9375, 0.125 / 0.9375, 0.0625 / 0.9375};
  for (int i = 0; i < 4; ++i) {
    const double sd = std::sqrt(want[i] * (1 - want[i]) / n);
    EXPECT_NEAR(counts[i] / static_cast<double>(n), want[i], 5 * sd) << "token " << i;
  }
}

TEST(SamplingParams, ValidateNamesTheBadField) {
  auto fails_with = [](SamplingParams p, const std::string& field) {
    try {
      p.validate();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(e.message().find(field), std::string::npos) << e.message();
      return;
    }
    ADD_FAILURE() << field << " accepted";
  };
  SamplingParams p;
  p.temperature = -1;
  fails_with(p, "temperature");
  p = {};
  p.top_p = 0;
  fails_with(p, "top_p");
  p = {};
  p.min_p = 1;
  fails_with(p, "min_p");
  p = {};
  p.top_k = -5;
  fails_with(p, "top_k");
  p = {};
  p.max_tokens = 0;
  fails_with(p, "max_tokens");
  p = {};
  p.stop = {""};
  fails_with(p, "stop");
  EXPECT_NO_THROW(SamplingParams{}.validate());
}

}  // namespace
}  // namespace hardkv
