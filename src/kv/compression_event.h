// Compression event executor: for one sequence and every layer, gathers each kv-head's candidates
// (stored condensed tokens, masked ones included, and dense-tier tokens outside the window, minus
// sinks), runs Compressor::compress_layer on the observation queries, and applies the result to
// the tiers (append kept dense tokens to head-pages, mask/unmask condensed tokens, rewrite).
#pragma once

#include <cstdint>
#include <vector>

#include "compress/compressor.h"
#include "kv/headwise_kv.h"

namespace hardkv::kv {

// The dense tier's storage (the engine's paged KV cache), host fp32: either the whole cache, or
// (a device cache) host copies of some of its blocks with block_remap[block id] = index of the
// block in the copies (-1 = not copied).
struct DenseKVView {
  std::vector<const float*>
      k;  // [num_layers] each [num_blocks or copied blocks, block_size, num_kv_heads, head_dim]
  std::vector<const float*> v;  // [num_layers] same
  std::vector<int32_t> block_remap;  // empty = the whole cache
  int block_size = 0;                // with block_remap
};

struct CompressionEventOptions {
  // Memory pressure: rewrite every head that has masked tokens (frees their pages now).
  bool memory_pressure = false;
};

struct CompressionEventResult {
  std::vector<compress::LayerCompression> layers;  // [num_layers] the selections (for stats)
  int64_t num_candidates = 0;                      // head-tokens scored, over layers and heads
  int64_t tokens_appended = 0;  // head-tokens copied from the dense tier into head-pages
  int64_t tokens_dropped = 0;   // dense head-tokens outside the window not kept
  int64_t tokens_masked = 0;    // condensed head-tokens newly masked
  int64_t tokens_unmasked = 0;  // masked head-tokens selected again
  int64_t num_rewrites = 0;     // heads rewritten compactly
  int64_t pages_freed = 0;      // by rewrites
  int64_t dense_blocks_freed = 0;
  double select_seconds = 0;  // phase 1: gathering candidates + scoring + allocation (wall time)
  double apply_seconds = 0;   // phases 2-3: page check, masks, rewrites, appends, dense retire
};

// Runs one event. Requirements: every layer has >= 1 observation row; K/V of all num_tokens
// positions are written. A head keeps its sinks (positions < sinks) and the window (the last
// `window` positions, which stay in the dense tier) unconditionally. A head is rewritten when its
// masked share of stored tokens exceeds rewrite_threshold, at every event with
// rewrite_every_time, or under memory pressure (options, or when the layer's page pool could not
// hold the appends otherwise). All-or-nothing: kOutOfMemory before any change when the page pools
// cannot hold the result even with every masked token rewritten away.
CompressionEventResult run_compression_event(HeadwiseKV& kv, int64_t seq_id,
                                             const DenseKVView& dense,
                                             const compress::Compressor& compressor,
                                             const CompressionEventOptions& options = {});

}  // namespace hardkv::kv
