// The strategy registry: name -> factory. An explicit table rather than static self-registration,
// because a static archive drops object files nothing references (and their registrars with them).
#include <fmt/ranges.h>

#include <array>

#include "compress/strategy.h"
#include "core/error.h"

namespace hardkv::compress {
namespace {

struct StrategyEntry {
  const char* name;
  std::unique_ptr<Strategy> (*make)(const CompressionConfig&);
};

constexpr std::array<StrategyEntry, 5> kStrategies{{
    {"attn", make_attn_strategy},
    {"snapkv", make_snapkv_strategy},
    {"rkv", make_rkv_strategy},
    {"streaming", make_streaming_strategy},
    {"h2o", make_h2o_strategy},
}};

}  // namespace

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const StrategyEntry& e : kStrategies) names.emplace_back(e.name);
  return names;
}

std::unique_ptr<Strategy> make_strategy(const CompressionConfig& config) {
  for (const StrategyEntry& e : kStrategies) {
    if (config.strategy == e.name) return e.make(config);
  }
  HARDKV_THROW(kInvalidArgument, "unknown compression strategy '{}' (known: {})", config.strategy,
               fmt::join(strategy_names(), ", "));
}

}  // namespace hardkv::compress
