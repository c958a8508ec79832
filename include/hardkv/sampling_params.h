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

  // Throws Error(kInvalidArgument) naming the bad field and its allowed range.
  void validate() const;
};

}  // namespace hardkv
