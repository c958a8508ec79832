// HardKVSpace: the engine's KV memory in HARD-KV mode — a HeadwiseKV (dense tier drawing blocks
// from the engine's paged pool, condensed head-pages, sparse masks), the scheduler's KVSpace over
// it, the per-step ForwardBatch and attention hook, compression events between steps, statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "compress/compression_config.h"
#include "compress/compression_stats.h"
#include "compress/compressor.h"
#include "engine/device_tiers.h"
#include "engine/kv_space.h"
#include "engine/scheduler.h"
#include "kv/headwise_kv.h"
#include "model/model.h"

namespace hardkv {

// Totals over every compression event (times are wall seconds on the host).
struct HardKVEventTotals {
  int64_t events = 0;
  int64_t failed = 0;  // events that ran out of head-pages even under memory pressure
  int64_t pressure_retries = 0;
  int64_t candidates = 0;
  int64_t tokens_appended = 0;
  int64_t tokens_dropped = 0;
  int64_t tokens_masked = 0;
  int64_t tokens_unmasked = 0;
  int64_t rewrites = 0;
  int64_t pages_freed = 0;
  int64_t dense_blocks_freed = 0;
  double select_seconds = 0;        // scoring + allocation (and gathering candidates)
  double apply_seconds = 0;         // masks, rewrites, appends
  double device_score_seconds = 0;  // device backends: scoring on the device (inside select)
};

// One sample of the memory time series (after an engine step).
struct HardKVMemorySample {
  int64_t step = 0;
  int num_sequences = 0;
  int64_t dense_bytes = 0;
  int64_t condensed_bytes = 0;
  int64_t sparse_bytes = 0;            // masked part of condensed_bytes
  int64_t dense_equivalent_bytes = 0;  // what dense mode would hold: tokens x L x Hkv x B
};

class HardKVSpace : public KVSpace {
 public:
  // num_blocks x block_size: the engine's dense pool (KVCache block ids); num_pages_per_layer:
  // head-pages of each layer's condensed pool. `config` must be valid. `device`: the model's
  // backend when it is not the CPU (the K/V data, observation ring, attention, scoring and moves
  // live there; the host keeps the layout); null or a CPU backend = everything on the host.
  // max_num_seqs: live sequences at most (the device observation ring's slots).
  HardKVSpace(const ModelConfig& model, const compress::CompressionConfig& config, int num_blocks,
              int block_size, int num_pages_per_layer, Backend* device = nullptr,
              int max_num_seqs = 256);
  ~HardKVSpace() override;

  // --- KVSpace: reserves exactly the scheduled tokens in the dense tier; no prefix cache ------
  int num_blocks() const override { return pool_->num_blocks(); }
  int block_size() const override { return pool_->block_size(); }
  bool can_admit(const Sequence& seq, int max_new) const override;
  void admit(Sequence& seq, int max_new) override;
  bool can_grow(const Sequence& seq, int num_new) const override;
  void grow(Sequence& seq, int num_new) override;
  void on_computed(Sequence&) override {}
  bool holds(const Sequence& seq) const override { return kv_->has_sequence(seq.seq_id); }
  void release(Sequence& seq) override;

  // --- one step ------------------------------------------------------------------------------
  // The step's ForwardBatch: slots from the dense tier; kv_lens = tokens so far, no block table
  // (attention runs through the hook). Also builds the step's tiered attention metadata.
  // graph_rows > 0 (device only, decode steps: one new token and a sample per sequence): a CUDA
  // graph step of that many rows (>= the step's sequences), every sequence attending over the
  // tiers; the extra rows are padding (token 0, position 0, no KV store, a logits row that the
  // caller drops) and kv_lens[i] is the longest list row i attends (the graph's KV bound needs
  // at least the maximum).
  ForwardBatch begin_step(const SchedulerOutput& out, int graph_rows = 0);
  AttentionHook& hook();
  // After the scheduler's postprocess: runs the compression events that are due (sequences whose
  // prompt is fully computed and not finished) and records a memory sample.
  void end_step(const SchedulerOutput& out, const KVCache& cache);

  // --- inspection ----------------------------------------------------------------------------
  const kv::HeadwiseKV& kv() const { return *kv_; }
  // The K/V data lives on a device backend (DeviceTiers), not on the host.
  bool on_device() const { return tiers_ != nullptr; }
  const kv::DenseBlockAllocator& dense_pool() const { return *pool_; }
  const compress::CompressionConfig& config() const { return compressor_.config(); }
  const HardKVEventTotals& event_totals() const { return totals_; }
  const compress::CompressionStats& selection_stats() const { return selection_; }
  const std::vector<HardKVMemorySample>& memory_samples() const { return samples_; }
  // {"kv_mode", "compression", "selection" (CompressionStats), "events" (totals), "memory"
  //  (series over steps: step, num_sequences, dense/condensed/sparse/total/dense_equivalent bytes),
  //  "memory_peak", "pool"}.
  std::string stats_json() const;

 private:
  class Hook;
  int blocks_for(int num_tokens) const { return (num_tokens + block_size() - 1) / block_size(); }

  std::unique_ptr<kv::DenseBlockPool> pool_;
  std::unique_ptr<kv::HeadwiseKV> kv_;
  std::unique_ptr<DeviceTiers> tiers_;  // device backends only
  compress::Compressor compressor_;
  compress::CompressionStats selection_;
  std::unique_ptr<Hook> hook_;
  std::unordered_set<int64_t> live_ids_;  // sequences holding KV
  int num_pages_per_layer_;
  // Device: the sequences and condensed version of the last uploaded condensed metadata.
  std::vector<int64_t> meta_seq_ids_;
  uint64_t meta_version_ = ~uint64_t{0};
  int meta_padded_seqs_ = 0;  // 0: not padded (eager step)
  int64_t num_steps_ = 0;
  HardKVEventTotals totals_;
  std::vector<HardKVMemorySample> samples_;
};

}  // namespace hardkv
