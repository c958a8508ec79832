// EngineConfig: the user's engine settings (one validated, immutable struct); values derived
// from it at start-up live in EngineLimits (src/engine/engine_config.h), never written back.
#pragma once

#include <cstddef>
#include <string>

#include "compress/compression_config.h"

namespace hardkv {

struct EngineConfig {
  int max_num_batched_tokens = 16384;   // tokens per step (prefill chunks + decodes)
  int max_num_seqs = 512;               // running sequences at most
  int max_model_len = 4096;             // prompt + output tokens; clamped to the model's limit
  // CUDA: share of the device's memory hardkv may fill (weights, activations, KV pool); the KV
  // pool gets what is left of it after a profiling step at the largest batch.
  float gpu_memory_utilization = 0.9f;
  // CUDA: run every step eagerly; otherwise decode steps of up to max_graph_batch_size sequences
  // replay CUDA graphs captured per padded batch size (1, 2, 4, 8, then steps of 8).
  bool enforce_eager = false;
  int max_graph_batch_size = 512;
  // CUDA, dense mode: capture the decode graphs at start-up (every batch-size and KV-length bucket
  // a step can use; about 80 graphs and under a second for the defaults, as vLLM does) instead
  // of on a step's first use, so that no step of a running request waits for a capture.
  bool graph_warmup = true;
  // Dense mode: overlap each step's host work with the device (as vLLM's async scheduling and
  // SGLang's overlap scheduler do): step k + 1 is scheduled and queued before step k's tokens are
  // read back, its new tokens taken on the device from step k's sampling. Outputs and streamed
  // tokens are the same; they reach the caller one step later. HARD-KV steps stay in order.
  bool async_scheduling = true;
  // Tokens per KV block. 16 (as vLLM): prefix-cache hits at 16-token granularity and at most 15
  // wasted slots per sequence; the CPU attention loop walks blocks, so larger blocks buy nothing
  // there. The CUDA backend may prefer another size (set it here).
  int kv_block_size = 16;
  int num_kv_blocks = -1;  // > 0: exact pool size, overriding the memory budget
  // CPU backend: bytes for the KV pool (K + V, all layers) when num_kv_blocks is not set.
  size_t cpu_kv_cache_bytes = size_t{2} << 30;
  bool enable_prefix_caching = true;
  std::string backend = "auto";  // "auto" | "cpu" | "cuda"

  // KV cache mode. "dense": the paged pool above. "hard": HARD-KV head-adaptive compression
  // (docs/COMPRESSION.md) with `compression`. On the CUDA backend the tiers' K/V, attention over
  // them, event scoring and the K/V moves run on the device while the tier layout and selection
  // stay on the host; decode steps replay CUDA graphs as in dense mode (enforce_eager: never).
  // No prefix caching in hard mode (compression retires and rewrites the blocks a cached prefix
  // would share), so enable_prefix_caching is ignored there.
  std::string kv_mode = "dense";
  compress::CompressionConfig compression;  // read in hard mode only
  // Hard mode: head-pages in each layer's condensed pool; -1 = the dense pool's token capacity
  // per kv-head (so the condensed tier gets as many bytes as the dense tier). When the KV pool is
  // sized from a byte budget (CPU bytes or device memory), hard mode gives half of it to the dense
  // tier.
  int num_head_pages = -1;

  // Throws Error(kInvalidArgument) naming the bad field and its allowed range.
  void validate() const;
};

}  // namespace hardkv
