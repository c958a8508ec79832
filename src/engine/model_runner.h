// ModelRunner: turns a scheduled step into the model's flat int32 ForwardBatch, runs the model
// (decode steps as replayed step graphs where the backend has them) and samples one token per
// finishing sequence with a per-request, per-position seeded uniform (so a token never depends on
// which other requests share the step, or on a preemption).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
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

// Graph batch sizes: 1, 2, 4, 8, then multiples of 8; the smallest one >= n.
int graph_batch_size(int n);
// Graph reuse, so that a batch that shrinks as requests finish (or a KV bucket that a smaller
// step falls back into) replays a graph it already has instead of capturing another. Of the
// captured (batch, kv_bound) keys: the smallest batch in [need, max(need + 8, need * 5 / 4)]
// (any bound), else need; then, of the keys with that batch, the smallest kv_bound in
// [need, 2 * need], else need.
int reuse_graph_batch(const std::vector<std::pair<int, int>>& captured, int need);
int reuse_graph_kv_bound(const std::vector<std::pair<int, int>>& captured, int batch, int need);

// Bytes the forward stages to copy b's metadata to the device: its eight int32 arrays, each
// padded to 16 entries, in one copy rounded to 256 bytes (as Model::forward packs them).
size_t forward_metadata_bytes(const ForwardBatch& b);

// A decode batch (one new token and one logits row per sequence) padded to `batch_size` rows with
// fixed-size metadata, so that every step with the same (batch_size, kv_bound) has the same shape:
// block tables padded to kv_bound / block_size entries per sequence; padding rows attend to one
// token of block 0 and store nothing (slot -1). Requires decode-only `b` and kv_lens <= kv_bound.
ForwardBatch pad_decode_batch(const ForwardBatch& b, int batch_size, int kv_bound, int block_size);

// Decode-graph warm-up (dense mode): the batch sizes and KV bounds to capture at start so that
// every decode step finds a graph through reuse_graph_batch / reuse_graph_kv_bound. Batches: 1, 2,
// 4, 8, then each next size the largest multiple of 8 that still serves the smallest need above
// the last (max(need + 8, need * 5 / 4)), up to max_graph_batch. Bounds: 256, 512, ... below
// max_kv_len, then max_kv_len (the buckets forward_graphed picks).
std::vector<int> warmup_graph_batches(int max_graph_batch);
std::vector<int> warmup_kv_bounds(int max_kv_len);

struct ModelRunnerOptions {
  bool use_graphs = false;  // replay step graphs for decode steps (backend must support them)
  int max_graph_batch = 0;  // largest padded decode batch run as a graph
  int max_kv_len = 0;       // the engine's max_model_len: the largest graph kv_bound
};

class ModelRunner {
 public:
  // `hard`: HARD-KV mode (its ForwardBatch and attention hook; decode steps graphed when its
  // tiers live on a device backend with graphs); null = dense.
  ModelRunner(Model& model, KVCache& kv, HardKVSpace* hard = nullptr,
              ModelRunnerOptions options = {});
  ~ModelRunner();

  // Runs one step; returns the token (and, when any of them asks, the log-probability) of each
  // entry with sample == true, in order.
  SampleResult run(const SchedulerOutput& out) { return collect(launch(out)); }
  // The two halves of run(): launch() queues the step (forward, then sampling) on the backend
  // without waiting for its tokens and returns its sampling ticket (-1 when no entry samples);
  // token ids < 0 (placeholders) read the previous launch's tokens on the backend.
  // collect(ticket) waits for them. launch() takes a step as schedule() made it (no dropped
  // entries).
  int64_t launch(const SchedulerOutput& out);
  SampleResult collect(int64_t ticket);

  // Captures the decode graphs of every (warmup_graph_batches x warmup_kv_bounds) key on an
  // all-padding step (nothing stored in the KV cache), as vLLM does at start-up, so that serving
  // never stalls on a capture. Dense mode with graphs only (else a no-op); returns the number
  // captured. Synchronises the backend.
  int warm_up_graphs();

  int64_t num_graph_captures() const { return num_captures_; }
  int64_t num_graph_replays() const { return num_replays_; }
  // Host seconds of replayed decode steps from launch()'s start until the graph launch was
  // queued, and host seconds that collect() waited for tokens (any step).
  double replay_prep_seconds() const { return replay_prep_s_; }
  double token_wait_seconds() const { return token_wait_s_; }

 private:
  // Forward of a decode step of num_rows sequences through the graph of (graph_rows, its KV
  // bucket); logits of the first num_rows rows. HARD-KV: `batch` is begin_step's batch, already
  // padded to graph_rows.
  Tensor forward_graphed(const ForwardBatch& batch, int num_rows, int graph_rows);
  // The (batch, kv_bound) keys of the graphs held.
  std::vector<std::pair<int, int>> captured() const;

  Model* model_;
  KVCache* kv_;
  HardKVSpace* hard_;
  ModelRunnerOptions options_;
  std::map<std::pair<int, int>, std::unique_ptr<StepGraph>> graphs_;  // (batch, kv_bound)
  int64_t num_captures_ = 0;
  int64_t num_replays_ = 0;
  double replay_prep_s_ = 0, token_wait_s_ = 0;
  std::chrono::steady_clock::time_point replay_launched_;  // set when a replay is queued
};

}  // namespace hardkv
