// The allocation registry: name -> factory (an explicit table; see strategy_registry.cc for why).
#include <fmt/ranges.h>

#include <array>

#include "compress/allocation.h"
#include "core/error.h"

namespace hardkv::compress {
namespace {

struct AllocationEntry {
  const char* name;
  std::unique_ptr<Allocation> (*make)(const CompressionConfig&);
};

constexpr std::array<AllocationEntry, 4> kAllocations{{
    {"uniform", make_uniform_allocation},
    {"hard", make_hard_allocation},
    {"adakv", make_adakv_allocation},
    {"pyramid", make_pyramid_allocation},
}};

}  // namespace

std::vector<std::string> allocation_names() {
  std::vector<std::string> names;
  for (const AllocationEntry& e : kAllocations) names.emplace_back(e.name);
  return names;
}

std::unique_ptr<Allocation> make_allocation(const CompressionConfig& config) {
  for (const AllocationEntry& e : kAllocations) {
    if (config.allocation == e.name) return e.make(config);
  }
  HARDKV_THROW(kInvalidArgument, "unknown compression allocation '{}' (known: {})",
               config.allocation, fmt::join(allocation_names(), ", "));
}

}  // namespace hardkv::compress
