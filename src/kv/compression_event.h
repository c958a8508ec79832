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
  std::vector<const float*> v;       // [num_layers] same
  std::vector<int32_t> block_remap;  // empty = the whole cache
  int block_size = 0;                // with block_remap
};

// Which tokens an event scores for one sequence: per (layer, kv-head) the stored condensed tokens
// [cond_begin, num_stored) (positions below `sinks` are a prefix of the stored tokens and never
// scored), then the dense-tier positions [dense_from, dense_to), the same for every head. The
// dense tier keeps [dense_to, num_tokens) (the window) after the event.
struct EventCandidates {
  int dense_from = 0;
  int dense_to = 0;
  std::vector<int32_t> cond_begin;  // [num_layers * num_kv_heads]
  int num_candidates(const HeadPages& hp, int segment) const {
    return hp.num_stored() - cond_begin[segment] + (dense_to - dense_from);
  }
};
EventCandidates event_candidates(const HeadwiseKV& kv, int64_t seq_id, int sinks, int window);

// Scoring inputs computed elsewhere (a device), per segment l * num_kv_heads + h, over its
// candidates in EventCandidates order.
struct PrecomputedScores {
  std::vector<std::vector<float>> attn;  // [L * H][num_candidates] the true attention
  std::vector<std::vector<float>> keys;  // [L * H][num_candidates * head_dim], strategies that
                                         //   need_keys() only (else empty)
  // [L * H][num_candidates] rkv's redundancy computed with redundancy_threshold, given instead of
  // the keys (or empty).
  std::vector<std::vector<float>> redundancy;
  double redundancy_threshold = 0.0;
};

struct CompressionEventOptions {
  // Memory pressure: rewrite every head that has masked tokens (frees their pages now).
  bool memory_pressure = false;
  // Set: the strategy scores from these instead of the observation queries and host keys
  // (required when the cache stores no data).
  const PrecomputedScores* precomputed = nullptr;
};

// The K/V copies that applying an event needs on a device copy of the tiers (recorded when the
// cache stores no data; the host has done the layout). Per layer, in this order: every rewrite
// (within a head's pages as they were before it), then every append (dense slot -> pool row).
struct HeadRewriteMoves {
  int kv_head = 0;
  std::vector<int32_t> pages;     // the head's pages before the rewrite
  std::vector<int32_t> src, dst;  // stored token indices, src > dst, both increasing
};
struct AppendRow {
  int kv_head = 0;
  int32_t dense_slot = 0;  // block * block_size + offset in the dense cache
  int32_t pool_row = 0;    // page * page_size + offset in the layer's head-page pool
};
struct LayerMoves {
  std::vector<HeadRewriteMoves> rewrites;
  std::vector<AppendRow> appends;
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
  std::vector<LayerMoves> moves;  // [num_layers] when the cache stores no data, else empty
  double select_seconds = 0;  // phase 1: gathering candidates + scoring + allocation (wall time)
  double apply_seconds = 0;   // phases 2-3: page check, masks, rewrites, appends, dense retire
};

// What one head does at an event (part of an EventPlan).
struct EventHeadPlan {
  std::vector<uint8_t> keep_stored;  // [num_stored] 1 = attended after the event
  std::vector<int32_t> append;       // dense positions to copy into head-pages, increasing
  std::vector<float> append_acc;     // [append] h2o state of each appended token
  std::vector<float> stored_acc;     // [num_stored] h2o state of the stored tokens afterwards
  int num_masked_after = 0;
  bool rewrite = false;
};

// One sequence's event decided but not applied.
struct EventPlan {
  int64_t seq_id = 0;
  int move_end = 0;                               // the dense tier keeps [move_end, num_tokens)
  std::vector<std::vector<EventHeadPlan>> heads;  // [num_layers][num_kv_heads]
  CompressionEventResult result;                  // the selections, planning counters and time
};

// run_compression_event in two halves. Planning reads the cache only, so plans of different
// sequences may be made concurrently; applying checks the page pools (kOutOfMemory before any
// change; with options.memory_pressure every head with masked tokens is rewritten) and mutates.
EventPlan plan_compression_event(const HeadwiseKV& kv, int64_t seq_id, const DenseKVView& dense,
                                 const compress::Compressor& compressor,
                                 const CompressionEventOptions& options = {});
CompressionEventResult apply_compression_event(HeadwiseKV& kv, EventPlan& plan,
                                               const DenseKVView& dense,
                                               const CompressionEventOptions& options = {});

// Runs one event (plan, then apply). Requirements: every layer has >= 1 observation row; K/V of all
// num_tokens positions are written. A head keeps its sinks (positions < sinks) and the window (the
// last `window` positions, which stay in the dense tier) unconditionally. A head is rewritten when
// its masked share of stored tokens exceeds rewrite_threshold, at every event with
// rewrite_every_time, or under memory pressure (options, or when the layer's page pool could not
// hold the appends otherwise). All-or-nothing: kOutOfMemory before any change when the page pools
// cannot hold the result even with every masked token rewritten away. A cache that stores no
// data needs options.precomputed and takes an empty `dense` view; the result lists the moves.
CompressionEventResult run_compression_event(HeadwiseKV& kv, int64_t seq_id,
                                             const DenseKVView& dense,
                                             const compress::Compressor& compressor,
                                             const CompressionEventOptions& options = {});

}  // namespace hardkv::kv
