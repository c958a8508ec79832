// SamplingParams: how one request picks its next tokens and when it stops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hardkv {

struct SamplingParams {
  float temperature = 1.0f;  // 0 => greedy (argmax)
  int top_k = 0;             // <= 0 => off
  float top_p = 1.0f;        // (0, 1]; 1 => off
  float min_p = 0.0f;        // [0, 1); 0 => off; keeps tokens with p >= min_p * p_max
  int64_t seed = -1;         // < 0 => nondeterministic; else a per-request deterministic stream
  int max_tokens = 64;       // tokens to generate at most (> 0)
  bool ignore_eos = false;   // keep going past EOS (benchmarks)
  std::vector<int32_t> stop_token_ids;  // extra ids that end the request (besides the model's EOS)
  std::vector<std::string> stop;        // strings that end the request; excluded from the text
  // Return the log-probability of every output token (log_softmax of the raw logits, temperature
  // 1, no filters) in RequestOutput::logprobs.
  bool logprobs = false;
  // Teacher forcing: output token i is forced_tokens[i] instead of a draw (its log-probability is
  // still the model's); the request ends after min(max_tokens, forced_tokens.size()) tokens or at
  // a stop condition. Used to score text (perplexity) through the engine, compressed cache included.
  std::vector<int32_t> forced_tokens;

  // Throws Error(kInvalidArgument) naming the bad field and its allowed range.
  void validate() const;
};

}  // namespace hardkv
