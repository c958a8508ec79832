// Validation of a compression event's per-head input (see head_input.h).
#include "compress/head_input.h"

#include "core/error.h"

namespace hardkv::compress {

void HeadInput::check(bool needs_keys) const {
  HARDKV_CHECK(num_candidates >= 0, kInvalidArgument, "num_candidates is {}, must be >= 0",
               num_candidates);
  HARDKV_CHECK(num_obs >= 1 && group_size >= 1 && head_dim >= 1, kInvalidArgument,
               "compression input needs num_obs, group_size, head_dim >= 1 (got {}, {}, {})",
               num_obs, group_size, head_dim);
  if (num_candidates == 0) return;
  HARDKV_CHECK(q_obs != nullptr || true_attn != nullptr, kInvalidArgument,
               "compression input has neither observation queries nor a precomputed attention");
  HARDKV_CHECK(positions != nullptr, kInvalidArgument,
               "compression input has {} candidates but no positions", num_candidates);
  HARDKV_CHECK(keys != nullptr || (true_attn != nullptr && !needs_keys), kInvalidArgument,
               "compression input has {} candidates but no keys", num_candidates);
  for (int i = 1; i < num_candidates; ++i) {
    HARDKV_CHECK(positions[i - 1] < positions[i], kInvalidArgument,
                 "candidate positions must increase: positions[{}] = {}, positions[{}] = {}", i - 1,
                 positions[i - 1], i, positions[i]);
  }
}

}  // namespace hardkv::compress
