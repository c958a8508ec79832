// Shared math of the scoring strategies: the head's true attention over candidates, max-pooling
// over candidate order, and the map from non-negative scores to log-domain scores.
#pragma once

#include <vector>

#include "compress/head_input.h"

namespace hardkv::compress {

// [num_candidates] mean over observation rows r and group heads g of softmax_j(q_rg . k_j /
// sqrt(head_dim)), the softmax taken over candidates only. Accumulated in double. Returns
// in.true_attn instead when it is set.
std::vector<double> true_attention(const HeadInput& in);

// [n] out[j] = max(x[j - kernel/2 .. j + kernel/2] clipped to [0, n)); kernel odd >= 1.
std::vector<double> max_pool(const std::vector<double>& x, int kernel);

// [n] phi[j] = log(s[j] / sum(s) + 1e-10) as float, for s >= 0; all zeros when sum(s) == 0.
// The 1e-10 floor keeps zero scores finite (and last in rank order).
std::vector<float> log_normalize(const std::vector<double>& s);

std::vector<float> to_float(const std::vector<double>& x);

}  // namespace hardkv::compress
