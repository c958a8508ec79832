// CompressionStats: per (layer, head) means, extremes and last values over events, as JSON.
#include "compress/compression_stats.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hardkv::compress {
namespace {

HeadSelection selection(int kept, int target, double temperature, double mass) {
  HeadSelection s;
  for (int i = 0; i < kept; ++i) s.kept.push_back(i);
  s.target = target;
  s.temperature = temperature;
  s.true_mass = mass;
  return s;
}

TEST(CompressionStats, AggregatesEventsPerLayerAndHead) {
  CompressionStats stats(2, 2);
  stats.record(1, {selection(10, 8, 0.5, 0.9), selection(4, 2, 2.0, 0.7)});
  stats.record(1, {selection(20, 30, 1.5, 0.95), selection(6, 5, 1.0, 0.8)});
  EXPECT_EQ(stats.events(0), 0);
  EXPECT_EQ(stats.events(1), 2);
  EXPECT_DOUBLE_EQ(stats.mean_kept(1, 0), 15.0);
  EXPECT_DOUBLE_EQ(stats.mean_temperature(1, 1), 1.5);
  EXPECT_EQ(stats.last_kept(1, 1), 6);

  const nlohmann::json j = stats.to_json();
  EXPECT_EQ(j.at("num_layers"), 2);
  EXPECT_EQ(j.at("num_kv_heads"), 2);
  EXPECT_EQ(j.at("events"), nlohmann::json({0, 2}));
  EXPECT_EQ(j.at("kept_mean")[1][0], 15.0);
  EXPECT_EQ(j.at("kept_min")[1][0], 10);
  EXPECT_EQ(j.at("kept_max")[1][0], 20);
  EXPECT_EQ(j.at("kept_last")[1][1], 6);
  EXPECT_EQ(j.at("target_mean")[1][1], 3.5);
  EXPECT_EQ(j.at("temperature_last")[1][0], 1.5);
  EXPECT_NEAR(j.at("true_mass_mean")[1][1].get<double>(), 0.75, 1e-12);
  EXPECT_EQ(j.at("kept_mean")[0][0], 0.0);  // no events yet
  EXPECT_EQ(j.at("kept_min")[0][0], 0);
}

TEST(CompressionStats, RejectsWrongShapes) {
  CompressionStats stats(2, 2);
  EXPECT_THROW(stats.record(2, {selection(1, 1, 1, 1), selection(1, 1, 1, 1)}), Error);
  EXPECT_THROW(stats.record(0, {selection(1, 1, 1, 1)}), Error);
}

}  // namespace
}  // namespace hardkv::compress
