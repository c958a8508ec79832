// KV pool sizing from the config and the backend's memory.
#include "engine/kv_cache_sizing.h"

#include <algorithm>

#include "core/error.h"

namespace hardkv {

size_t kv_cache_budget_bytes(const EngineConfig& config, const Model& model) {
  if (model.backend().device() == Device::kCUDA) {
    // HOOK (CUDA backend): return (free device memory after the weights and one profiling
    // forward at max_num_batched_tokens) x gpu_memory_utilization. Until the backend exposes its
    // memory, the CPU byte budget is used so that a CUDA run still works.
    return config.cpu_kv_cache_bytes;
  }
  return config.cpu_kv_cache_bytes;
}

int plan_num_kv_blocks(const EngineConfig& config, const Model& model, int max_model_len) {
  if (config.num_kv_blocks > 0) return config.num_kv_blocks;
  const size_t per_block = model.kv_bytes_per_block(config.kv_block_size);
  const size_t budget = kv_cache_budget_bytes(config, model);
  const size_t fit = budget / per_block;
  HARDKV_CHECK(fit >= 1, kOutOfMemory,
               "the KV cache budget of {} bytes holds no block of {} bytes ({} tokens); raise the "
               "budget or lower kv_block_size",
               budget, per_block, config.kv_block_size);
  const size_t blocks_per_seq =
      (static_cast<size_t>(max_model_len) + config.kv_block_size - 1) / config.kv_block_size;
  const size_t useful = blocks_per_seq * static_cast<size_t>(config.max_num_seqs);
  return static_cast<int>(std::min({fit, useful, size_t{1} << 30}));
}

}  // namespace hardkv
