// EngineLimits: the values derived at start-up from EngineConfig (include/hardkv/engine_config.h),
// the model and the device (never written back into the config).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hardkv/engine_config.h"

namespace hardkv {

// Derived at start-up from EngineConfig + model + device memory.
struct EngineLimits {
  int max_model_len = 0;  // min(config, model max positions, KV pool capacity)
  int num_kv_blocks = 0;
  int block_size = 0;
  size_t kv_bytes_per_block = 0;
  std::vector<int32_t> eos_token_ids;  // the model's; end a request unless ignore_eos
};

}  // namespace hardkv
