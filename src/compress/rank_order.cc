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
  // Per-thread scratch: events rank thousands of heads, and fresh buffers of this size cost page
  // faults on every call once the allocator hands them back to the system.
  thread_local std::vector<uint32_t> key, key_tmp;
  thread_local std::vector<int32_t> order_tmp;
  key.resize(n);
  key_tmp.resize(n);
  order_tmp.resize(n);
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

// exp(z) is exactly +0 in double for every z below this (the smallest subnormal is 2^-1074 =
// e^-744.44, and exp rounds e^z below half of it to 0).
constexpr double kExpZeroBelow = -745.2;

// Unnormalised softmax(score / T) in rank order: w[i] = exp((score[order[i]] - max) / T).
// (A per-thread buffer, valid until the thread's next call: see descending_order.)
const std::vector<double>& rank_weights(const std::vector<float>& score,
                                        const std::vector<int32_t>& order, double temperature) {
  thread_local std::vector<double> w;
  w.assign(order.size(), 0.0);
  if (order.empty()) return w;
  const double top = score[order[0]];
  for (size_t i = 0; i < order.size(); ++i) {
    const double z = (static_cast<double>(score[order[i]]) - top) / temperature;
    // In rank order z only falls: from the first z whose exp is exactly 0 on, all are (the
    // entries stay 0; the slow underflow path of exp is never taken).
    if (z < kExpZeroBelow) break;
    w[i] = std::exp(z);
  }
  return w;
}

// exp(z) for z <= 0 in float, branch-free so that loops over it vectorise: 2^m e^r with m the
// nearest integer to z / ln 2 and |r| <= ln2 / 2, e^r by its degree-6 Taylor polynomial (relative
// error < 3e-7); z below -87 gives ~0 instead of a denormal. (no-trapping-math lets GCC turn the
// clamp into a vector max.)
[[gnu::optimize("no-trapping-math")]] inline float exp_nonpositive(float z) {
  z = z > -87.0f ? z : -87.0f;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float m = (z * 1.44269504f + shifter) - shifter;
  const float r = (z - m * 0.693145752f) - m * 1.42860677e-6f;  // ln 2 in two parts
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(m) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// w[i] = exp(z_i), wz[i] = w[i] z_i with z_i = d[i] * inv_t (one vectorised pass).
[[gnu::optimize("no-trapping-math")]] void float_weights(const float* d, int32_t n, float inv_t,
                                                           float* w, float* wz) {
  for (int32_t i = 0; i < n; ++i) {
    const float z = d[i] * inv_t;
    const float e = exp_nonpositive(z);
    w[i] = e;
    wz[i] = e * z;
  }
}

// Sum of x[begin, end) in eight float lanes (vectorised), totalled in double.
double lane_sum(const float* x, int32_t begin, int32_t end) {
  constexpr int kLanes = 8;
  float acc[kLanes] = {};
  int32_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int u = 0; u < kLanes; ++u) acc[u] += x[i + u];
  }
  double total = 0.0;
  for (; i < end; ++i) total += x[i];
  for (float a : acc) total += a;
  return total;
}

// A starting point for the exact search: Newton in log T on the mass computed in float, from
// T = 1, a few steps; returns log T (0 when the float search does not settle inside the bracket).
double approximate_log_temperature(const std::vector<float>& diff, int32_t k, double p, double lo,
                                   double hi) {
  const int32_t n = static_cast<int32_t>(diff.size());
  double x = 0.0;
  thread_local std::vector<float> w, wz;
  w.resize(n);
  wz.resize(n);
  for (int iter = 0; iter < 8; ++iter) {
    float_weights(diff.data(), n, static_cast<float>(std::exp(-x)), w.data(), wz.data());
    const double head = lane_sum(w.data(), 0, k), tail = lane_sum(w.data(), k, n);
    const double head_moment = lane_sum(wz.data(), 0, k), tail_moment = lane_sum(wz.data(), k, n);
    const double total = head + tail, moment = head_moment + tail_moment;
    if (!(total > 0.0)) return 0.0;
    const double f = head / total - p;
    const double slope = (-head_moment * total + head * moment) / (total * total);
    if (!(slope < 0.0)) return 0.0;
    const double next = x - f / slope;
    if (!(next > lo && next < hi)) return 0.0;
    const bool settled = std::fabs(next - x) < 1e-6;
    x = next;
    if (settled) break;
  }
  return x;
}

}  // namespace

double prefix_mass(const std::vector<float>& score, const std::vector<int32_t>& order, int32_t k,
                   double temperature) {
  const int32_t n = static_cast<int32_t>(order.size());
  if (k >= n) return 1.0;
  if (k <= 0) return 0.0;
  const std::vector<double>& w = rank_weights(score, order, temperature);
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  return std::accumulate(w.begin(), w.begin() + k, 0.0) / total;
}

// One pass; the running sum adds in the same order as prefix_mass, so both agree bit for bit.
int32_t top_p_count(const std::vector<float>& score, const std::vector<int32_t>& order,
                    double temperature, double p) {
  const int32_t n = static_cast<int32_t>(order.size());
  const std::vector<double>& w = rank_weights(score, order, temperature);
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
  thread_local std::vector<double> diff;
  diff.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    diff[i] = static_cast<double>(score[order[i]]) - static_cast<double>(score[order[0]]);
  }
  // mass(T) and d mass / d log T from one pass (the mass adds in prefix_mass's order, so the two
  // agree bit for bit): w_i = exp(diff_i / T), dw_i / dlogT = -w_i diff_i / T.
  auto eval = [&](double temperature, double* slope) {
    if (k >= n) return 1.0;
    if (k <= 0) return 0.0;
    double total = 0.0, head = 0.0, moment = 0.0, head_moment = 0.0;
    int32_t i = 0;
    for (; i < n; ++i) {
      const double z = diff[i] / temperature;
      // diff falls along the rank order: from the first exactly-zero weight on, every term adds
      // +0 (w) or -0 (w z), which leaves the sums as they are, so the pass ends there.
      if (z < kExpZeroBelow) break;
      const double w = std::exp(z);
      total += w;
      moment += w * z;
      if (i == k - 1) {
        head = total;
        head_moment = moment;
      }
    }
    if (i <= k - 1) {  // the head reaches past the last non-zero weight
      head = total;
      head_moment = moment;
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
  // The exact search starts from a float estimate of the root (a few cheap vectorised passes), so
  // that it needs ~4 double passes instead of ~10; the bracket logic below is unchanged.
  thread_local std::vector<float> diff_f;
  diff_f.assign(diff.begin(), diff.end());
  double x = approximate_log_temperature(diff_f, k, p, lo, hi), prev_abs_f = INFINITY;
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
