// Shared math of the scoring strategies (see attention_math.h).
#include "compress/attention_math.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace hardkv::compress {

std::vector<double> true_attention(const HeadInput& in) {
  const int n = in.num_candidates;
  const int d = in.head_dim;
  std::vector<double> mean(n, 0.0);
  if (n == 0) return mean;
  if (in.true_attn != nullptr) {  // computed elsewhere (device scoring)
    for (int j = 0; j < n; ++j) mean[j] = in.true_attn[j];
    return mean;
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> z(n);
  const int rows = in.num_obs * in.group_size;
  for (int row = 0; row < rows; ++row) {
    const float* q = in.q_obs + static_cast<int64_t>(row) * d;
    double z_max = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < n; ++j) {
      const float* k = in.keys + static_cast<int64_t>(j) * d;
      // Four independent partial sums (vectorisable; one chain of dependent adds is ~4x slower).
      double part[4] = {0.0, 0.0, 0.0, 0.0};
      int c = 0;
      for (; c + 4 <= d; c += 4) {
        for (int u = 0; u < 4; ++u) part[u] += static_cast<double>(q[c + u]) * k[c + u];
      }
      for (; c < d; ++c) part[0] += static_cast<double>(q[c]) * k[c];
      const double dot = (part[0] + part[1]) + (part[2] + part[3]);
      z[j] = dot * scale;
      z_max = std::max(z_max, z[j]);
    }
    double denom = 0.0;
    for (int j = 0; j < n; ++j) {
      z[j] = std::exp(z[j] - z_max);
      denom += z[j];
    }
    for (int j = 0; j < n; ++j) mean[j] += z[j] / denom;
  }
  for (double& m : mean) m /= rows;
  return mean;
}

std::vector<double> max_pool(const std::vector<double>& x, int kernel) {
  HARDKV_CHECK(kernel >= 1 && kernel % 2 == 1, kInvalidArgument,
               "pool kernel must be odd and >= 1, got {}", kernel);
  const int n = static_cast<int>(x.size());
  const int half = kernel / 2;
  std::vector<double> out(n);
  for (int j = 0; j < n; ++j) {
    const int lo = std::max(0, j - half);
    const int hi = std::min(n - 1, j + half);
    out[j] = *std::max_element(x.begin() + lo, x.begin() + hi + 1);
  }
  return out;
}

std::vector<float> log_normalize(const std::vector<double>& s) {
  double sum = 0.0;
  for (double v : s) sum += v;
  std::vector<float> phi(s.size(), 0.0f);
  if (!(sum > 0.0)) return phi;
  for (size_t j = 0; j < s.size(); ++j) {
    phi[j] = static_cast<float>(std::log(s[j] / sum + 1e-10));
  }
  return phi;
}

std::vector<float> to_float(const std::vector<double>& x) {
  return std::vector<float>(x.begin(), x.end());
}

}  // namespace hardkv::compress
