// LLMEngine: construction (backend, model, tokenizer, KV pool) and the engine step.
#include "engine/llm_engine.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "engine/kv_cache_sizing.h"

namespace hardkv {

namespace {
bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}
// Largest n <= len such that text[0, n) ends on a UTF-8 character boundary.
size_t utf8_floor(const std::string& text, size_t len) {
  while (len > 0 && len < text.size() && (static_cast<unsigned char>(text[len]) & 0xC0) == 0x80) {
    --len;
  }
  return len;
}
}  // namespace

LLMEngine::LLMEngine(const std::string& model_dir, const EngineConfig& config)
    : config_(config), start_(std::chrono::steady_clock::now()) {
  config_.validate();
  const char* prof_env = std::getenv("HARDKV_ENGINE_PROFILE");
  prof_.on = prof_env != nullptr && std::strcmp(prof_env, "1") == 0;
  const bool hard = config_.kv_mode == "hard";
  backend_ = make_backend(config_.backend);
  model_ = Model::load(model_dir, *backend_);
  if (std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json")) {
    tokenizer_.emplace(Tokenizer::from_dir(model_dir));
  }
  const ModelConfig& mc = model_->config();
  const int model_len =
      static_cast<int>(std::min<int64_t>(config_.max_model_len, mc.max_position_embeddings));
  limits_.block_size = config_.kv_block_size;
  limits_.kv_bytes_per_block = model_->kv_bytes_per_block(config_.kv_block_size);
  EngineConfig sizing = config_;
  if (hard) sizing.cpu_kv_cache_bytes /= 2;  // the other half: the condensed tier
  limits_.num_kv_blocks = plan_num_kv_blocks(sizing, *model_, model_len);
  if (hard && backend_->device() != Device::kCPU && config_.num_kv_blocks <= 0) {
    limits_.num_kv_blocks = std::max(1, limits_.num_kv_blocks / 2);  // half for condensed pages
  }
  limits_.max_model_len = std::min(model_len, limits_.num_kv_blocks * limits_.block_size);
  limits_.eos_token_ids = mc.eos_token_ids;
  if (limits_.eos_token_ids.empty() && tokenizer_ && tokenizer_->eos_id()) {
    limits_.eos_token_ids.push_back(*tokenizer_->eos_id());
  }
  kv_ = model_->allocate_kv_cache(limits_.num_kv_blocks, limits_.block_size);
  KVSpace* space = nullptr;
  if (hard) {
    const compress::CompressionConfig& cc = config_.compression;
    const int64_t tokens_per_head = int64_t{limits_.num_kv_blocks} * limits_.block_size;
    const int64_t auto_pages =
        (tokens_per_head + cc.page_size - 1) / cc.page_size * mc.num_kv_heads;
    int64_t pages = config_.num_head_pages > 0 ? config_.num_head_pages
                                               : std::min<int64_t>(auto_pages, int64_t{1} << 30);
    if (backend_->device() != Device::kCPU && config_.num_head_pages <= 0) {
      // The device observation ring comes out of the condensed tier's half.
      const int64_t act = static_cast<int64_t>(dtype_size(backend_->act_dtype()));
      const int64_t page_bytes = int64_t{mc.num_layers} * cc.page_size * mc.head_dim * 2 * act;
      const int64_t ring_bytes =
          DeviceTiers::ring_bytes(mc, cc.obs_window, config_.max_num_seqs, backend_->act_dtype());
      HARDKV_CHECK(pages * page_bytes > 2 * ring_bytes, kOutOfMemory,
                   "HARD-KV: the observation ring for {} sequences ({} MiB) leaves too little of "
                   "the condensed tier ({} MiB); lower --max-num-seqs or --obs-window",
                   config_.max_num_seqs, ring_bytes >> 20, (pages * page_bytes) >> 20);
      pages -= (ring_bytes + page_bytes - 1) / page_bytes;
    }
    hard_kv_ = std::make_unique<HardKVSpace>(mc, cc, limits_.num_kv_blocks, limits_.block_size,
                                             static_cast<int>(pages), backend_.get(),
                                             config_.max_num_seqs);
    space = hard_kv_.get();
  } else {
    block_manager_ = std::make_unique<BlockManager>(limits_.num_kv_blocks, limits_.block_size,
                                                    config_.enable_prefix_caching);
    space = block_manager_.get();
  }
  SchedulerConfig sc;
  sc.max_num_seqs = config_.max_num_seqs;
  sc.max_num_batched_tokens = config_.max_num_batched_tokens;
  sc.max_model_len = model_len;
  sc.eos_token_ids = limits_.eos_token_ids;
  scheduler_ = std::make_unique<Scheduler>(sc, *space);
  ModelRunnerOptions ro;
  ro.use_graphs = !config_.enforce_eager;
  ro.max_graph_batch =
      std::min(config_.max_graph_batch_size, graph_batch_size(config_.max_num_seqs));
  ro.max_kv_len = limits_.max_model_len;
  runner_ = std::make_unique<ModelRunner>(*model_, kv_, hard_kv_.get(), ro);
  async_ = config_.async_scheduling && !hard;
  if (config_.graph_warmup) {
    const auto t0 = std::chrono::steady_clock::now();
    num_warmup_graphs_ = runner_->warm_up_graphs();
    warmup_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
}

LLMEngine::~LLMEngine() {
  if (inflight_) {
    try {
      runner_->collect(inflight_->ticket);  // let the device finish what reads the engine's state
    } catch (const Error&) {
    }
  }
  if (!prof_.on) return;
  const char* kinds[3] = {"graph replay", "graph capture", "eager/prefill"};
  std::string runs;
  for (int i = 0; i < 3; ++i) {
    runs += fmt::format("; run() {}: {} steps {:.3f} s ({:.3f} ms/step)", kinds[i], prof_.runs[i],
                        prof_.run_s[i], prof_.runs[i] ? 1e3 * prof_.run_s[i] / prof_.runs[i] : 0.);
  }
  std::fprintf(stderr,
               "engine profile: %lld steps; schedule %.3f s%s (launch + token wait; replays: "
               "%.3f s until the graph was queued; all steps: %.3f s waiting for tokens); rest "
               "of step() %.3f s; caller between steps %.3f s\n",
               static_cast<long long>(num_steps_), prof_.schedule_s, runs.c_str(),
               runner_->replay_prep_seconds(), runner_->token_wait_seconds(), prof_.post_s,
               prof_.between_s);
}

double LLMEngine::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

const Tokenizer& LLMEngine::tokenizer() const {
  HARDKV_CHECK(tokenizer_.has_value(), kInvalidArgument,
               "this model directory has no tokenizer.json");
  return *tokenizer_;
}

int64_t LLMEngine::add_request(const std::string& prompt, const SamplingParams& params,
                               StreamCallback on_token) {
  return add_request(tokenizer().encode(prompt, /*add_special_tokens=*/true), params,
                     std::move(on_token));
}

int64_t LLMEngine::add_request(std::vector<int32_t> prompt_token_ids, const SamplingParams& params,
                               StreamCallback on_token) {
  const int64_t id = next_request_id_++;
  const double t = now();
  std::string error;
  try {
    params.validate();
  } catch (const Error& e) {
    error = "invalid sampling parameters: " + e.message();
  }
  const int64_t vocab = model_->config().vocab_size;
  for (int32_t tok : prompt_token_ids) {
    if (error.empty() && (tok < 0 || tok >= vocab)) {
      error = fmt::format("prompt token id {} is outside the vocabulary [0, {})", tok, vocab);
    }
  }
  for (int32_t tok : params.forced_tokens) {
    if (error.empty() && tok >= vocab) {
      error = fmt::format("forced token id {} is outside the vocabulary [0, {})", tok, vocab);
    }
  }
  auto seq = std::make_unique<Sequence>(id, std::move(prompt_token_ids), params, t);
  seq->rng_seed = params.seed >= 0 ? static_cast<uint64_t>(params.seed)
                                   : (static_cast<uint64_t>(std::random_device{}()) << 32) ^
                                         std::random_device{}();
  RequestState state;
  if (tokenizer_) state.detok.emplace(*tokenizer_, /*skip_special_tokens=*/true);
  for (const std::string& s : params.stop)
    state.max_stop_len = std::max(state.max_stop_len, s.size());
  state.on_token = std::move(on_token);
  requests_.emplace(id, std::move(state));
  if (!error.empty()) {
    scheduler_->reject(std::move(seq), error, t);
  } else {
    scheduler_->add(std::move(seq), t);
  }
  return id;
}

bool LLMEngine::abort(int64_t request_id) {
  return scheduler_->finish(request_id, FinishReason::kAbort, now());
}

bool LLMEngine::is_stop_token(const Sequence& seq, int32_t token_id) const {
  return (!seq.params.ignore_eos && contains(limits_.eos_token_ids, token_id)) ||
         contains(seq.params.stop_token_ids, token_id);
}

bool LLMEngine::append_text(RequestState& state, const Sequence& seq, int32_t token_id) {
  if (!state.detok || state.stopped_by_string || is_stop_token(seq, token_id)) return false;
  const size_t old_len = state.text.size();
  state.text += state.detok->push(token_id);
  if (seq.params.stop.empty()) return false;
  // A match can only end inside the new piece: search from max_stop_len - 1 bytes before it.
  const size_t from = old_len >= state.max_stop_len ? old_len - state.max_stop_len + 1 : 0;
  size_t cut = std::string::npos;
  for (const std::string& s : seq.params.stop) cut = std::min(cut, state.text.find(s, from));
  if (cut == std::string::npos) return false;
  state.text.resize(cut);
  state.num_emitted = std::min(state.num_emitted, cut);
  state.stopped_by_string = true;
  return true;
}

std::string LLMEngine::take_stream_text(RequestState& state, bool finished) {
  size_t end = state.text.size();
  if (!finished && state.max_stop_len > 1) {
    // Hold back what could still turn out to be the start of a stop string.
    end =
        utf8_floor(state.text, end >= state.max_stop_len - 1 ? end - (state.max_stop_len - 1) : 0);
  }
  if (end <= state.num_emitted) return {};
  std::string piece = state.text.substr(state.num_emitted, end - state.num_emitted);
  state.num_emitted = end;
  return piece;
}

RequestOutput LLMEngine::make_output(const Sequence& seq, RequestState& state) {
  RequestOutput out;
  out.request_id = seq.seq_id;
  out.text = state.text;
  out.token_ids.assign(seq.output_token_ids().begin(), seq.output_token_ids().end());
  out.logprobs = seq.output_logprobs;
  out.finish_reason = seq.finish_reason;
  out.error = seq.error;
  const SequenceMetrics& m = seq.metrics;
  out.metrics.num_prompt_tokens = seq.num_prompt_tokens;
  out.metrics.num_output_tokens = seq.num_output_tokens();
  out.metrics.num_cached_prompt_tokens = m.num_cached_prompt_tokens;
  out.metrics.num_preemptions = m.num_preemptions;
  if (m.first_token_time >= 0)
    out.metrics.time_to_first_token = m.first_token_time - m.arrival_time;
  if (seq.num_output_tokens() > 1) {
    out.metrics.time_per_output_token =
        (m.last_token_time - m.first_token_time) / (seq.num_output_tokens() - 1);
  }
  if (m.finish_time >= 0) out.metrics.e2e_latency = m.finish_time - m.arrival_time;
  return out;
}

LLMEngine::LaunchedStep LLMEngine::launch(SchedulerOutput out) {
  LaunchedStep st;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t captures_before = runner_->num_graph_captures();
  const int64_t replays_before = runner_->num_graph_replays();
  st.decode = out.num_tokens == static_cast<int>(out.seqs.size());
  st.ticket = runner_->launch(out);
  st.launch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  prof_.call_run_s += st.launch_s;
  st.kind = runner_->num_graph_captures() > captures_before ? 1
            : runner_->num_graph_replays() > replays_before ? 0
                                                            : 2;
  st.out = std::move(out);
  return st;
}

bool LLMEngine::drop_finished(SchedulerOutput& out) {
  bool live = false;
  for (ScheduledSeq& s : out.seqs) {
    if (s.seq != nullptr && s.seq->is_finished()) s.seq = nullptr;
    live = live || s.seq != nullptr;
  }
  return live;
}

void LLMEngine::complete(LaunchedStep& st, std::vector<StreamEvent>& events) {
  const auto t0 = std::chrono::steady_clock::now();
  const SampleResult step = runner_->collect(st.ticket);
  const double wait_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double dt = st.launch_s + wait_s;
  prof_.call_run_s += wait_s;
  if (st.decode) {
    ++num_decode_steps_;
    decode_step_seconds_ += dt;
  } else {
    prefill_step_seconds_ += dt;
  }
  if (prof_.on) {
    prof_.run_s[st.kind] += dt;
    ++prof_.runs[st.kind];
  }
  const SchedulerOutput& out = st.out;
  const std::vector<int32_t>& sampled = step.tokens;
  if (!step.logprobs.empty()) {
    size_t r = 0;
    for (const ScheduledSeq& s : out.seqs) {
      if (!s.sample) continue;
      if (s.seq != nullptr && s.seq->params.logprobs) {
        s.seq->output_logprobs.push_back(step.logprobs[r]);
      }
      ++r;
    }
  }
  scheduler_->resolve(out, sampled, now());
  if (hard_kv_) hard_kv_->end_step(out, kv_);  // compression events between steps
  ++num_steps_;
  size_t k = 0;
  for (const ScheduledSeq& s : out.seqs) {
    if (!s.sample) continue;
    const int32_t token = sampled[k++];
    if (s.seq == nullptr) continue;  // finished while the step ran: its token is not used
    Sequence& seq = *s.seq;  // still alive: finished ones wait in the scheduler's list
    RequestState& state = requests_.at(seq.seq_id);
    if (append_text(state, seq, token) && !seq.is_finished()) {
      scheduler_->finish(seq.seq_id, FinishReason::kStop, now());
    }
    if (!seq.is_finished() && state.on_token) {
      StreamEvent ev;
      ev.request_id = seq.seq_id;
      ev.token_id = token;
      ev.text = take_stream_text(state, false);
      events.push_back(std::move(ev));
    } else if (seq.is_finished()) {
      // The final event (in step()) carries this token.
      StreamEvent ev;
      ev.request_id = seq.seq_id;
      ev.token_id = token;
      events.push_back(std::move(ev));
    }
  }
}

std::vector<RequestOutput> LLMEngine::step() {
  std::vector<StreamEvent> events;
  const double step_begin = prof_.on ? now() : 0;
  if (prof_.on && prof_.last_end >= 0) prof_.between_s += step_begin - prof_.last_end;
  prof_.call_run_s = 0;
  if (inflight_) {
    drop_finished(inflight_->out);        // aborted since it was launched
    scheduler_->advance(inflight_->out);  // placeholders for its tokens, so the next step can run
  }
  std::optional<LaunchedStep> launched;
  double schedule_this_call = 0;
  if (scheduler_->has_unfinished()) {
    SchedulerOutput out = scheduler_->schedule(now());
    // Empty with a step in flight when every running sequence waits for its final token.
    HARDKV_CHECK(!out.empty() || inflight_, kInternal,
                 "the scheduler made no progress ({} waiting, {} running)",
                 scheduler_->num_waiting(), scheduler_->num_running());
    if (prof_.on) {
      schedule_this_call = now() - step_begin;
      prof_.schedule_s += schedule_this_call;
    }
    if (!out.empty()) launched = launch(std::move(out));  // its host time counts as the step's run
  }
  if (inflight_) {
    num_overlapped_steps_ += launched ? 1 : 0;
    complete(*inflight_, events);
    inflight_.reset();
  }
  if (launched && async_) {
    inflight_ = std::move(launched);
  } else if (launched) {
    scheduler_->advance(launched->out);
    complete(*launched, events);
  }
  if (inflight_ && !drop_finished(inflight_->out)) {
    runner_->collect(inflight_->ticket);  // only finished sequences' rows: nothing to apply
    inflight_.reset();
  }
  std::vector<RequestOutput> outputs;
  for (std::unique_ptr<Sequence>& seq : scheduler_->take_finished()) {
    auto it = requests_.find(seq->seq_id);
    HARDKV_ASSERT(it != requests_.end());
    RequestState& state = it->second;
    if (state.detok && !state.stopped_by_string) state.text += state.detok->flush();
    if (state.on_token) {
      // Fill in the finishing token's event of this step, or add one (abort, rejection).
      auto ev = std::find_if(events.begin(), events.end(),
                             [&](const StreamEvent& e) { return e.request_id == seq->seq_id; });
      if (ev == events.end()) {
        events.emplace_back();
        ev = events.end() - 1;
        ev->request_id = seq->seq_id;
      }
      ev->text = take_stream_text(state, true);
      ev->finished = true;
      ev->finish_reason = seq->finish_reason;
    }
    outputs.push_back(make_output(*seq, state));
  }
  // Callbacks run last, when the engine state is consistent (they may call abort()).
  for (const StreamEvent& ev : events) {
    auto it = requests_.find(ev.request_id);
    if (it != requests_.end() && it->second.on_token) it->second.on_token(ev);
  }
  for (const RequestOutput& o : outputs) requests_.erase(o.request_id);
  if (prof_.on) {
    prof_.last_end = now();
    prof_.post_s += prof_.last_end - step_begin - schedule_this_call - prof_.call_run_s;
  }
  return outputs;
}

EngineStats LLMEngine::stats() const {
  EngineStats s;
  const BlockManagerStats b = block_manager_ ? block_manager_->stats() : BlockManagerStats{};
  s.num_steps = num_steps_;
  s.num_preemptions = scheduler_->num_preemptions();
  s.prefix_queried_tokens = b.num_queried_tokens;
  s.prefix_hit_tokens = b.num_hit_tokens;
  s.prefix_hit_rate = b.hit_rate();
  s.num_kv_blocks = limits_.num_kv_blocks;
  s.kv_block_size = limits_.block_size;
  s.max_model_len = scheduler_->max_seq_len();
  s.num_used_blocks_now = b.num_used_blocks_now;
  s.kv_mode = config_.kv_mode;
  if (hard_kv_) {
    const kv::KVMemoryUsage u = hard_kv_->kv().total_usage();
    s.num_used_blocks_now =
        hard_kv_->dense_pool().num_blocks() - hard_kv_->dense_pool().num_free_blocks();
    s.kv_dense_bytes_now = u.dense_bytes;
    s.kv_condensed_bytes_now = u.condensed_bytes;
    s.kv_sparse_bytes_now = u.sparse_bytes;
    s.kv_compression_events = hard_kv_->event_totals().events;
  } else {
    s.kv_dense_bytes_now = static_cast<int64_t>(b.num_used_blocks_now) *
                           static_cast<int64_t>(limits_.kv_bytes_per_block);
  }
  s.num_decode_steps = num_decode_steps_;
  s.num_overlapped_steps = num_overlapped_steps_;
  s.decode_step_seconds = decode_step_seconds_;
  s.prefill_step_seconds = prefill_step_seconds_;
  s.num_graph_captures = runner_->num_graph_captures();
  s.num_graph_replays = runner_->num_graph_replays();
  s.num_warmup_graphs = num_warmup_graphs_;
  s.warmup_seconds = warmup_seconds_;
  s.num_waiting_now = scheduler_->num_waiting();
  s.num_running_now = scheduler_->num_running();
  return s;
}

std::string LLMEngine::kv_stats_json() const {
  return hard_kv_ ? hard_kv_->stats_json() : std::string("{}");
}

}  // namespace hardkv
