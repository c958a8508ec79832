// `rkv` (R-KV): lambda * importance - (1 - lambda) * redundancy. Importance is the max-pooled mean
// attention (as snapkv); redundancy (or a device's precomputed one) comes from the key cosine
// similarity with R-KV's keep-most-recent rule. Exact definition: docs/COMPRESSION.md.
#include <algorithm>
#include <cmath>

#include "compress/attention_math.h"
#include "compress/strategy.h"
#include "core/error.h"

namespace hardkv::compress {
namespace {

// [n] softmax over j of the column means of the cosine-similarity matrix S[i][j] (zero diagonal),
// where in every row i the entry of the most recent j with S[i][j] > threshold is zeroed first:
// the latest of a group of near-duplicates carries no redundancy from that row and so survives.
std::vector<double> redundancy(const HeadInput& in, double threshold) {
  const int n = in.num_candidates;
  const int d = in.head_dim;
  std::vector<double> unit(static_cast<size_t>(n) * d);  // [n, d] keys / (|k| + 1e-8)
  for (int i = 0; i < n; ++i) {
    const float* k = in.keys + static_cast<int64_t>(i) * d;
    double norm = 0.0;
    for (int c = 0; c < d; ++c) norm += static_cast<double>(k[c]) * k[c];
    norm = std::sqrt(norm) + 1e-8;
    for (int c = 0; c < d; ++c) unit[static_cast<size_t>(i) * d + c] = k[c] / norm;
  }
  std::vector<double> column_sum(n, 0.0);
  std::vector<double> row(n);
  for (int i = 0; i < n; ++i) {
    int latest_similar = -1;
    for (int j = 0; j < n; ++j) {
      double dot = 0.0;
      if (j != i) {
        for (int c = 0; c < d; ++c) {
          dot += unit[static_cast<size_t>(i) * d + c] * unit[static_cast<size_t>(j) * d + c];
        }
        if (dot > threshold) latest_similar = j;
      }
      row[j] = dot;
    }
    if (latest_similar >= 0) row[latest_similar] = 0.0;
    for (int j = 0; j < n; ++j) column_sum[j] += row[j];
  }
  double m_max = -INFINITY;
  for (double& s : column_sum) {
    s /= n;
    m_max = std::max(m_max, s);
  }
  double denom = 0.0;
  for (double& s : column_sum) {
    s = std::exp(s - m_max);
    denom += s;
  }
  for (double& s : column_sum) s /= denom;
  return column_sum;
}

class RKVStrategy final : public Strategy {
 public:
  explicit RKVStrategy(const CompressionConfig& config)
      : kernel_(config.pool_kernel), lambda_(config.rkv_lambda), threshold_(config.rkv_threshold) {}
  std::string_view name() const override { return "rkv"; }
  bool needs_keys() const override { return true; }
  HeadScores score(const HeadInput& in) const override {
    in.check(/*needs_keys=*/in.redundancy == nullptr);
    const std::vector<double> attn = true_attention(in);
    HeadScores out;
    out.true_attn = to_float(attn);
    if (in.num_candidates == 0) return out;
    const std::vector<double> importance = max_pool(attn, kernel_);
    std::vector<double> red;
    if (in.redundancy != nullptr) {
      HARDKV_CHECK(in.redundancy_threshold == threshold_, kInvalidArgument,
                   "rkv: the precomputed redundancy used similarity threshold {}, this strategy's "
                   "rkv_threshold is {}",
                   in.redundancy_threshold, threshold_);
      red.assign(in.redundancy, in.redundancy + in.num_candidates);
    } else {
      red = redundancy(in, threshold_);
    }
    std::vector<double> s(attn.size());
    for (size_t j = 0; j < s.size(); ++j) s[j] = lambda_ * importance[j] - (1.0 - lambda_) * red[j];
    // Shift to >= 0 so that the score is a distribution after normalisation (as the reference's
    // top-p variant); the ranking is unchanged.
    const double s_min = *std::min_element(s.begin(), s.end());
    for (double& v : s) v -= s_min;
    out.score = log_normalize(s);
    return out;
  }

 private:
  int kernel_;
  double lambda_;
  double threshold_;
};

}  // namespace

std::unique_ptr<Strategy> make_rkv_strategy(const CompressionConfig& config) {
  return std::make_unique<RKVStrategy>(config);
}

}  // namespace hardkv::compress
