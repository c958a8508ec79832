// EngineConfig validation.
#include "engine/engine_config.h"

#include "core/error.h"

namespace hardkv {

void EngineConfig::validate() const {
  HARDKV_CHECK(max_num_batched_tokens > 0, kInvalidArgument,
               "max_num_batched_tokens must be > 0, got {}", max_num_batched_tokens);
  HARDKV_CHECK(max_num_seqs > 0, kInvalidArgument, "max_num_seqs must be > 0, got {}",
               max_num_seqs);
  HARDKV_CHECK(max_model_len > 1, kInvalidArgument, "max_model_len must be > 1, got {}",
               max_model_len);
  HARDKV_CHECK(gpu_memory_utilization > 0.0f && gpu_memory_utilization <= 1.0f, kInvalidArgument,
               "gpu_memory_utilization must be in (0, 1], got {}", gpu_memory_utilization);
  HARDKV_CHECK(max_graph_batch_size > 0, kInvalidArgument,
               "max_graph_batch_size must be > 0, got {}", max_graph_batch_size);
  HARDKV_CHECK(kv_block_size > 0 && kv_block_size <= 4096, kInvalidArgument,
               "kv_block_size must be in [1, 4096], got {}", kv_block_size);
  HARDKV_CHECK(num_kv_blocks == -1 || num_kv_blocks > 0, kInvalidArgument,
               "num_kv_blocks must be > 0 (or -1 for automatic), got {}", num_kv_blocks);
  HARDKV_CHECK(num_kv_blocks > 0 || cpu_kv_cache_bytes > 0, kInvalidArgument,
               "cpu_kv_cache_bytes must be > 0");
  HARDKV_CHECK(backend == "auto" || backend == "cpu" || backend == "cuda", kInvalidArgument,
               "backend must be auto, cpu or cuda, got '{}'", backend);
  HARDKV_CHECK(kv_mode == "dense" || kv_mode == "hard", kInvalidArgument,
               "kv_mode must be dense or hard, got '{}'", kv_mode);
  HARDKV_CHECK(num_head_pages == -1 || num_head_pages > 0, kInvalidArgument,
               "num_head_pages must be > 0 (or -1 for automatic), got {}", num_head_pages);
  if (kv_mode == "hard") {
    try {
      compression.validate();
    } catch (const Error& e) {
      HARDKV_THROW(kInvalidArgument, "kv_mode hard: {}", e.message());
    }
  }
}

}  // namespace hardkv
