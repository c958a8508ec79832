// Host sampler: softmax with temperature, then the top-k / top-p / min-p filters, then one draw.
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace hardkv {
namespace {

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

}  // namespace

void sampling_distribution(std::span<const float> logits, const SamplingParams& p,
                           std::span<double> probs) {
  const size_t n = logits.size();
  HARDKV_CHECK(n > 0 && probs.size() == n, kInternal, "sampling over {} logits", n);
  std::fill(probs.begin(), probs.end(), 0.0);
  if (p.temperature == 0.0f) {
    probs[argmax(logits)] = 1.0;
    return;
  }
  // Candidates sorted by logit (descending; ties by lower id). Only the top-k are sorted when
  // top-k is on, which keeps large vocabularies cheap.
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  size_t keep = n;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), better);
  } else if (p.top_p < 1.0f || p.min_p > 0.0f) {
    std::sort(order.begin(), order.end(), better);
  } else {  // no filter: only the maximum is needed (for a stable softmax)
    std::iter_swap(order.begin(), std::min_element(order.begin(), order.end(), better));
  }
  const double inv_t = 1.0 / p.temperature;
  const double max_logit = logits[order[0]];
  std::vector<double> w(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    w[i] = std::exp((logits[order[i]] - max_logit) * inv_t);
    total += w[i];
  }
  if (p.top_p < 1.0f) {  // smallest prefix of the sorted candidates holding top_p of the mass
    double cum = 0.0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += w[i] / total;
      if (cum >= p.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
  }
  if (p.min_p > 0.0f) {  // w[0] is the largest weight
    const double threshold = p.min_p * w[0];
    size_t cut = 1;
    while (cut < keep && w[cut] >= threshold) ++cut;
    keep = cut;
  }
  double kept_total = 0.0;
  for (size_t i = 0; i < keep; ++i) kept_total += w[i];
  for (size_t i = 0; i < keep; ++i) probs[order[i]] = w[i] / kept_total;
}

int32_t sample_token(std::span<const float> logits, const SamplingParams& p, Rng& rng) {
  if (p.temperature == 0.0f) return argmax(logits);
  return sample_token_with_uniform(logits, p, rng.next_double());
}

float token_logprob(std::span<const float> logits, int32_t token) {
  HARDKV_CHECK(token >= 0 && static_cast<size_t>(token) < logits.size(), kInvalidArgument,
               "token {} outside a vocabulary of {}", token, logits.size());
  const float m = *std::max_element(logits.begin(), logits.end());
  double z = 0.0;
  for (float x : logits) z += std::exp(static_cast<double>(x) - m);
  return static_cast<float>(static_cast<double>(logits[token]) - m - std::log(z));
}

int32_t sample_token_with_uniform(std::span<const float> logits, const SamplingParams& p,
                                  double u) {
  if (p.temperature == 0.0f) return argmax(logits);
  std::vector<double> probs(logits.size());
  sampling_distribution(logits, p, probs);
  double cum = 0.0;
  int32_t last_nonzero = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0.0) continue;
    cum += probs[i];
    last_nonzero = static_cast<int32_t>(i);
    if (u < cum) return last_nonzero;
  }
  return last_nonzero;  // rounding left u >= cum: the last candidate
}

}  // namespace hardkv
