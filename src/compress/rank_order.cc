// Rank order, top-p sizes and temperature calibration (see rank_order.h).
#include "compress/rank_order.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace hardkv::compress {

std::vector<int32_t> rank_order(const std::vector<float>& score) {
  for (size_t j = 0; j < score.size(); ++j) {
    HARDKV_CHECK(!std::isnan(score[j]), kInvalidArgument, "candidate {} has a NaN score", j);
  }
  std::vector<int32_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return score[a] != score[b] ? score[a] > score[b] : a < b;
  });
  return order;
}

int32_t top_p_size(const std::vector<float>& dist, double p) {
  std::vector<double> sorted(dist.begin(), dist.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  const double total = std::accumulate(sorted.begin(), sorted.end(), 0.0);
  const int32_t n = static_cast<int32_t>(sorted.size());
  double cumulative = 0.0;
  for (int32_t k = 1; k < n; ++k) {
    cumulative += sorted[k - 1];
    if (cumulative / total >= p) return k;
  }
  return n;
}

namespace {

// Unnormalised softmax(score / T) in rank order: w[i] = exp((score[order[i]] - max) / T).
std::vector<double> rank_weights(const std::vector<float>& score, const std::vector<int32_t>& order,
                                 double temperature) {
  std::vector<double> w(order.size());
  if (order.empty()) return w;
  const double top = score[order[0]];
  for (size_t i = 0; i < order.size(); ++i) {
    w[i] = std::exp((static_cast<double>(score[order[i]]) - top) / temperature);
  }
  return w;
}

}  // namespace

double prefix_mass(const std::vector<float>& score, const std::vector<int32_t>& order, int32_t k,
                   double temperature) {
  const int32_t n = static_cast<int32_t>(order.size());
  if (k >= n) return 1.0;
  if (k <= 0) return 0.0;
  const std::vector<double> w = rank_weights(score, order, temperature);
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  return std::accumulate(w.begin(), w.begin() + k, 0.0) / total;
}

// One pass; the running sum adds in the same order as prefix_mass, so both agree bit for bit.
int32_t top_p_count(const std::vector<float>& score, const std::vector<int32_t>& order,
                    double temperature, double p) {
  const int32_t n = static_cast<int32_t>(order.size());
  const std::vector<double> w = rank_weights(score, order, temperature);
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  double head = 0.0;
  for (int32_t k = 1; k < n; ++k) {
    head += w[k - 1];
    if (head / total >= p) return k;
  }
  return n;
}

double calibrate_temperature(const std::vector<float>& score, const std::vector<int32_t>& order,
                             int32_t k, double p) {
  const int32_t n = static_cast<int32_t>(order.size());
  // prefix_mass without its allocations: the same terms added in the same order (bit-identical),
  // the score differences computed once.
  std::vector<double> diff(n);
  for (int32_t i = 0; i < n; ++i) {
    diff[i] = static_cast<double>(score[order[i]]) - static_cast<double>(score[order[0]]);
  }
  auto mass = [&](double temperature) {
    if (k >= n) return 1.0;
    if (k <= 0) return 0.0;
    double total = 0.0, head = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      total += std::exp(diff[i] / temperature);
      if (i == k - 1) head = total;
    }
    return head / total;
  };
  if (mass(kMaxTemperature) >= p) return kMaxTemperature;
  if (mass(kMinTemperature) < p) return kMinTemperature;
  // Invariant: mass(exp(lo)) >= p > mass(exp(hi)). Halving the log-range of 18.4 down to 1e-12
  // (45 steps) leaves T within a relative 1e-12 of the boundary.
  double lo = std::log(kMinTemperature);
  double hi = std::log(kMaxTemperature);
  while (hi - lo > 1e-12) {
    const double mid = 0.5 * (lo + hi);
    if (mass(std::exp(mid)) >= p) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return std::exp(lo);
}

HeadSelection select_prefix(const HeadScores& head, const std::vector<int32_t>& order,
                            int32_t count, int32_t target, double temperature) {
  HARDKV_ASSERT(count >= 0 && count <= static_cast<int32_t>(order.size()));
  HeadSelection sel;
  sel.kept.assign(order.begin(), order.begin() + count);
  std::sort(sel.kept.begin(), sel.kept.end());
  sel.target = target;
  sel.temperature = temperature;
  for (int32_t j : sel.kept) sel.true_mass += head.true_attn[j];
  sel.calibrated_mass = prefix_mass(head.score, order, count, temperature);
  return sel;
}

}  // namespace hardkv::compress
