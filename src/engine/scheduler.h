// Scheduler: waiting and running queues; each step packs running sequences (decodes and
// continuing prefill chunks, oldest first) and then newly admitted ones under a token budget,
// preempting the youngest by recompute when KV blocks run out.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/block_manager.h"  // the dense-mode KVSpace (callers construct it with this)
#include "engine/kv_space.h"
#include "engine/sequence.h"

namespace hardkv {

struct SchedulerConfig {
  int max_num_seqs = 512;
  int max_num_batched_tokens = 16384;
  int max_model_len = 4096;            // prompt + output tokens at most
  std::vector<int32_t> eos_token_ids;  // end a request unless its params say ignore_eos
};

// One sequence's share of a step: tokens [num_computed_tokens, + num_new_tokens) run through the
// model; when `sample` the step reaches its last token and the next token is sampled.
struct ScheduledSeq {
  Sequence* seq;  // null: dropped (finished while the step was in flight; its row is ignored)
  int num_new_tokens;
  bool sample;
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;
  int num_tokens = 0;     // sum of num_new_tokens (<= max_num_batched_tokens)
  int num_samples = 0;    // entries with sample == true
  int num_preempted = 0;  // sequences preempted while building this step
  bool empty() const { return seqs.empty(); }
};

// Contract: the engine loop is schedule() -> model step -> postprocess() (= advance() then
// resolve()). An overlapped engine splits it: advance(step k) -> schedule() step k + 1 -> launch
// it -> resolve(step k); step k + 1's entries of sequences that step k finished are then dropped
// (ScheduledSeq::seq set to null) before take_finished() hands those sequences out. finish() and
// add() are called only between a resolve() and the next schedule(). Every added sequence ends in
// take_finished() exactly once (finished, aborted or with an error); none is ever dropped.
class Scheduler {
 public:
  Scheduler(SchedulerConfig config, KVSpace& kv_space);

  // Takes ownership. A sequence that can never run (empty prompt, prompt too long for
  // max_model_len or for the whole KV pool) is finished at once with an error.
  void add(std::unique_ptr<Sequence> seq, double now);
  // Takes ownership of a request rejected before scheduling (e.g. invalid sampling parameters).
  void reject(std::unique_ptr<Sequence> seq, const std::string& message, double now);

  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  // Longest sequence (prompt + output) allowed: min(max_model_len, KV pool tokens).
  int max_seq_len() const { return max_seq_len_; }

  SchedulerOutput schedule(double now);
  // Applies a step: advance(out) then resolve(out, sampled, now).
  void postprocess(const SchedulerOutput& out, std::span<const int32_t> sampled, double now);
  // Applies a launched step whose tokens are not known yet: advances computed tokens, registers
  // full blocks for prefix caching, and appends to each sampling entry's sequence the
  // placeholder -(r + 1) for its sample row r (Backend::sample_async), so the next step can be
  // scheduled (and run: the backend reads placeholders where it samples).
  void advance(const SchedulerOutput& out);
  // Replaces the placeholders of an advanced step by `sampled` (one id per entry with sample ==
  // true, in order; dropped entries' ids are ignored) and finishes sequences that produced a
  // stop token or reached max_tokens / max_model_len.
  void resolve(const SchedulerOutput& out, std::span<const int32_t> sampled, double now);
  // Ends a live sequence (abort, or a stop string the engine found). False if not live.
  bool finish(int64_t seq_id, FinishReason reason, double now);
  Sequence* find(int64_t seq_id);  // a live (waiting or running) sequence, or null

  // Sequences finished since the last call, in finishing order.
  std::vector<std::unique_ptr<Sequence>> take_finished();

 private:
  void preempt(Sequence* seq);
  void insert_waiting_in_order(Sequence* seq);
  void insert_running_in_order(Sequence* seq);
  void finish_seq(Sequence* seq, FinishReason reason, double now);
  FinishReason stop_reason(const Sequence& seq) const;
  // kLength when the sequence ends by length whatever its last token is, else kNone.
  FinishReason length_reason(const Sequence& seq) const;

  SchedulerConfig config_;
  KVSpace* kv_;
  int max_seq_len_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> live_;
  std::deque<Sequence*> waiting_;   // admission order (oldest first); preempted go back in order
  std::vector<Sequence*> running_;  // by seq_id: oldest first, youngest (first victim) last
  std::vector<std::unique_ptr<Sequence>> finished_;
  int64_t num_preemptions_ = 0;
};

}  // namespace hardkv
