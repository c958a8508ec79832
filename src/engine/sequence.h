// Sequence: one request inside the engine — its token ids (prompt + output), how many of them
// have KV in the cache, its block table, sampling parameters, status and per-request metrics.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hardkv/request_output.h"
#include "hardkv/sampling_params.h"

namespace hardkv {

enum class SequenceStatus { kWaiting, kRunning, kFinished };

// Timestamps in seconds on the engine's steady clock (< 0: not reached yet).
struct SequenceMetrics {
  double arrival_time = -1;
  double first_scheduled_time = -1;
  double first_token_time = -1;
  double last_token_time = -1;
  double finish_time = -1;
  int num_preemptions = 0;
  int num_cached_prompt_tokens = 0;  // prompt tokens served by the prefix cache (first admission)
};

struct Sequence {
  Sequence(int64_t seq_id, std::vector<int32_t> prompt_token_ids, SamplingParams params,
           double arrival_time);

  int64_t seq_id;
  std::vector<int32_t> token_ids;  // [num_tokens] prompt then output
  int num_prompt_tokens;
  // Tokens [0, num_computed_tokens) have their K/V in the blocks of block_table.
  int num_computed_tokens = 0;
  // Of those, tokens that came from the prefix cache at the latest admission.
  int num_cached_tokens = 0;
  // Leading full blocks of block_table whose hash is registered (prefix caching bookkeeping).
  int num_hashed_blocks = 0;
  std::vector<int32_t> block_table;  // physical KV block ids, in token order
  SamplingParams params;
  uint64_t rng_seed = 0;  // per-request sampling stream (params.seed, or drawn at arrival)
  SequenceStatus status = SequenceStatus::kWaiting;
  // The last token is a placeholder of a launched step whose token will end the sequence by
  // length (max_tokens, max_model_len, forced tokens): it is not scheduled again meanwhile.
  bool final_token_pending = false;
  FinishReason finish_reason = FinishReason::kNone;
  std::string error;  // message when finish_reason == kError
  SequenceMetrics metrics;
  std::vector<float> output_logprobs;  // per output token, when params.logprobs

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  // Tokens still to run through the model (the whole rest of the prompt, or the last sample).
  int num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }
  std::span<const int32_t> output_token_ids() const {
    return std::span<const int32_t>(token_ids).subspan(num_prompt_tokens);
  }
  int32_t last_token() const { return token_ids.back(); }
  bool is_finished() const { return status == SequenceStatus::kFinished; }
  void append_token(int32_t token_id) { token_ids.push_back(token_id); }
};

}  // namespace hardkv
