// Validation and JSON form of CompressionConfig.
#include "compress/compression_config.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "compress/allocation.h"
#include "compress/strategy.h"
#include "core/error.h"

namespace hardkv::compress {

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

void CompressionConfig::validate() const {
  const std::vector<std::string> strategies = strategy_names();
  HARDKV_CHECK(contains(strategies, strategy), kInvalidArgument,
               "--strategy '{}' is unknown (choose one of: {})", strategy,
               fmt::join(strategies, ", "));
  const std::vector<std::string> allocations = allocation_names();
  HARDKV_CHECK(contains(allocations, allocation), kInvalidArgument,
               "--allocation '{}' is unknown (choose one of: {})", allocation,
               fmt::join(allocations, ", "));
  HARDKV_CHECK(sinks >= 0, kInvalidArgument, "--sinks is {}, must be >= 0", sinks);
  HARDKV_CHECK(window >= 0, kInvalidArgument, "--window is {}, must be >= 0", window);
  HARDKV_CHECK(budget >= 1, kInvalidArgument, "--budget is {}, must be >= 1", budget);
  HARDKV_CHECK(budget >= window + sinks, kInvalidArgument,
               "--budget {} is smaller than --window {} + --sinks {}, which are always kept; "
               "raise the budget or shrink the window",
               budget, window, sinks);
  const bool scores = strategy != "streaming";
  HARDKV_CHECK(!scores || allocation == "hard" || budget > window + sinks, kInvalidArgument,
               "--budget {} leaves no room for scored tokens beyond --window {} + --sinks {} "
               "with --allocation {}; raise the budget or use --strategy streaming",
               budget, window, sinks, allocation);
  HARDKV_CHECK(upper_budget >= budget, kInvalidArgument,
               "--upper-budget {} is smaller than --budget {}; the cap must be >= the floor",
               upper_budget, budget);
  HARDKV_CHECK(p_attn > 0.0 && p_attn <= 1.0, kInvalidArgument, "--p-attn is {}, must be in (0, 1]",
               p_attn);
  HARDKV_CHECK(interval >= 1, kInvalidArgument, "--interval is {}, must be >= 1", interval);
  HARDKV_CHECK(obs_window >= 1, kInvalidArgument, "--obs-window is {}, must be >= 1", obs_window);
  HARDKV_CHECK(page_size >= 1, kInvalidArgument, "--page-size is {}, must be >= 1", page_size);
  HARDKV_CHECK(rewrite_threshold >= 0.0 && rewrite_threshold <= 1.0, kInvalidArgument,
               "--rewrite-threshold is {}, must be in [0, 1]", rewrite_threshold);
  HARDKV_CHECK(pool_kernel >= 1 && pool_kernel % 2 == 1, kInvalidArgument,
               "pool kernel is {}, must be odd and >= 1", pool_kernel);
  HARDKV_CHECK(rkv_lambda >= 0.0 && rkv_lambda <= 1.0, kInvalidArgument,
               "rkv lambda is {}, must be in [0, 1]", rkv_lambda);
  HARDKV_CHECK(rkv_threshold >= -1.0 && rkv_threshold <= 1.0, kInvalidArgument,
               "rkv similarity threshold is {}, must be in [-1, 1]", rkv_threshold);
  HARDKV_CHECK(adakv_safeguard >= 0.0 && adakv_safeguard <= 1.0, kInvalidArgument,
               "adakv safeguard is {}, must be in [0, 1]", adakv_safeguard);
  HARDKV_CHECK(pyramid_beta >= 1, kInvalidArgument, "pyramid beta is {}, must be >= 1",
               pyramid_beta);
}

nlohmann::json CompressionConfig::to_json() const {
  return nlohmann::json{
      {"strategy", strategy},
      {"allocation", allocation},
      {"budget", budget},
      {"upper_budget", upper_budget},
      {"p_attn", p_attn},
      {"window", window},
      {"sinks", sinks},
      {"interval", interval},
      {"obs_window", obs_window},
      {"page_size", page_size},
      {"rewrite_threshold", rewrite_threshold},
      {"rewrite_every_time", rewrite_every_time},
      {"pool_kernel", pool_kernel},
      {"rkv_lambda", rkv_lambda},
      {"rkv_threshold", rkv_threshold},
      {"adakv_safeguard", adakv_safeguard},
      {"pyramid_beta", pyramid_beta},
  };
}

}  // namespace hardkv::compress
