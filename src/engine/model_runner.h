// ModelRunner: turns a scheduled step into the model's flat int32 ForwardBatch, runs the model
// and samples one token per finishing sequence with a per-request, per-position seeded RNG (so a
// token never depends on which other requests share the step, or on a preemption).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/hard_kv_space.h"
#include "engine/scheduler.h"
#include "model/model.h"

namespace hardkv {

// The ForwardBatch of a step (pure: no model needed). Sequence order = out.seqs order; a logits
// row is requested for the last new token of every entry with sample == true.
ForwardBatch build_forward_batch(const SchedulerOutput& out, int block_size);

// RNG seed for output token `output_idx` of a request whose stream seed is `request_seed`.
uint64_t token_rng_seed(uint64_t request_seed, int output_idx);

// The step's per-row sampling inputs (rows = entries with sample == true, in order): each row's
// uniform is the first draw of Rng(token_rng_seed(request seed, output index)).
SampleRows sample_rows(const SchedulerOutput& out);

class ModelRunner {
 public:
  // `hard`: HARD-KV mode (its ForwardBatch and attention hook); null = dense mode.
  ModelRunner(Model& model, KVCache& kv, HardKVSpace* hard = nullptr)
      : model_(&model), kv_(&kv), hard_(hard) {}

  // Runs one step; returns the token (and, when any of them asks, the log-probability) of each
  // entry with sample == true, in order.
  SampleResult run(const SchedulerOutput& out);

 private:
  Model* model_;
  KVCache* kv_;
  HardKVSpace* hard_;
};

}  // namespace hardkv
