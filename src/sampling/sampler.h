// Host sampler: picks the next token from one row of fp32 logits under SamplingParams
// (greedy, temperature, top-k, top-p, min-p; applied in that order, as vLLM does).
#pragma once

#include <cstdint>
#include <span>

#include "hardkv/sampling_params.h"
#include "core/rng.h"

namespace hardkv {

// Greedy when temperature == 0 (ties: lowest id). Otherwise draws one uniform from `rng` and
// returns sample_token_with_uniform for it.
int32_t sample_token(std::span<const float> logits, const SamplingParams& params, Rng& rng);
// The token at `uniform` in [0, 1) of sampling_distribution, by inverse CDF in token-id order
// (greedy ignores `uniform`). This is the reference of every backend's sample op.
int32_t sample_token_with_uniform(std::span<const float> logits, const SamplingParams& params,
                                  double uniform);
// log_softmax(logits)[token] at temperature 1 with no filter (the "raw" log-probability).
float token_logprob(std::span<const float> logits, int32_t token);

// The probabilities sample_token draws from (after temperature, top-k, top-p, min-p and
// renormalisation), for tests; greedy gives a one-hot vector.
void sampling_distribution(std::span<const float> logits, const SamplingParams& params,
                           std::span<double> probs_out);

}  // namespace hardkv
