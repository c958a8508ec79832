// LLM: the C++ API of the engine — offline batch generation (generate) and incremental use
// (add_request / step / abort) with optional per-token streaming, over continuous batching and a
// paged, prefix-cached KV pool.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hardkv/engine_config.h"
#include "hardkv/request_output.h"
#include "hardkv/sampling_params.h"

namespace hardkv {

class LLMEngine;
class Tokenizer;

// Engine-wide counters (monotonic except the *_now gauges).
struct EngineStats {
  int64_t num_steps = 0;
  int64_t num_preemptions = 0;
  int64_t prefix_queried_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  double prefix_hit_rate = 0;
  int num_kv_blocks = 0;
  int kv_block_size = 0;
  int max_model_len = 0;        // effective: min(config, model, KV pool)
  int num_used_blocks_now = 0;  // blocks referenced by live requests
  int num_waiting_now = 0;
  int num_running_now = 0;
  // KV memory by tier (bytes held by live requests now). Dense mode: only dense.
  std::string kv_mode = "dense";
  int64_t kv_dense_bytes_now = 0;
  int64_t kv_condensed_bytes_now = 0;  // hard: head-pages (masked tokens included)
  int64_t kv_sparse_bytes_now = 0;     // hard: masked part of the condensed bytes (reclaimable)
  int64_t kv_compression_events = 0;   // hard: events run so far
  int64_t num_graph_captures = 0;      // CUDA graphs captured for decode steps (while serving)
  int64_t num_warmup_graphs = 0;       // decode graphs captured at start-up (graph_warmup)
  double warmup_seconds = 0;           // wall seconds of that start-up capture
  int64_t num_graph_replays = 0;       // decode steps replayed from a captured graph
  // Steps queued before the previous step's tokens were applied (async_scheduling).
  int64_t num_overlapped_steps = 0;
  // Host seconds launching model steps (forward + sampling) and waiting for their tokens, by
  // step kind: decode-only steps (one new token per sequence) and steps with prefill tokens.
  // Without async_scheduling that is the steps' wall time; with it, the device's time in a step
  // is partly hidden behind the next step's host work.
  int64_t num_decode_steps = 0;
  double decode_step_seconds = 0;
  double prefill_step_seconds = 0;
};

class LLM {
 public:
  // Loads the model (config.json, safetensors, tokenizer.json) from `model_dir` on the backend
  // named in `config` and sizes the KV pool. Throws Error on a bad config or model.
  explicit LLM(const std::string& model_dir, EngineConfig config = {});
  ~LLM();
  LLM(LLM&&) noexcept;
  LLM& operator=(LLM&&) noexcept;

  // Runs every prompt to completion; results in input order. `params` is one for all prompts or
  // one per prompt. A request with a bad prompt (empty, too long) or invalid parameters gets
  // finish_reason kError and a message; the others complete. The progress bar goes to stderr and
  // only when stderr is a terminal.
  std::vector<RequestOutput> generate(std::span<const std::string> prompts,
                                      const SamplingParams& params, bool progress = true);
  std::vector<RequestOutput> generate(std::span<const std::string> prompts,
                                      std::span<const SamplingParams> params, bool progress = true);
  std::vector<RequestOutput> generate(std::span<const std::vector<int32_t>> prompt_token_ids,
                                      const SamplingParams& params, bool progress = true);
  std::vector<RequestOutput> generate(std::span<const std::vector<int32_t>> prompt_token_ids,
                                      std::span<const SamplingParams> params, bool progress = true);

  // Incremental use: queue a request (returns its id; an invalid one finishes at the next step
  // with kError), run one engine step (returns the requests that finished in it), abort.
  int64_t add_request(const std::string& prompt, const SamplingParams& params,
                      StreamCallback on_token = {});
  int64_t add_request(std::vector<int32_t> prompt_token_ids, const SamplingParams& params,
                      StreamCallback on_token = {});
  std::vector<RequestOutput> step();
  // Ends a queued or running request; its output (kAbort) comes from the next step(). False when
  // the id is not live.
  bool abort(int64_t request_id);
  bool has_unfinished() const;

  const Tokenizer& tokenizer() const;
  EngineStats stats() const;
  // HARD-KV statistics as JSON (per (layer, head) kept counts and temperatures, memory per tier
  // over steps, event totals and times); "{}" in dense mode. Written by --stats-out.
  std::string kv_stats_json() const;

 private:
  std::unique_ptr<LLMEngine> engine_;
};

}  // namespace hardkv
