// Strategy: how a compression event scores the candidates of one kv-head (attn, snapkv, rkv,
// streaming, h2o). Narrow interface + registry by name; each strategy is one file.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compress/compression_config.h"
#include "compress/head_input.h"

namespace hardkv::compress {

// Contract: score() is a pure function of its input (and the config given at construction); it
// returns score and true_attn of size in.num_candidates (accumulated too for h2o). It never keeps
// state between calls, so one instance may score every head of every sequence.
class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string_view name() const = 0;
  // False for strategies that keep nothing beyond sinks and window (streaming): every allocation
  // then keeps no candidate.
  virtual bool keeps_candidates() const { return true; }
  // True when score() reads the candidate keys beyond the true attention (rkv's redundancy, unless
  // HeadInput::redundancy is given).
  virtual bool needs_keys() const { return false; }
  virtual HeadScores score(const HeadInput& in) const = 0;
};

// The strategy named config.strategy; kInvalidArgument listing the known names otherwise.
std::unique_ptr<Strategy> make_strategy(const CompressionConfig& config);
std::vector<std::string> strategy_names();

// Factories of the built-in strategies (listed in strategy_registry.cc).
std::unique_ptr<Strategy> make_attn_strategy(const CompressionConfig& config);
std::unique_ptr<Strategy> make_snapkv_strategy(const CompressionConfig& config);
std::unique_ptr<Strategy> make_rkv_strategy(const CompressionConfig& config);
std::unique_ptr<Strategy> make_streaming_strategy(const CompressionConfig& config);
std::unique_ptr<Strategy> make_h2o_strategy(const CompressionConfig& config);

}  // namespace hardkv::compress
