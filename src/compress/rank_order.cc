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
  // mass(T) and d mass / d log T from one pass (the mass adds in prefix_mass's order, so the two
  // agree bit for bit): w_i = exp(diff_i / T), dw_i / dlogT = -w_i diff_i / T.
  auto eval = [&](double temperature, double* slope) {
    if (k >= n) return 1.0;
    if (k <= 0) return 0.0;
    double total = 0.0, head = 0.0, moment = 0.0, head_moment = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      const double z = diff[i] / temperature;
      const double w = std::exp(z);
      total += w;
      moment += w * z;
      if (i == k - 1) {
        head = total;
        head_moment = moment;
      }
    }
    if (slope != nullptr) *slope = (-head_moment * total + head * moment) / (total * total);
    return head / total;
  };
  if (eval(kMaxTemperature, nullptr) >= p) return kMaxTemperature;
  if (eval(kMinTemperature, nullptr) < p) return kMinTemperature;
  // Invariant: mass(exp(lo)) >= p > mass(exp(hi)). Safeguarded Newton in log T (mass is smooth
  // and decreasing there): the midpoint instead when the Newton point leaves the bracket or |f|
  // did not halve; once converged, one step just past the root closes the bracket. Ends with a
  // log-width of 1e-12 (T within a relative 1e-12 of the boundary, like the plain bisection it
  // replaces) after ~10 passes instead of ~45.
  double lo = std::log(kMinTemperature), hi = std::log(kMaxTemperature);
  double x = 0.5 * (lo + hi), prev_abs_f = INFINITY;
  for (int iter = 0; hi - lo > 1e-12 && iter < 200; ++iter) {
    double slope = 0.0;
    const double f = eval(std::exp(x), &slope) - p;
    if (f >= 0) {
      lo = x;
    } else {
      hi = x;
    }
    double next = 0.5 * (lo + hi);
    if (slope < 0 && std::fabs(f) <= 0.5 * prev_abs_f) next = x - f / slope;
    prev_abs_f = std::fabs(f);
    if (std::fabs(next - x) < 2.5e-13) next = f >= 0 ? x + 5e-13 : x - 5e-13;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    x = next;
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
