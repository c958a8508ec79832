// HardKVSpace: HARD-KV's KVSpace, step batch + attention hook, compression events and statistics.
#include "engine/hard_kv_space.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kv/compression_event.h"
#include "kv/model_hooks.h"

namespace hardkv {

// Per layer: observation queries into the ring, then attention over the tiers (host fp32, or on
// the device through DeviceTiers).
class HardKVSpace::Hook : public AttentionHook {
 public:
  Hook(kv::HeadwiseKV& kv, DeviceTiers* tiers) : kv_(&kv), tiers_(tiers) {}
  const kv::TieredAttentionMeta& meta() const { return meta_; }
  const std::vector<int64_t>& seq_ids() const { return seq_ids_; }
  const std::vector<int32_t>& query_indptr() const { return query_indptr_; }
  // seq_ids / query_indptr: the step's sequences, in row order (a graph step's padding rows
  // follow them and belong to no sequence). Device: the first num_fresh sequences
  // were never compressed, so their attention is plain causal attention over the dense tier,
  // whose block tables the paged meta carries (the paged kernels run, tensor-core prefill
  // included); meta covers the others (rows from query_indptr[num_fresh] on), whose attention
  // runs over the tiers. Host: num_fresh = 0 and meta covers the whole step.
  void set_step(std::vector<int64_t> seq_ids, std::vector<int32_t> query_indptr,
                kv::TieredAttentionMeta meta, int num_fresh, int fresh_max_kv_len) {
    seq_ids_ = std::move(seq_ids);
    query_indptr_ = std::move(query_indptr);
    meta_ = std::move(meta);
    num_fresh_ = num_fresh;
    fresh_max_kv_len_ = fresh_max_kv_len;
  }
  void attend(int layer_idx, const Tensor& q, Tensor& k_cache, Tensor& v_cache,
              const AttentionMeta& paged, float scale, Tensor& out) override {
    if (tiers_) {  // the rows go to the device ring (begin_step counted them on the host)
      tiers_->record_queries(layer_idx, q);
      const int fresh_rows = query_indptr_[num_fresh_];
      if (num_fresh_ > 0) {
        Tensor q_fresh = q.rows(0, fresh_rows), out_fresh = out.rows(0, fresh_rows);
        tiers_->backend().attention(q_fresh, k_cache, v_cache, fresh_meta(paged), scale,
                                    out_fresh);
      }
      if (num_fresh_ < static_cast<int>(seq_ids_.size())) {
        const int64_t n = q.shape()[0];
        Tensor q_rest = q.rows(fresh_rows, n), out_rest = out.rows(fresh_rows, n);
        tiers_->attend(layer_idx, q_rest, k_cache, v_cache, scale, out_rest);
      }
      return;
    }
    HARDKV_CHECK(q.dtype() == DType::kF32 && q.device() == Device::kCPU, kInvalidArgument,
                 "HARD-KV attention needs host F32 activations (the CPU backend)");
    kv::push_observations(*kv_, seq_ids_, query_indptr_, layer_idx, q.data_as<const float>());
    kv::tiered_attention_layer(*kv_, meta_, layer_idx, q.data_as<const float>(),
                               k_cache.data_as<const float>(), v_cache.data_as<const float>(),
                               scale, out.data_as<float>());
  }

 private:
  // The step's paged meta cut to its first num_fresh_ sequences (their rows come first).
  AttentionMeta fresh_meta(const AttentionMeta& paged) const {
    AttentionMeta m = paged;
    const int64_t n = num_fresh_;
    m.query_indptr = paged.query_indptr.rows(0, n + 1);
    m.kv_lens = paged.kv_lens.rows(0, n);
    m.block_indptr = paged.block_indptr.rows(0, n + 1);
    m.num_seqs = num_fresh_;
    m.num_tokens = query_indptr_[num_fresh_];
    m.max_query_len = 0;
    for (int i = 0; i < num_fresh_; ++i) {
      m.max_query_len = std::max(m.max_query_len, query_indptr_[i + 1] - query_indptr_[i]);
    }
    m.max_kv_len = fresh_max_kv_len_;
    return m;
  }

  kv::HeadwiseKV* kv_;
  DeviceTiers* tiers_;
  std::vector<int64_t> seq_ids_;
  std::vector<int32_t> query_indptr_;
  kv::TieredAttentionMeta meta_;
  int num_fresh_ = 0;
  int fresh_max_kv_len_ = 0;
};

HardKVSpace::HardKVSpace(const ModelConfig& model, const compress::CompressionConfig& config,
                         int num_blocks, int block_size, int num_pages_per_layer, Backend* device,
                         int max_num_seqs)
    : pool_(std::make_unique<kv::DenseBlockPool>(num_blocks, block_size)),
      compressor_(config, static_cast<int>(model.num_layers)),
      selection_(static_cast<int>(model.num_layers), static_cast<int>(model.num_kv_heads)),
      num_pages_per_layer_(num_pages_per_layer) {
  kv::HeadwiseKVConfig kc;
  kc.num_layers = static_cast<int>(model.num_layers);
  kc.num_kv_heads = static_cast<int>(model.num_kv_heads);
  kc.num_q_heads = static_cast<int>(model.num_heads);
  kc.head_dim = static_cast<int>(model.head_dim);
  kc.page_size = config.page_size;
  kc.num_pages = num_pages_per_layer;
  kc.obs_window = config.obs_window;
  const bool on_device = device != nullptr && device->device() != Device::kCPU;
  kc.kv_elem_bytes = on_device ? static_cast<int>(dtype_size(device->act_dtype())) : 4;
  kc.store_data = !on_device;  // device: the host keeps the layout, the data lives there
  kv_ = std::make_unique<kv::HeadwiseKV>(kc, *pool_);
  if (on_device) tiers_ = std::make_unique<DeviceTiers>(*device, kc, max_num_seqs);
  hook_ = std::make_unique<Hook>(*kv_, tiers_.get());
}

HardKVSpace::~HardKVSpace() {
  hook_.reset();
  tiers_.reset();
  kv_.reset();  // returns every block to pool_ before it goes
}

AttentionHook& HardKVSpace::hook() { return *hook_; }

bool HardKVSpace::can_admit(const Sequence& seq, int max_new) const {
  const int n = std::min(seq.num_tokens(), max_new);
  return !kv_->has_sequence(seq.seq_id) && n > 0 && blocks_for(n) <= pool_->num_free_blocks();
}

void HardKVSpace::admit(Sequence& seq, int max_new) {
  HARDKV_CHECK(can_admit(seq, max_new), kOutOfMemory,
               "sequence {}: the dense pool has {} free blocks, admission needs {}", seq.seq_id,
               pool_->num_free_blocks(), blocks_for(std::min(seq.num_tokens(), max_new)));
  kv_->add_sequence(seq.seq_id);
  kv_->append_tokens(seq.seq_id, std::min(seq.num_tokens(), max_new));
  live_ids_.insert(seq.seq_id);
  seq.num_computed_tokens = 0;
  seq.num_cached_tokens = 0;
}

bool HardKVSpace::can_grow(const Sequence& seq, int num_new) const {
  return kv_->can_append(seq.seq_id, num_new);
}

void HardKVSpace::grow(Sequence& seq, int num_new) {
  HARDKV_ASSERT(kv_->sequence(seq.seq_id).num_tokens == seq.num_computed_tokens);
  kv_->append_tokens(seq.seq_id, num_new);
}

void HardKVSpace::release(Sequence& seq) {
  kv_->free_sequence(seq.seq_id);
  if (tiers_) tiers_->release_sequence(seq.seq_id);
  live_ids_.erase(seq.seq_id);
  seq.num_computed_tokens = 0;
  seq.num_cached_tokens = 0;
  seq.num_hashed_blocks = 0;
  seq.block_table.clear();
}

ForwardBatch HardKVSpace::begin_step(const SchedulerOutput& out, int graph_rows) {
  const int num_seqs = static_cast<int>(out.seqs.size());
  const bool graph = graph_rows > 0;
  HARDKV_CHECK(!graph || (tiers_ != nullptr && graph_rows >= num_seqs), kInternal,
               "HARD-KV graph step of {} rows for {} sequences (device tiers: {})", graph_rows,
               num_seqs, tiers_ != nullptr);
  // Device eager steps: sequences never compressed ("fresh") go first, so that their rows form
  // one block the paged kernels attend; the rest attend over the tiers. Host and graph steps: the
  // scheduler's order, every sequence over the tiers.
  std::vector<const ScheduledSeq*> order;
  for (const ScheduledSeq& s : out.seqs) order.push_back(&s);
  auto fresh = [&](const ScheduledSeq* s) {
    const kv::SequenceKV& skv = kv_->sequence(s->seq->seq_id);
    return tiers_ != nullptr && !graph && skv.num_events == 0 && skv.dense_begin == 0 &&
           skv.dense_base == 0;
  };
  const auto first_tiered = std::stable_partition(order.begin(), order.end(), fresh);
  const int num_fresh = static_cast<int>(first_tiered - order.begin());

  ForwardBatch b;
  b.query_indptr.push_back(0);
  b.block_indptr.push_back(0);
  std::vector<int64_t> seq_ids, tiered_ids;
  std::vector<int32_t> tiered_q_lens;
  std::vector<int32_t> logits_row(out.seqs.size(), -1);  // by the scheduler's order
  int fresh_max_kv_len = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const ScheduledSeq& s = *order[i];
    const Sequence& seq = *s.seq;
    const int begin = seq.num_computed_tokens;
    const int end = begin + s.num_new_tokens;
    HARDKV_ASSERT(kv_->sequence(seq.seq_id).num_tokens == end);
    HARDKV_CHECK(!graph || (s.num_new_tokens == 1 && s.sample), kInternal,
                 "HARD-KV graph step: sequence {} is not a decode row", seq.seq_id);
    for (int p = begin; p < end; ++p) {
      b.token_ids.push_back(seq.token_ids[p]);
      b.positions.push_back(p);
      b.slot_mapping.push_back(kv_->dense_slot(seq.seq_id, p));
    }
    b.query_indptr.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.kv_lens.push_back(end);
    if (static_cast<int>(i) < num_fresh) {
      const std::vector<int32_t>& blocks = kv_->sequence(seq.seq_id).dense_blocks;
      b.block_indices.insert(b.block_indices.end(), blocks.begin(), blocks.end());
      fresh_max_kv_len = std::max(fresh_max_kv_len, end);
    } else {
      tiered_ids.push_back(seq.seq_id);
      tiered_q_lens.push_back(s.num_new_tokens);
    }
    b.block_indptr.push_back(static_cast<int32_t>(b.block_indices.size()));
    if (s.sample) logits_row[order[i] - out.seqs.data()] = b.query_indptr.back() - 1;
    seq_ids.push_back(seq.seq_id);
  }
  // Sampled tokens come back in the scheduler's order.
  for (int32_t row : logits_row) {
    if (row >= 0) b.logits_indices.push_back(row);
  }
  std::vector<int32_t> query_indptr = b.query_indptr;  // the sequences' rows, without padding
  // Device: the condensed part of the metadata changes only with events, the batch and padding.
  const int padded_seqs = graph ? graph_rows : 0;
  const bool reuse = tiers_ && tiered_ids == meta_seq_ids_ &&
                     kv_->condensed_version() == meta_version_ && padded_seqs == meta_padded_seqs_;
  kv::TieredAttentionMeta meta = kv_->build_attention_meta(tiered_ids, tiered_q_lens, !reuse);
  if (graph) {
    // Fixed shape: graph_rows decode rows, the extra ones reading one token of block 0 and
    // storing nothing; kv_lens carries each row's attended-list bound (the graph's KV bucket).
    meta = kv::pad_tiered_meta(meta, graph_rows);
    for (int r = num_seqs; r < graph_rows; ++r) {
      b.token_ids.push_back(0);
      b.positions.push_back(0);
      b.slot_mapping.push_back(-1);
      b.query_indptr.push_back(r + 1);
      b.kv_lens.push_back(1);
      b.block_indptr.push_back(0);
      b.logits_indices.push_back(r);
    }
  }
  hook_->set_step(seq_ids, std::move(query_indptr), std::move(meta), num_fresh, fresh_max_kv_len);
  if (tiers_) {
    // The observation counts of every layer (the device ring gets the rows in the forward).
    for (int l = 0; l < kv_->config().num_layers; ++l) {
      kv::push_observations(*kv_, seq_ids, hook_->query_indptr(), l, nullptr);
    }
    tiers_->begin_step(*kv_, hook_->seq_ids(), hook_->query_indptr(), hook_->meta(), reuse,
                       static_cast<int>(b.token_ids.size()));
    meta_seq_ids_ = std::move(tiered_ids);
    meta_version_ = kv_->condensed_version();
    meta_padded_seqs_ = padded_seqs;
    if (graph) {
      for (int i = 0; i < num_seqs; ++i) {
        b.kv_lens[i] = tiers_->max_cond_len() + hook_->meta().dense_len[i];
      }
    }
  }
  return b;
}

void HardKVSpace::end_step(const SchedulerOutput& out, const KVCache& cache) {
  ++num_steps_;
  const compress::CompressionConfig& cc = compressor_.config();
  kv::DenseKVView host_view;  // CPU backend: the cache itself
  if (!tiers_) {
    for (size_t l = 0; l < cache.k.size(); ++l) {
      host_view.k.push_back(cache.k[l].data_as<const float>());
      host_view.v.push_back(cache.v[l].data_as<const float>());
    }
  }
  std::vector<int64_t> due;
  for (const ScheduledSeq& s : out.seqs) {
    const Sequence& seq = *s.seq;
    if (seq.is_finished() || !kv_->has_sequence(seq.seq_id)) continue;
    if (seq.num_computed_tokens < seq.num_prompt_tokens) continue;  // mid chunked prefill
    if (!kv_->due_for_compression(seq.seq_id, cc.budget, cc.interval)) continue;
    due.push_back(seq.seq_id);
  }
  // Device backend: every due sequence scored on the device at once, before any event changes
  // the layout (an event touches only its own sequence's candidates).
  using Clock = std::chrono::steady_clock;
  std::vector<kv::PrecomputedScores> scores;
  if (tiers_ && !due.empty()) {
    const Clock::time_point t0 = Clock::now();
    scores = tiers_->score_events(*kv_, due, cache, cc.sinks, cc.window,
                                  compressor_.strategy().needs_keys(), cc.rkv_threshold);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    totals_.device_score_seconds += dt;
    totals_.select_seconds += dt;
  }
  // Plans read the cache only: the due sequences plan concurrently, then apply one by one.
  const int num_due = static_cast<int>(due.size());
  std::vector<kv::EventPlan> plans(num_due);
  std::vector<std::exception_ptr> errors(num_due);
  const Clock::time_point t_plan = Clock::now();
#pragma omp parallel for schedule(dynamic) if (num_due >= 4)
  for (int i = 0; i < num_due; ++i) {
    try {
      kv::CompressionEventOptions opt;
      if (tiers_) opt.precomputed = &scores[i];
      plans[i] = kv::plan_compression_event(*kv_, due[i], host_view, compressor_, opt);
    } catch (...) {
      errors[i] = std::current_exception();  // no exception may leave an OpenMP region
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  if (num_due >= 4) {  // wall time of the concurrent plans, shared out below
    const double wall = std::chrono::duration<double>(Clock::now() - t_plan).count();
    for (kv::EventPlan& p : plans) p.result.select_seconds = wall / num_due;
  }
  std::vector<kv::LayerMoves> round;  // device: every event's K/V moves of this step
  for (int i = 0; i < num_due; ++i) {
    kv::CompressionEventOptions opt;
    kv::CompressionEventResult r;
    try {
      r = kv::apply_compression_event(*kv_, plans[i], host_view, opt);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kOutOfMemory) throw;
      ++totals_.pressure_retries;
      try {
        opt.memory_pressure = true;
        r = kv::apply_compression_event(*kv_, plans[i], host_view, opt);
      } catch (const Error& e2) {
        if (e2.kind() != ErrorKind::kOutOfMemory) throw;
        ++totals_.failed;  // the sequence keeps its dense tier; retried after the next step
        continue;
      }
    }
    if (tiers_) {  // merged per layer; the device runs them all after the loop
      if (round.empty()) round.resize(r.moves.size());
      for (size_t l = 0; l < r.moves.size(); ++l) {
        kv::LayerMoves& to = round[l];
        kv::LayerMoves& from = r.moves[l];
        std::move(from.rewrites.begin(), from.rewrites.end(), std::back_inserter(to.rewrites));
        to.appends.insert(to.appends.end(), from.appends.begin(), from.appends.end());
      }
    }
    ++totals_.events;
    totals_.candidates += r.num_candidates;
    totals_.tokens_appended += r.tokens_appended;
    totals_.tokens_dropped += r.tokens_dropped;
    totals_.tokens_masked += r.tokens_masked;
    totals_.tokens_unmasked += r.tokens_unmasked;
    totals_.rewrites += r.num_rewrites;
    totals_.pages_freed += r.pages_freed;
    totals_.dense_blocks_freed += r.dense_blocks_freed;
    totals_.select_seconds += r.select_seconds;
    totals_.apply_seconds += r.apply_seconds;
    for (size_t l = 0; l < r.layers.size(); ++l) {
      selection_.record(static_cast<int>(l), r.layers[l].heads);
    }
  }
  if (!round.empty()) {
    const Clock::time_point t0 = Clock::now();
    tiers_->apply_moves(round, cache);
    totals_.apply_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const kv::KVMemoryUsage u = kv_->total_usage();
  HardKVMemorySample m;
  m.step = num_steps_;
  m.num_sequences = kv_->num_sequences();
  m.dense_bytes = u.dense_bytes;
  m.condensed_bytes = u.condensed_bytes;
  m.sparse_bytes = u.sparse_bytes;
  const kv::HeadwiseKVConfig& kc = kv_->config();
  int64_t tokens = 0;
  for (int64_t id : live_ids_) tokens += kv_->sequence(id).num_tokens;
  m.dense_equivalent_bytes = tokens * kc.num_layers * kc.num_kv_heads * kc.bytes_per_token_head();
  samples_.push_back(m);
}

std::string HardKVSpace::stats_json() const {
  nlohmann::json j;
  j["kv_mode"] = "hard";
  j["compression"] = compressor_.config().to_json();
  j["selection"] = selection_.to_json();
  const HardKVEventTotals& t = totals_;
  j["events"] = {{"count", t.events},
                 {"failed", t.failed},
                 {"pressure_retries", t.pressure_retries},
                 {"candidates", t.candidates},
                 {"tokens_appended", t.tokens_appended},
                 {"tokens_dropped", t.tokens_dropped},
                 {"tokens_masked", t.tokens_masked},
                 {"tokens_unmasked", t.tokens_unmasked},
                 {"rewrites", t.rewrites},
                 {"pages_freed", t.pages_freed},
                 {"dense_blocks_freed", t.dense_blocks_freed},
                 {"select_seconds", t.select_seconds},
                 {"device_score_seconds", t.device_score_seconds},
                 {"apply_seconds", t.apply_seconds}};
  nlohmann::json mem;
  std::vector<int64_t> step, nseq, dense, cond, sparse, total, equiv;
  HardKVMemorySample peak;
  for (const HardKVMemorySample& m : samples_) {
    step.push_back(m.step);
    nseq.push_back(m.num_sequences);
    dense.push_back(m.dense_bytes);
    cond.push_back(m.condensed_bytes);
    sparse.push_back(m.sparse_bytes);
    total.push_back(m.dense_bytes + m.condensed_bytes);
    equiv.push_back(m.dense_equivalent_bytes);
    if (m.dense_bytes + m.condensed_bytes > peak.dense_bytes + peak.condensed_bytes) peak = m;
  }
  mem["step"] = step;
  mem["num_sequences"] = nseq;
  mem["dense_bytes"] = dense;
  mem["condensed_bytes"] = cond;
  mem["sparse_bytes"] = sparse;
  mem["total_bytes"] = total;
  mem["dense_equivalent_bytes"] = equiv;
  j["memory"] = mem;
  j["memory_peak"] = {{"step", peak.step},
                      {"dense_bytes", peak.dense_bytes},
                      {"condensed_bytes", peak.condensed_bytes},
                      {"sparse_bytes", peak.sparse_bytes},
                      {"total_bytes", peak.dense_bytes + peak.condensed_bytes}};
  const kv::HeadwiseKVConfig& kc = kv_->config();
  j["pool"] = {{"dense_blocks", pool_->num_blocks()},
               {"dense_block_size", pool_->block_size()},
               {"head_pages_per_layer", num_pages_per_layer_},
               {"page_size", kc.page_size},
               {"num_layers", kc.num_layers},
               {"num_kv_heads", kc.num_kv_heads},
               {"bytes_per_token_head", kc.bytes_per_token_head()}};
  return j.dump();
}

}  // namespace hardkv
