// `adakv` (AdaKV-style headwise budgets): a layer's total, num_kv_heads * (budget - window -
// sinks), is shared between its heads. Every head first gets its top floor(safeguard * quota)
// candidates; the rest of the total goes to the highest normalised scores softmax(score_h) pooled
// over all heads (ties: lower head, then the head's rank order), a head taking no more than
// upper_budget - window - sinks.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "compress/allocation.h"
#include "compress/rank_order.h"

namespace hardkv::compress {
namespace {

class AdaKVAllocation final : public Allocation {
 public:
  explicit AdaKVAllocation(const CompressionConfig& config)
      : quota_(config.candidate_budget()),
        safeguard_(static_cast<int32_t>(std::floor(config.adakv_safeguard * quota_))),
        cap_(config.candidate_cap()) {}
  std::string_view name() const override { return "adakv"; }

  std::vector<HeadSelection> allocate(const LayerScores& layer) const override {
    const int num_heads = static_cast<int>(layer.heads.size());
    std::vector<std::vector<int32_t>> orders(num_heads);
    std::vector<int32_t> limit(num_heads);  // min(n_h, cap)
    std::vector<int32_t> count(num_heads);
    int64_t remaining = static_cast<int64_t>(num_heads) * quota_;
    for (int h = 0; h < num_heads; ++h) {
      orders[h] = rank_order(layer.heads[h].score);
      limit[h] = std::min<int32_t>(cap_, static_cast<int32_t>(orders[h].size()));
      count[h] = std::min(safeguard_, limit[h]);
      remaining -= count[h];
    }
    // Pool of (normalised score, head, rank) beyond each head's safeguard share.
    std::vector<std::tuple<double, int, int32_t>> pool;
    for (int h = 0; h < num_heads; ++h) {
      const std::vector<float>& score = layer.heads[h].score;
      const std::vector<int32_t>& order = orders[h];
      if (order.empty()) continue;
      double total = 0.0;  // softmax normaliser, max-shifted
      const double top = score[order[0]];
      for (float s : score) total += std::exp(s - top);
      for (int32_t r = count[h]; r < limit[h]; ++r) {
        pool.emplace_back(std::exp(score[order[r]] - top) / total, h, r);
      }
    }
    std::sort(pool.begin(), pool.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
      if (std::get<1>(a) != std::get<1>(b)) return std::get<1>(a) < std::get<1>(b);
      return std::get<2>(a) < std::get<2>(b);
    });
    // Within a head the pool is in rank order, so each head's picks extend its prefix.
    for (size_t i = 0; i < pool.size() && remaining > 0; ++i, --remaining) {
      ++count[std::get<1>(pool[i])];
    }
    std::vector<HeadSelection> out;
    for (int h = 0; h < num_heads; ++h) {
      out.push_back(select_prefix(layer.heads[h], orders[h], count[h], count[h], 1.0));
    }
    return out;
  }

 private:
  int32_t quota_;
  int32_t safeguard_;
  int32_t cap_;
};

}  // namespace

std::unique_ptr<Allocation> make_adakv_allocation(const CompressionConfig& config) {
  return std::make_unique<AdaKVAllocation>(config);
}

}  // namespace hardkv::compress
