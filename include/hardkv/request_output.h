// What the engine hands back per request: finish reason, text, token ids and timing metrics, and
// the per-token events of the streaming callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hardkv {

// Why a request ended. kNone while it runs.
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

const char* finish_reason_name(FinishReason reason);  // "stop", "length", "abort", "error", ""

struct RequestMetrics {
  int num_prompt_tokens = 0;
  int num_output_tokens = 0;
  int num_cached_prompt_tokens = 0;  // served by the prefix cache at the first admission
  int num_preemptions = 0;
  double time_to_first_token = -1;    // seconds from arrival to the first sampled token
  double time_per_output_token = -1;  // mean seconds between output tokens after the first
  double e2e_latency = -1;            // seconds from arrival to finish
};

struct RequestOutput {
  int64_t request_id = -1;
  // Output text: detokenized without special tokens, cut before a matched stop string; the stop
  // token (EOS or a stop_token_id) never contributes text.
  std::string text;
  std::vector<int32_t> token_ids;  // every sampled token, the final stop token included
  std::vector<float> logprobs;     // [token_ids.size()] when SamplingParams::logprobs, else empty
  FinishReason finish_reason = FinishReason::kNone;
  std::string error;  // set when finish_reason == kError
  RequestMetrics metrics;
};

// One streaming callback call per sampled token; `text` is the newly final text (may be empty:
// incomplete UTF-8 or possibly the start of a stop string is held back until decided). The last
// call of a request has finished == true (with the rest of the text).
struct StreamEvent {
  int64_t request_id = -1;
  int32_t token_id = -1;  // -1 when the request ends without a new token (abort)
  std::string text;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
};

using StreamCallback = std::function<void(const StreamEvent&)>;

}  // namespace hardkv
