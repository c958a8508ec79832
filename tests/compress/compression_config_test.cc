// CompressionConfig: defaults validate, every impossible combination is rejected with a message
// naming the offending flag, and the JSON form round-trips the fields.
#include "compress/compression_config.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

// GCC 12 reports a false -Wrestrict in std::string assignment from a short literal (GCC bug
// 105329) inside the lambdas below.
#pragma GCC diagnostic ignored "-Wrestrict"

namespace hardkv::compress {
namespace {

std::string error_of(const CompressionConfig& c) {
  try {
    c.validate();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    return e.message();
  }
  return "";
}

TEST(CompressionConfig, DefaultsAreValidAndThePapers) {
  const CompressionConfig c;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.budget, 1024);
  EXPECT_EQ(c.upper_budget, 2048);
  EXPECT_DOUBLE_EQ(c.p_attn, 0.9);
  EXPECT_EQ(c.window, 128);
  EXPECT_EQ(c.interval, 128);
  EXPECT_EQ(c.obs_window, 128);
  EXPECT_EQ(c.candidate_budget(), 1024 - 128 - c.sinks);
  EXPECT_EQ(c.candidate_cap(), 2048 - 128 - c.sinks);
}

TEST(CompressionConfig, EveryStrategyWithEveryAllocationIsValid) {
  for (const char* s : {"attn", "snapkv", "rkv", "streaming", "h2o"}) {
    for (const char* a : {"uniform", "hard", "adakv", "pyramid"}) {
      CompressionConfig c;
      c.strategy = s;
      c.allocation = a;
      EXPECT_NO_THROW(c.validate()) << s << " " << a;
    }
  }
}

TEST(CompressionConfig, RejectsImpossibleCombinations) {
  struct Case {
    std::function<void(CompressionConfig&)> change;
    std::string message_part;
  };
  const std::vector<Case> cases{
      {[](CompressionConfig& c) { c.strategy = "magic"; }, "--strategy 'magic' is unknown"},
      {[](CompressionConfig& c) { c.allocation = "x"; }, "--allocation 'x' is unknown"},
      {[](CompressionConfig& c) { c.budget = 100; }, "--budget 100 is smaller than --window 128"},
      {[](CompressionConfig& c) {
         c.budget = 129;
         c.allocation = "uniform";
       },
       "leaves no room for scored tokens"},
      {[](CompressionConfig& c) { c.upper_budget = 1000; }, "--upper-budget 1000 is smaller"},
      {[](CompressionConfig& c) { c.p_attn = 0.0; }, "--p-attn"},
      {[](CompressionConfig& c) { c.p_attn = 1.5; }, "--p-attn"},
      {[](CompressionConfig& c) { c.sinks = -1; }, "--sinks"},
      {[](CompressionConfig& c) { c.window = -3; }, "--window"},
      {[](CompressionConfig& c) { c.interval = 0; }, "--interval"},
      {[](CompressionConfig& c) { c.obs_window = 0; }, "--obs-window"},
      {[](CompressionConfig& c) { c.page_size = 0; }, "--page-size"},
      {[](CompressionConfig& c) { c.rewrite_threshold = 1.5; }, "--rewrite-threshold"},
      {[](CompressionConfig& c) { c.pool_kernel = 6; }, "pool kernel"},
      {[](CompressionConfig& c) { c.rkv_lambda = -0.1; }, "rkv lambda"},
      {[](CompressionConfig& c) { c.rkv_threshold = 2.0; }, "similarity threshold"},
      {[](CompressionConfig& c) { c.adakv_safeguard = 1.2; }, "adakv safeguard"},
      {[](CompressionConfig& c) { c.pyramid_beta = 0; }, "pyramid beta"},
  };
  for (const Case& k : cases) {
    CompressionConfig c;
    k.change(c);
    const std::string message = error_of(c);
    EXPECT_NE(message.find(k.message_part), std::string::npos)
        << "expected '" << k.message_part << "' in '" << message << "'";
  }
}

TEST(CompressionConfig, BudgetEqualToProtectedTokensIsOnlyForHardOrStreaming) {
  CompressionConfig c;
  c.budget = c.window + c.sinks;
  c.allocation = "hard";  // floor 0: pure top-p
  EXPECT_NO_THROW(c.validate());
  c.allocation = "adakv";
  EXPECT_THROW(c.validate(), Error);
  c.strategy = "streaming";
  EXPECT_NO_THROW(c.validate());
}

TEST(CompressionConfig, JsonHasEveryField) {
  CompressionConfig c;
  c.strategy = "h2o";
  c.rewrite_every_time = true;
  const nlohmann::json j = c.to_json();
  EXPECT_EQ(j.at("strategy"), "h2o");
  EXPECT_EQ(j.at("allocation"), "hard");
  EXPECT_EQ(j.at("budget"), 1024);
  EXPECT_EQ(j.at("rewrite_every_time"), true);
  EXPECT_EQ(j.size(), 17u);
}

}  // namespace
}  // namespace hardkv::compress
