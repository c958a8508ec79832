// DeviceTiers: HARD-KV on a device backend. The host HeadwiseKV keeps the tiers' layout (positions,
// pages, masks: a cache with store_data = false) and makes every decision; this class holds the
// data on the device — the condensed head-page pools (act dtype) and an observation ring of the
// last obs_window post-RoPE queries per (sequence, layer) — and runs the device work: the step's
// ring writes and tiered attention per layer, the scoring of compression events (true attention
// over the candidates, every due sequence of a layer in one launch), and the K/V moves of applied
// events (rewrites in place, appends from the dense cache).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kernels/backend.h"
#include "kv/compression_event.h"
#include "kv/headwise_kv.h"
#include "model/model.h"

namespace hardkv {

class DeviceTiers {
 public:
  // Allocates [num_pages, page_size, 1, head_dim] K and V pools per layer and a ring of
  // obs_window rows for max_seqs sequences per layer ([max_seqs * obs_window, Hq * head_dim]).
  DeviceTiers(Backend& backend, const kv::HeadwiseKVConfig& config, int max_seqs);

  Backend& backend() const { return *be_; }
  // Ring bytes of one such DeviceTiers (for memory planning).
  static int64_t ring_bytes(const ModelConfig& model, int obs_window, int max_seqs, DType act);

  // The step over seq_ids (query rows by query_indptr, the last tokens of each sequence): ring
  // rows for all of them, and meta (the tiered attention of a subset of them, which may be
  // empty; it must outlive the step) into persistent device buffers, uploaded now. num_rows: the
  // forward's query rows (>= query_indptr.back(); a graph step's padding rows past the step's
  // sequences write no ring row). A graph step of the same shape finds every list at the same
  // address, so its captured kernels read this step's lists.
  // Assigns a ring slot to a sequence seen for the first time (kOutOfMemory when none is free).
  // reuse_condensed: meta was built without its condensed part, which is unchanged since the last
  // step that uploaded it (same sequences, same HeadwiseKV::condensed_version(), same padding).
  void begin_step(const kv::HeadwiseKV& kv, std::span<const int64_t> seq_ids,
                  std::span<const int32_t> query_indptr, const kv::TieredAttentionMeta& meta,
                  bool reuse_condensed, int num_rows);
  // One layer's step queries q act [num_tokens, Hq, D] into the ring.
  void record_queries(int layer_idx, const Tensor& q);
  // One layer's attention over the tiers for the sequences of the step's meta: q, out act
  // [meta.num_tokens, Hq, D], the rows of those sequences only (the ring is record_queries').
  // Both join a CUDA graph step (capture, replay); there attention is planned for lists of up to
  // the graph's KV bound tokens.
  void attend(int layer_idx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
              float scale, Tensor& out);
  // The most tokens any (layer, kv-head) of the step's sequences stores in the condensed tier
  // (as of the last uploaded condensed metadata).
  int max_cond_len() const { return max_cond_len_; }
  // A finished sequence gives its ring slot back.
  void release_sequence(int64_t seq_id);

  // Scoring of one event per listed sequence (all of a layer in one launch): per sequence, the
  // true attention of every (layer, kv-head)'s candidates in kv::event_candidates order, and when
  // with_keys (strategies that need keys: rkv) their rkv redundancy at redundancy_threshold,
  // computed on the device (HARDKV_RKV_HOST_REDUNDANCY=1: the keys themselves, for the host).
  // Reads the ring, the head-page pools and the dense cache.
  std::vector<kv::PrecomputedScores> score_events(const kv::HeadwiseKV& kv,
                                                  std::span<const int64_t> seq_ids,
                                                  const KVCache& cache, int sinks, int window,
                                                  bool with_keys, double redundancy_threshold);
  // The K/V moves of applied events (kv::CompressionEventResult::moves; several events' moves
  // may come merged per layer, rewrites before appends: an append may fill a page another
  // event's rewrite freed, so every rewrite of a layer runs before its appends). One upload.
  void apply_moves(const std::vector<kv::LayerMoves>& moves, const KVCache& cache);

 private:
  Backend* be_;
  kv::HeadwiseKVConfig config_;
  int max_seqs_;
  std::vector<Tensor> page_k_, page_v_;  // [num_layers] act [num_pages, P, 1, D]
  std::vector<Tensor> ring_;             // [num_layers] act [max_seqs * obs_window, Hq * D]
  std::unordered_map<int64_t, int> slot_of_;
  std::vector<int> free_slots_;
  // Graph-signature ids of the two per-layer ops (distinct from the backend's own).
  static constexpr int kRecordQueriesOp = 200;
  static constexpr int kTieredAttentionOp = 201;
  // The step's metadata on the device: views into step_buffer_ (persistent, one upload a step).
  const kv::TieredAttentionMeta* meta_ = nullptr;
  Tensor step_buffer_;
  Tensor query_indptr_, dense_block_indptr_, dense_block_indices_, dense_start_, dense_len_;
  // The condensed part, kept across steps (persistent buffers; views of the used prefix).
  Tensor page_indptr_, page_indices_, cond_len_, mask_indptr_, mask_words_;
  std::vector<Tensor> cond_buffers_;  // [5] owning I32 buffers behind the views above
  int max_cond_len_ = 0;
  bool has_condensed_ = false;
  Tensor ring_src_, ring_dst_;  // the step's query rows -> ring rows (views into step_buffer_)
  int ring_rows_ = 0;
};

}  // namespace hardkv
