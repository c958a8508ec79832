// `pyramid` (PyramidKV-style layerwise budgets): the candidate quota falls linearly with depth,
// from 2c - c/beta at layer 0 to c/beta at the last layer (c = budget - window - sinks), so the
// mean over layers stays about c; every head of a layer keeps its top quota (capped at
// upper_budget - window - sinks).
#include <algorithm>

#include "compress/allocation.h"
#include "compress/rank_order.h"
#include "core/error.h"

namespace hardkv::compress {

namespace {

class PyramidAllocation final : public Allocation {
 public:
  explicit PyramidAllocation(const CompressionConfig& config)
      : quota_(config.candidate_budget()),
        beta_(config.pyramid_beta),
        cap_(config.candidate_cap()) {}
  std::string_view name() const override { return "pyramid"; }
  std::vector<HeadSelection> allocate(const LayerScores& layer) const override {
    HARDKV_CHECK(
        layer.num_layers >= 1 && layer.layer_idx >= 0 && layer.layer_idx < layer.num_layers,
        kInvalidArgument, "pyramid allocation: layer {} of {} is out of range", layer.layer_idx,
        layer.num_layers);
    const int32_t layer_quota = std::min(cap_, quota(layer.layer_idx, layer.num_layers));
    std::vector<HeadSelection> out;
    for (const HeadScores& head : layer.heads) {
      const std::vector<int32_t> order = rank_order(head.score);
      const int32_t count = std::min<int32_t>(layer_quota, static_cast<int32_t>(order.size()));
      out.push_back(select_prefix(head, order, count, layer_quota, 1.0));
    }
    return out;
  }

 private:
  // quota_l = q_max - floor(l * (q_max - q_min) / (L - 1)), q_min = floor(c / beta),
  // q_max = 2c - q_min.
  int32_t quota(int layer_idx, int num_layers) const {
    if (num_layers == 1) return quota_;
    const int64_t q_min = quota_ / beta_;
    const int64_t q_max = 2 * static_cast<int64_t>(quota_) - q_min;
    return static_cast<int32_t>(q_max - (layer_idx * (q_max - q_min)) / (num_layers - 1));
  }

  int32_t quota_;
  int32_t beta_;
  int32_t cap_;
};

}  // namespace

std::unique_ptr<Allocation> make_pyramid_allocation(const CompressionConfig& config) {
  return std::make_unique<PyramidAllocation>(config);
}

}  // namespace hardkv::compress
