// HeadwiseKV: the HARD-KV three-tier cache of every sequence — the dense tier (tokens since the
// last compression, in dense blocks from a DenseBlockAllocator), the condensed tier (per
// (sequence, layer, kv-head) page lists in per-layer HeadPagePools) and the sparse tier (a
// HeadMaskSet per sequence over each head's stored condensed tokens) — with memory accounting.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compress/head_mask_set.h"
#include "kv/dense_block_allocator.h"
#include "kv/head_page_pool.h"
#include "kv/obs_queries.h"
#include "kv/tiered_attention_meta.h"

namespace hardkv::kv {

// Shapes and sizes (page_size, obs_window come from compress::CompressionConfig).
struct HeadwiseKVConfig {
  int num_layers = 0;
  int num_kv_heads = 0;
  int num_q_heads = 0;
  int head_dim = 0;
  int page_size = 16;     // P: tokens of one kv-head per head-page (1 = the paper's block_size 1)
  int num_pages = 0;      // head-pages in each layer's pool
  int obs_window = 128;   // observation rows kept per (sequence, layer)
  int kv_elem_bytes = 4;  // bytes of one K or V element, for accounting (fp32 here; 2 for bf16)
  // false: the host keeps only the layout (positions, pages, masks, observation counts); the K/V
  // rows and queries live on a device and the caller moves them (kv/compression_event.h's moves).
  bool store_data = true;

  void validate() const;  // kInvalidArgument naming the field
  // K + V bytes of one token of one kv-head.
  int64_t bytes_per_token_head() const { return 2LL * head_dim * kv_elem_bytes; }
};

// The condensed tier of one (sequence, layer, kv-head): stored token i (position positions[i])
// lives in page pages[i / P] at offset i % P. Positions increase.
struct HeadPages {
  std::vector<int32_t> pages;      // [ceil(num_stored / P)] page ids in the layer's pool
  std::vector<int32_t> positions;  // [num_stored] token positions
  std::vector<float> accumulated;  // [num_stored] h2o's accumulated attention (0 for others)
  int num_masked = 0;              // set bits of this head's sparse-tier row
  int num_stored() const { return static_cast<int>(positions.size()); }
};

// Memory held, per tier. Bytes = tokens x bytes_per_token_head; condensed counts whole pages.
struct KVMemoryUsage {
  int64_t dense_blocks = 0;
  int64_t dense_bytes = 0;      // blocks x block_size x layers x kv-heads x bytes/token/head
  int64_t condensed_pages = 0;  // over all (layer, kv-head)
  int64_t condensed_bytes = 0;  // pages x P x bytes/token/head (masked tokens included)
  int64_t stored_tokens = 0;    // condensed tokens over all (layer, kv-head)
  int64_t masked_tokens = 0;    // of those, masked (sparse tier)
  int64_t sparse_bytes = 0;     // masked x bytes/token/head: inside condensed_bytes, reclaimable
  int64_t mask_bytes = 0;       // the sparse tier's bit storage
  int64_t total_bytes() const { return dense_bytes + condensed_bytes; }
};

// One sequence's three tiers. The dense tier holds positions [dense_begin, num_tokens); position
// p is token p - dense_base of the dense block table (dense_base = position of the first block's
// slot 0). Condensed positions are all < dense_begin.
struct SequenceKV {
  explicit SequenceKV(ObsQueries obs_queries) : obs(std::move(obs_queries)) {}
  int num_tokens = 0;
  int dense_base = 0;
  int dense_begin = 0;
  std::vector<int32_t> dense_blocks;  // dense block table
  std::vector<HeadPages> heads;       // [num_layers * num_kv_heads]
  compress::HeadMaskSet masks;        // [num_layers, num_kv_heads, >= max num_stored]
  ObsQueries obs;
  int steps_since_event = 0;  // single-token appends since the last compression event
  int num_events = 0;
};

class HeadwiseKV {
 public:
  // `dense` must outlive this object; it provides the dense tier's block ids.
  HeadwiseKV(HeadwiseKVConfig config, DenseBlockAllocator& dense);
  ~HeadwiseKV();
  HeadwiseKV(const HeadwiseKV&) = delete;
  HeadwiseKV& operator=(const HeadwiseKV&) = delete;

  const HeadwiseKVConfig& config() const { return config_; }
  int dense_block_size() const { return dense_->block_size(); }

  // --- sequences -----------------------------------------------------------------------------
  void add_sequence(int64_t seq_id);  // kInvalidArgument if present
  bool has_sequence(int64_t seq_id) const { return seqs_.count(seq_id) != 0; }
  int num_sequences() const { return static_cast<int>(seqs_.size()); }
  // Returns every dense block and head-page of the sequence and forgets it.
  void free_sequence(int64_t seq_id);
  const SequenceKV& sequence(int64_t seq_id) const;
  ObsQueries& obs_queries(int64_t seq_id) { return seq(seq_id).obs; }

  // --- dense tier ----------------------------------------------------------------------------
  // Dense blocks that appending num_new tokens would take (check-then-act with append_tokens).
  int dense_blocks_needed(int64_t seq_id, int num_new) const;
  bool can_append(int64_t seq_id, int num_new) const;
  // Grows the dense tier by positions [num_tokens, num_tokens + num_new) and returns their slots
  // (block * block_size + offset) for kv_store; the caller writes their K/V before the next
  // compression event. A single-token append counts one decode step towards `interval`.
  // kOutOfMemory (nothing changed) when the allocator runs out.
  std::vector<int32_t> append_tokens(int64_t seq_id, int num_new);
  int32_t dense_slot(int64_t seq_id, int position) const;  // position in the dense tier
  // Retires dense positions < new_begin (they were moved or dropped) and frees the dense blocks
  // that no longer hold a live token. new_begin must lie in [dense_begin, num_tokens].
  void retire_dense_before(int64_t seq_id, int new_begin);

  // --- condensed + sparse tiers (the compression event's primitives) --------------------------
  const HeadPages& head(int64_t seq_id, int layer_idx, int kv_head) const;
  HeadPagePool& page_pool(int layer_idx) { return *pools_[layer_idx]; }
  const HeadPagePool& page_pool(int layer_idx) const { return *pools_[layer_idx]; }
  // Appends one token (k, v [head_dim] fp32; null without data storage) at `position` (> every
  // stored position) to the head's pages; takes a page when the last is full (kOutOfMemory,
  // nothing changed). `accumulated`: the token's h2o score state. Returns the token's pool row
  // (page * page_size + offset).
  int32_t append_condensed(int64_t seq_id, int layer_idx, int kv_head, int32_t position,
                           const float* k, const float* v, float accumulated = 0.0f);
  void set_accumulated(int64_t seq_id, int layer_idx, int kv_head, int stored_idx, float value);
  void set_masked(int64_t seq_id, int layer_idx, int kv_head, int stored_idx, bool masked);
  bool is_masked(int64_t seq_id, int layer_idx, int kv_head, int stored_idx) const;
  // Every stored token of the head at once: masked iff keep[i] == 0, h2o state accumulated[i]
  // (both [num_stored]). Adds the tokens newly masked / unmasked to the counters.
  void set_head_state(int64_t seq_id, int layer_idx, int kv_head, std::span<const uint8_t> keep,
                      std::span<const float> accumulated, int64_t& newly_masked, int64_t& unmasked);
  // Grows the sparse tier's rows to hold num_stored tokens per head (appends do it themselves;
  // doing it first lets heads of different layers append concurrently).
  void reserve_masks(int64_t seq_id, int num_stored);
  // Rewrite: compacts the head's unmasked tokens to the front of its pages (order kept), frees
  // the pages past the end and clears its mask row. Attention over the head is unchanged.
  // Returns the pages freed. moves (optional): the copies a device copy of the pages must make,
  // stored index src -> dst (src > dst, both increasing), appended.
  int rewrite_head(int64_t seq_id, int layer_idx, int kv_head,
                   std::vector<std::pair<int32_t, int32_t>>* moves = nullptr);
  // Pages the head would hold with num_stored tokens.
  int pages_for(int num_stored) const {
    return (num_stored + config_.page_size - 1) / config_.page_size;
  }

  void note_event(int64_t seq_id);  // resets the step counter after a compression event
  // True when the sequence holds more than `budget` tokens and it has had no event yet, or
  // `interval` decode steps passed since the last one.
  bool due_for_compression(int64_t seq_id, int budget, int interval) const;

  // --- accounting ----------------------------------------------------------------------------
  KVMemoryUsage usage(int64_t seq_id) const;
  KVMemoryUsage total_usage() const;  // sum over sequences

  // --- attention metadata ----------------------------------------------------------------------
  // Flat metadata for one step over seq_ids with q_lens[i] new tokens each (already appended,
  // in the dense tier). See TieredAttentionMeta. with_condensed false leaves the condensed and
  // sparse part (page_*, cond_len, mask_*, max_cond_len) empty, for a caller that kept it from
  // an earlier step with the same sequences and condensed_version().
  TieredAttentionMeta build_attention_meta(std::span<const int64_t> seq_ids,
                                           std::span<const int32_t> q_lens,
                                           bool with_condensed = true) const;
  // Changes whenever a condensed or sparse tier may have changed (any sequence): sequences added
  // or freed, set_masked, rewrite_head, note_event. append_condensed and set_head_state leave it
  // alone (they run per token and concurrently inside an event, which ends with note_event).
  uint64_t condensed_version() const { return condensed_version_.load(std::memory_order_relaxed); }

 private:
  SequenceKV& seq(int64_t seq_id);
  const SequenceKV& seq(int64_t seq_id) const;
  HeadPages& mutable_head(SequenceKV& s, int layer_idx, int kv_head);
  void check_head(int layer_idx, int kv_head) const;

  HeadwiseKVConfig config_;
  DenseBlockAllocator* dense_;
  std::vector<std::unique_ptr<HeadPagePool>> pools_;  // [num_layers]
  std::unordered_map<int64_t, std::unique_ptr<SequenceKV>> seqs_;
  std::atomic<uint64_t> condensed_version_{0};  // bumped by every condensed/sparse mutation
  void bump() { condensed_version_.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace hardkv::kv
