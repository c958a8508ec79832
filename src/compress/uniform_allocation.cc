// `uniform` (the paper's "Base"): every head keeps its top budget - window - sinks candidates.
#include <algorithm>

#include "compress/allocation.h"
#include "compress/rank_order.h"

namespace hardkv::compress {
namespace {

class UniformAllocation final : public Allocation {
 public:
  explicit UniformAllocation(const CompressionConfig& config)
      : quota_(std::min(config.candidate_budget(), config.candidate_cap())) {}
  std::string_view name() const override { return "uniform"; }
  std::vector<HeadSelection> allocate(const LayerScores& layer) const override {
    std::vector<HeadSelection> out;
    for (const HeadScores& head : layer.heads) {
      const std::vector<int32_t> order = rank_order(head.score);
      const int32_t count = std::min<int32_t>(quota_, static_cast<int32_t>(order.size()));
      out.push_back(select_prefix(head, order, count, quota_, 1.0));
    }
    return out;
  }

 private:
  int32_t quota_;
};

}  // namespace

std::unique_ptr<Allocation> make_uniform_allocation(const CompressionConfig& config) {
  return std::make_unique<UniformAllocation>(config);
}

}  // namespace hardkv::compress
