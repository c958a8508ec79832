// How many KV blocks the pool gets: an explicit count, or a byte budget (CPU: a configured byte
// count; CUDA: free device memory x gpu_memory_utilization — the hook below) over the bytes of one
// block (K + V, all layers).
#pragma once

#include <cstddef>

#include "hardkv/engine_config.h"
#include "model/model.h"

namespace hardkv {

// Bytes the KV pool may use on `model`'s backend.
size_t kv_cache_budget_bytes(const EngineConfig& config, const Model& model);

// config.num_kv_blocks when set, else budget / kv_bytes_per_block, capped at what max_num_seqs
// sequences of max_model_len tokens could ever reference. Throws kOutOfMemory when not even one
// block fits.
int plan_num_kv_blocks(const EngineConfig& config, const Model& model, int max_model_len);

}  // namespace hardkv
