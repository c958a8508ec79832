// `hard` (the paper's "+Ours"): head h keeps TopP(p_attn) of softmax(score / T_h), where T_h is
// calibrated so that this distribution puts p_attn on its top n*_h candidates, n*_h being the
// size of the smallest set of candidates holding p_attn of the head's TRUE attention. The count
// is floored at budget - window - sinks and capped at upper_budget - window - sinks.
#include <algorithm>

#include "compress/allocation.h"
#include "compress/rank_order.h"

namespace hardkv::compress {
namespace {

class HardAllocation final : public Allocation {
 public:
  explicit HardAllocation(const CompressionConfig& config)
      : p_attn_(config.p_attn), floor_(config.candidate_budget()), cap_(config.candidate_cap()) {}
  std::string_view name() const override { return "hard"; }
  std::vector<HeadSelection> allocate(const LayerScores& layer) const override {
    std::vector<HeadSelection> out;
    for (const HeadScores& head : layer.heads) out.push_back(allocate_head(head));
    return out;
  }

 private:
  HeadSelection allocate_head(const HeadScores& head) const {
    const std::vector<int32_t> order = rank_order(head.score);
    const int32_t n = static_cast<int32_t>(order.size());
    if (n == 0) return select_prefix(head, order, 0, 0, 1.0);
    // n*_h counts the LARGEST true-attention entries (not the first positions).
    const int32_t n_star = top_p_size(head.true_attn, p_attn_);
    const double temperature = calibrate_temperature(head.score, order, n_star, p_attn_);
    const int32_t top_p = top_p_count(head.score, order, temperature, p_attn_);
    const int32_t count = std::min(n, std::clamp(top_p, floor_, cap_));
    return select_prefix(head, order, count, n_star, temperature);
  }

  double p_attn_;
  int32_t floor_;
  int32_t cap_;
};

}  // namespace

std::unique_ptr<Allocation> make_hard_allocation(const CompressionConfig& config) {
  return std::make_unique<HardAllocation>(config);
}

}  // namespace hardkv::compress
