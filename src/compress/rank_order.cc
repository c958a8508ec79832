// Rank order, top-p sizes and temperature calibration (see rank_order.h).
#include "compress/rank_order.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace hardkv::compress {

namespace {

// A float's bits mapped to an unsigned key whose ascending order is the float's DESCENDING order
// (-0.0 folded into +0.0 so that the two compare equal, as floats do; no NaN comes here).
uint32_t descending_key(float v) {
  if (v == 0.0f) v = 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  const uint32_t ascending = (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
  return ~ascending;
}

// Indices of v by value descending, equal values by index ascending: a stable LSD radix sort of
// the keys (three 11-bit digits; a digit all keys share is skipped). O(n) instead of the
// comparison sort's O(n log n) branchy compares, which dominated a compression event.
std::vector<int32_t> descending_order(const float* v, int32_t n) {
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (n < 64) {
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
    return order;
  }
  std::vector<uint32_t> key(n), key_tmp(n);
  std::vector<int32_t> order_tmp(n);
  for (int32_t i = 0; i < n; ++i) key[i] = descending_key(v[i]);
  constexpr int kBits = 11, kBuckets = 1 << kBits;
  std::vector<int32_t> count(kBuckets);
  for (int shift = 0; shift < 32; shift += kBits) {
    std::fill(count.begin(), count.end(), 0);
    for (int32_t i = 0; i < n; ++i) ++count[(key[i] >> shift) & (kBuckets - 1)];
    if (count[(key[0] >> shift) & (kBuckets - 1)] == n) continue;  // one digit value: no-op
    int32_t sum = 0;
    for (int32_t& c : count) {
      const int32_t here = c;
      c = sum;
      sum += here;
    }
    for (int32_t i = 0; i < n; ++i) {
      const int32_t dst = count[(key[i] >> shift) & (kBuckets - 1)]++;
      key_tmp[dst] = key[i];
      order_tmp[dst] = order[i];
    }
    key.swap(key_tmp);
    order.swap(order_tmp);
  }
  return order;
}

}  // namespace

std::vector<int32_t> rank_order(const std::vector<float>& score) {
  for (size_t j = 0; j < score.size(); ++j) {
    HARDKV_CHECK(!std::isnan(score[j]), kInvalidArgument, "candidate {} has a NaN score", j);
  }
  return descending_order(score.data(), static_cast<int32_t>(score.size()));
}

// The entries are summed in descending order, as a sort would give them (equal entries are equal
// numbers, so their order among themselves does not change a sum).
int32_t top_p_size(const std::vector<float>& dist, double p) {
  const int32_t n = static_cast<int32_t>(dist.size());
  const std::vector<int32_t> order = descending_order(dist.data(), n);
  double total = 0.0;
  for (int32_t i : order) total += static_cast<double>(dist[i]);
  double cumulative = 0.0;
  for (int32_t k = 1; k < n; ++k) {
    cumulative += static_cast<double>(dist[order[k - 1]]);
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
  std::vector<uint8_t> keep(order.size(), 0);  // the prefix, collected in index order
  for (int32_t i = 0; i < count; ++i) keep[order[i]] = 1;
  sel.kept.reserve(count);
  for (int32_t j = 0; j < static_cast<int32_t>(keep.size()); ++j) {
    if (keep[j]) sel.kept.push_back(j);
  }
  sel.target = target;
  sel.temperature = temperature;
  for (int32_t j : sel.kept) sel.true_mass += head.true_attn[j];
  sel.calibrated_mass = prefix_mass(head.score, order, count, temperature);
  return sel;
}

}  // namespace hardkv::compress
