// Host sampler: picks the next token from one row of fp32 logits under SamplingParams
// (greedy, temperature, top-k, top-p, min-p; applied in that order, as vLLM does).
#pragma once

#include <cstdint>
#include <span>

#include "hardkv/sampling_params.h"
#include "core/rng.h"

namespace hardkv {

// Greedy when temperature == 0 (ties: lowest id). Otherwise draws one uniform from `rng`.
int32_t sample_token(std::span<const float> logits, const SamplingParams& params, Rng& rng);

// The probabilities sample_token draws from (after temperature, top-k, top-p, min-p and
// renormalisation), for tests; greedy gives a one-hot vector.
void sampling_distribution(std::span<const float> logits, const SamplingParams& params,
                           std::span<double> probs_out);

}  // namespace hardkv
