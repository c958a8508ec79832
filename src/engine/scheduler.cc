// Scheduler: admission, chunked prefill, decode, preemption by recompute, finishing.
#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace hardkv {

namespace {
bool older(const Sequence* a, const Sequence* b) { return a->seq_id < b->seq_id; }
bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}
}  // namespace

Scheduler::Scheduler(SchedulerConfig config, KVSpace& kv_space)
    : config_(std::move(config)), kv_(&kv_space) {
  HARDKV_CHECK(config_.max_num_seqs > 0, kInvalidArgument, "max_num_seqs must be > 0");
  HARDKV_CHECK(config_.max_num_batched_tokens > 0, kInvalidArgument,
               "max_num_batched_tokens must be > 0");
  HARDKV_CHECK(config_.max_model_len > 1, kInvalidArgument, "max_model_len must be > 1");
  max_seq_len_ = std::min(config_.max_model_len, kv_space.num_blocks() * kv_space.block_size());
}

void Scheduler::add(std::unique_ptr<Sequence> seq, double now) {
  HARDKV_ASSERT(seq && seq->num_output_tokens() == 0 && seq->block_table.empty());
  HARDKV_CHECK(!live_.count(seq->seq_id), kInvalidArgument, "sequence id {} is already live",
               seq->seq_id);
  const int n = seq->num_prompt_tokens;
  const int pool_tokens = kv_->num_blocks() * kv_->block_size();
  std::string error;
  if (n == 0) {
    error = "empty prompt: a request needs at least one prompt token";
  } else if (n >= pool_tokens) {
    error = fmt::format(
        "prompt of {} tokens does not fit the KV cache ({} blocks x {} tokens = {} tokens, and "
        "one slot is needed per generated token); use a shorter prompt or a larger KV pool",
        n, kv_->num_blocks(), kv_->block_size(), pool_tokens);
  } else if (n >= config_.max_model_len) {
    error = fmt::format(
        "prompt of {} tokens is too long: max_model_len is {} (prompt + at least one generated "
        "token must fit)",
        n, config_.max_model_len);
  }
  if (!error.empty()) {
    reject(std::move(seq), error, now);
    return;
  }
  seq->status = SequenceStatus::kWaiting;
  Sequence* raw = seq.get();
  live_.emplace(raw->seq_id, std::move(seq));
  waiting_.push_back(raw);
}

void Scheduler::reject(std::unique_ptr<Sequence> seq, const std::string& message, double now) {
  seq->status = SequenceStatus::kFinished;
  seq->finish_reason = FinishReason::kError;
  seq->error = message;
  seq->metrics.finish_time = now;
  finished_.push_back(std::move(seq));
}

SchedulerOutput Scheduler::schedule(double now) {
  SchedulerOutput out;
  int budget = config_.max_num_batched_tokens;

  // 1. Running sequences, oldest first; victims of preemption are taken from the young end. Those
  // waiting for a final token stay as they are.
  std::deque<Sequence*> queue;
  std::vector<Sequence*> kept;
  for (Sequence* seq : running_) {
    if (seq->final_token_pending) {
      kept.push_back(seq);
    } else {
      queue.push_back(seq);
    }
  }
  running_.clear();
  while (!queue.empty() && budget > 0) {
    Sequence* seq = queue.front();
    queue.pop_front();
    const int n = std::min(seq->num_uncomputed_tokens(), budget);
    HARDKV_ASSERT(n > 0);
    bool preempted_self = false;
    while (!kv_->can_grow(*seq, n)) {
      if (!queue.empty()) {
        preempt(queue.back());
        queue.pop_back();
      } else {
        preempt(seq);
        preempted_self = true;
        break;
      }
      ++out.num_preempted;
    }
    if (preempted_self) {
      ++out.num_preempted;
      break;
    }
    kv_->grow(*seq, n);
    const bool sample = seq->num_computed_tokens + n == seq->num_tokens();
    out.seqs.push_back({seq, n, sample});
    out.num_tokens += n;
    out.num_samples += sample ? 1 : 0;
    budget -= n;
    kept.push_back(seq);
  }
  // Unscheduled (budget spent) sequences keep their blocks and stay running.
  kept.insert(kept.end(), queue.begin(), queue.end());
  running_ = std::move(kept);
  std::sort(running_.begin(), running_.end(), older);

  // 2. Admissions, first come first served, unless this step had to preempt (the pool is full).
  while (out.num_preempted == 0 && !waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    if (!kv_->can_admit(*seq, budget)) break;
    waiting_.pop_front();
    kv_->admit(*seq, budget);
    if (seq->metrics.first_scheduled_time < 0) {
      seq->metrics.first_scheduled_time = now;
      seq->metrics.num_cached_prompt_tokens = seq->num_cached_tokens;
    }
    seq->status = SequenceStatus::kRunning;
    const int n = std::min(seq->num_uncomputed_tokens(), budget);
    const bool sample = seq->num_computed_tokens + n == seq->num_tokens();
    out.seqs.push_back({seq, n, sample});
    out.num_tokens += n;
    out.num_samples += sample ? 1 : 0;
    budget -= n;
    insert_running_in_order(seq);
  }
  return out;
}

void Scheduler::postprocess(const SchedulerOutput& out, std::span<const int32_t> sampled,
                            double now) {
  advance(out);
  resolve(out, sampled, now);
}

void Scheduler::advance(const SchedulerOutput& out) {
  int32_t row = 0;
  for (const ScheduledSeq& s : out.seqs) {
    const int32_t placeholder = s.sample ? -(row++) - 1 : 0;
    Sequence* seq = s.seq;
    if (seq == nullptr) continue;
    HARDKV_ASSERT(seq->status == SequenceStatus::kRunning);
    seq->num_computed_tokens += s.num_new_tokens;
    HARDKV_ASSERT(seq->num_computed_tokens <= seq->num_tokens());
    kv_->on_computed(*seq);
    if (!s.sample) continue;
    seq->append_token(placeholder);
    seq->final_token_pending = length_reason(*seq) != FinishReason::kNone;
  }
}

void Scheduler::resolve(const SchedulerOutput& out, std::span<const int32_t> sampled, double now) {
  HARDKV_CHECK(static_cast<int>(sampled.size()) == out.num_samples, kInternal,
               "step sampled {} tokens for {} sequences", sampled.size(), out.num_samples);
  int32_t row = 0;
  for (const ScheduledSeq& s : out.seqs) {
    if (!s.sample) continue;
    const int32_t r = row++;
    Sequence* seq = s.seq;
    if (seq == nullptr) continue;
    // Preemption (while scheduling the next step) may have sent it back to waiting.
    HARDKV_ASSERT(seq->status != SequenceStatus::kFinished && seq->last_token() == -r - 1);
    seq->token_ids.back() = sampled[r];
    seq->final_token_pending = false;
    if (seq->metrics.first_token_time < 0) seq->metrics.first_token_time = now;
    seq->metrics.last_token_time = now;
    const FinishReason reason = stop_reason(*seq);
    if (reason != FinishReason::kNone) finish_seq(seq, reason, now);
  }
}

FinishReason Scheduler::stop_reason(const Sequence& seq) const {
  const int32_t last = seq.last_token();
  if (!seq.params.ignore_eos && contains(config_.eos_token_ids, last)) return FinishReason::kStop;
  if (contains(seq.params.stop_token_ids, last)) return FinishReason::kStop;
  return length_reason(seq);
}

FinishReason Scheduler::length_reason(const Sequence& seq) const {
  if (seq.num_output_tokens() >= seq.params.max_tokens) return FinishReason::kLength;
  if (!seq.params.forced_tokens.empty() &&
      seq.num_output_tokens() >= static_cast<int>(seq.params.forced_tokens.size())) {
    return FinishReason::kLength;  // teacher forcing ran out of tokens
  }
  if (seq.num_tokens() >= max_seq_len_) return FinishReason::kLength;
  return FinishReason::kNone;
}

bool Scheduler::finish(int64_t seq_id, FinishReason reason, double now) {
  Sequence* seq = find(seq_id);
  if (!seq) return false;
  finish_seq(seq, reason, now);
  return true;
}

Sequence* Scheduler::find(int64_t seq_id) {
  auto it = live_.find(seq_id);
  return it == live_.end() ? nullptr : it->second.get();
}

std::vector<std::unique_ptr<Sequence>> Scheduler::take_finished() {
  std::vector<std::unique_ptr<Sequence>> done = std::move(finished_);
  finished_.clear();
  return done;
}

void Scheduler::preempt(Sequence* seq) {
  // Recompute later: drop the KV (cached full blocks stay revivable) and wait again in order.
  kv_->release(*seq);
  seq->status = SequenceStatus::kWaiting;
  ++seq->metrics.num_preemptions;
  ++num_preemptions_;
  insert_waiting_in_order(seq);
}

void Scheduler::insert_waiting_in_order(Sequence* seq) {
  waiting_.insert(std::lower_bound(waiting_.begin(), waiting_.end(), seq, older), seq);
}

void Scheduler::insert_running_in_order(Sequence* seq) {
  running_.insert(std::lower_bound(running_.begin(), running_.end(), seq, older), seq);
}

void Scheduler::finish_seq(Sequence* seq, FinishReason reason, double now) {
  if (seq->status == SequenceStatus::kRunning) {
    running_.erase(std::find(running_.begin(), running_.end(), seq));
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), seq));
  }
  if (kv_->holds(*seq)) kv_->release(*seq);
  seq->status = SequenceStatus::kFinished;
  seq->finish_reason = reason;
  seq->metrics.finish_time = now;
  auto it = live_.find(seq->seq_id);
  finished_.push_back(std::move(it->second));
  live_.erase(it);
}

}  // namespace hardkv
