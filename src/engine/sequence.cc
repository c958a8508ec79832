// Sequence construction and finish-reason names.
#include "engine/sequence.h"

#include <utility>

namespace hardkv {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "";
}

Sequence::Sequence(int64_t seq_id, std::vector<int32_t> prompt_token_ids, SamplingParams params,
                   double arrival_time)
    : seq_id(seq_id),
      token_ids(std::move(prompt_token_ids)),
      num_prompt_tokens(static_cast<int>(token_ids.size())),
      params(std::move(params)) {
  metrics.arrival_time = arrival_time;
}

}  // namespace hardkv
