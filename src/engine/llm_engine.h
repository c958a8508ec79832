// LLMEngine: one engine step = schedule -> run the model -> postprocess (overlapped: schedule and
// launch step k + 1, then apply step k's tokens), plus the request-level
// work around it: tokenizing prompts, validating requests, incremental detokenization, stop
// strings, streaming callbacks and the outputs of finished requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/block_manager.h"
#include "engine/engine_config.h"
#include "engine/hard_kv_space.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"
#include "hardkv/llm.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace hardkv {

class LLMEngine {
 public:
  LLMEngine(const std::string& model_dir, const EngineConfig& config);
  ~LLMEngine();

  // Encodes `prompt` (special tokens as the tokenizer's post-processor adds them).
  int64_t add_request(const std::string& prompt, const SamplingParams& params,
                      StreamCallback on_token);
  int64_t add_request(std::vector<int32_t> prompt_token_ids, const SamplingParams& params,
                      StreamCallback on_token);
  std::vector<RequestOutput> step();
  bool abort(int64_t request_id);
  // True while some request has not been returned by step() yet.
  bool has_unfinished() const { return !requests_.empty(); }

  const Tokenizer& tokenizer() const;
  const EngineLimits& limits() const { return limits_; }
  // HARD-KV state (null in dense mode).
  const HardKVSpace* hard_kv() const { return hard_kv_.get(); }
  // JSON statistics of HARD-KV mode (HardKVSpace::stats_json), "{}" in dense mode.
  std::string kv_stats_json() const;
  EngineStats stats() const;

 private:
  struct RequestState {
    std::optional<IncrementalDetokenizer> detok;
    std::string text;        // final text so far (stop strings cut off)
    size_t num_emitted = 0;  // bytes of text already streamed
    size_t max_stop_len = 0;
    bool stopped_by_string = false;
    StreamCallback on_token;
  };

  double now() const;
  bool is_stop_token(const Sequence& seq, int32_t token_id) const;
  // Appends the token's text and applies stop strings; returns true when a stop string matched.
  bool append_text(RequestState& state, const Sequence& seq, int32_t token_id);
  std::string take_stream_text(RequestState& state, bool finished);
  RequestOutput make_output(const Sequence& seq, RequestState& state);

  // A step queued on the backend whose tokens have not been applied yet.
  struct LaunchedStep {
    SchedulerOutput out;
    int64_t ticket = -1;  // ModelRunner::launch's
    double launch_s = 0;  // host seconds that launching it took
    int kind = 2;         // StepProfile::run_s index
    bool decode = false;  // one new token per sequence
  };
  LaunchedStep launch(SchedulerOutput out);
  // Waits for the step's tokens and applies them: the scheduler's resolve(), HARD-KV's end of
  // step, log-probabilities, text and stream events.
  void complete(LaunchedStep& step, std::vector<StreamEvent>& events);
  // Drops the entries of finished sequences (before take_finished() frees them); false when no
  // entry is left.
  static bool drop_finished(SchedulerOutput& out);

  EngineConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::optional<Tokenizer> tokenizer_;  // absent when the model dir has no tokenizer.json
  EngineLimits limits_;
  int64_t num_warmup_graphs_ = 0;  // decode graphs captured by the start-up warm-up
  double warmup_seconds_ = 0;
  KVCache kv_;
  std::unique_ptr<BlockManager> block_manager_;  // dense mode
  std::unique_ptr<HardKVSpace> hard_kv_;         // hard mode
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  bool async_ = false;  // config_.async_scheduling in dense mode
  // Overlapped steps: the step launched by the last step() call, applied by the next one.
  std::optional<LaunchedStep> inflight_;
  std::unordered_map<int64_t, RequestState> requests_;  // added and not yet returned
  int64_t next_request_id_ = 0;
  int64_t num_steps_ = 0;
  int64_t num_decode_steps_ = 0;
  int64_t num_overlapped_steps_ = 0;
  // Host seconds launching decode-only steps and waiting for their tokens; ... of prefill steps.
  double decode_step_seconds_ = 0;
  double prefill_step_seconds_ = 0;
  // HARDKV_ENGINE_PROFILE=1: where the wall time of step() goes, printed to stderr by the
  // destructor (host scheduling, runner_->run() split by kind of step, the rest of step(), and
  // the caller's time between steps).
  struct StepProfile {
    bool on = false;
    double schedule_s = 0, post_s = 0, between_s = 0;
    double run_s[3] = {0, 0, 0};  // graph replay / graph capture (decode-only), other steps
    int64_t runs[3] = {0, 0, 0};
    double last_end = -1;  // now() at the end of the last step(); < 0 before the first
    double call_run_s = 0;  // this step() call's launch + token-wait seconds
  };
  StepProfile prof_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace hardkv
