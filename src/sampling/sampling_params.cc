// SamplingParams validation.
#include <cmath>

#include "core/error.h"
#include "hardkv/sampling_params.h"

namespace hardkv {

void SamplingParams::validate() const {
  HARDKV_CHECK(std::isfinite(temperature) && temperature >= 0.0f, kInvalidArgument,
               "temperature must be >= 0 (0 = greedy), got {}", temperature);
  HARDKV_CHECK(std::isfinite(top_p) && top_p > 0.0f && top_p <= 1.0f, kInvalidArgument,
               "top_p must be in (0, 1], got {}", top_p);
  HARDKV_CHECK(std::isfinite(min_p) && min_p >= 0.0f && min_p < 1.0f, kInvalidArgument,
               "min_p must be in [0, 1), got {}", min_p);
  HARDKV_CHECK(top_k >= -1, kInvalidArgument, "top_k must be -1 or 0 (off) or positive, got {}",
               top_k);
  HARDKV_CHECK(max_tokens > 0, kInvalidArgument, "max_tokens must be > 0, got {}", max_tokens);
  for (int32_t t : forced_tokens) {
    HARDKV_CHECK(t >= 0, kInvalidArgument, "forced_tokens must be token ids >= 0, got {}", t);
  }
  for (const std::string& s : stop) {
    HARDKV_CHECK(!s.empty(), kInvalidArgument, "stop strings must not be empty");
  }
}

}  // namespace hardkv
