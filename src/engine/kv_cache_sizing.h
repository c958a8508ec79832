// How many KV blocks the pool gets: an explicit count, or a byte budget over the bytes of one
// block (K + V, all layers). CPU: a configured byte count. CUDA: after one profiling step at the
// engine's largest batch (forward + sampling, so the step's scratch reaches its peak), what is
// free on the device minus the (1 - gpu_memory_utilization) share of its total that stays unused.
#pragma once

#include <cstddef>

#include "hardkv/engine_config.h"
#include "model/model.h"

namespace hardkv {

// Bytes the KV pool may use on `model`'s backend. On a device backend this runs the profiling
// step (max_num_batched_tokens tokens over up to max_num_seqs sequences of at most max_model_len)
// and throws kOutOfMemory, naming what takes the memory, when nothing is left for the KV cache.
size_t kv_cache_budget_bytes(const EngineConfig& config, Model& model, int max_model_len);

// config.num_kv_blocks when set, else budget / kv_bytes_per_block, capped at what max_num_seqs
// sequences of max_model_len tokens could ever reference. Throws kOutOfMemory when not even one
// block fits.
int plan_num_kv_blocks(const EngineConfig& config, Model& model, int max_model_len);

}  // namespace hardkv
