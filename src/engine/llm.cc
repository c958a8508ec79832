// LLM: the public API over LLMEngine — batch generate() with an optional progress bar, and the
// incremental add_request / step / abort calls.
#include "hardkv/llm.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "engine/llm_engine.h"

namespace hardkv {

namespace {

const SamplingParams& params_for(std::span<const SamplingParams> params, size_t i) {
  return params.size() == 1 ? params[0] : params[i];
}

// "\rGenerating  12/256 [  3.1s, 850.2 tok/s]" on stderr, only when it is a terminal.
class ProgressBar {
 public:
  ProgressBar(size_t total, bool enabled)
      : total_(total),
        enabled_(enabled && total > 1 && isatty(fileno(stderr))),
        start_(std::chrono::steady_clock::now()) {}
  void update(size_t done, int64_t tokens) {
    if (!enabled_) return;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\rGenerating %zu/%zu [%6.1fs, %8.1f tok/s]", done, total_, s,
                 s > 0 ? tokens / s : 0.0);
    if (done == total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  size_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

template <typename Prompt>
std::vector<RequestOutput> run_batch(LLMEngine& engine, std::span<const Prompt> prompts,
                                     std::span<const SamplingParams> params, bool progress) {
  HARDKV_CHECK(params.size() == 1 || params.size() == prompts.size(), kInvalidArgument,
               "generate() got {} sampling parameter sets for {} prompts (give 1 or one each)",
               params.size(), prompts.size());
  HARDKV_CHECK(!engine.has_unfinished(), kInvalidArgument,
               "generate() cannot run while requests added with add_request() are unfinished");
  std::unordered_map<int64_t, size_t> index;  // request id -> input position
  for (size_t i = 0; i < prompts.size(); ++i) {
    index[engine.add_request(prompts[i], params_for(params, i), {})] = i;
  }
  std::vector<RequestOutput> results(prompts.size());
  ProgressBar bar(prompts.size(), progress);
  size_t done = 0;
  int64_t tokens = 0;
  while (engine.has_unfinished()) {
    for (RequestOutput& out : engine.step()) {
      tokens += static_cast<int64_t>(out.token_ids.size());
      results[index.at(out.request_id)] = std::move(out);
      bar.update(++done, tokens);
    }
  }
  return results;
}

}  // namespace

LLM::LLM(const std::string& model_dir, EngineConfig config)
    : engine_(std::make_unique<LLMEngine>(model_dir, config)) {}
LLM::~LLM() = default;
LLM::LLM(LLM&&) noexcept = default;
LLM& LLM::operator=(LLM&&) noexcept = default;

std::vector<RequestOutput> LLM::generate(std::span<const std::string> prompts,
                                         const SamplingParams& params, bool progress) {
  return run_batch(*engine_, prompts, std::span<const SamplingParams>(&params, 1), progress);
}
std::vector<RequestOutput> LLM::generate(std::span<const std::string> prompts,
                                         std::span<const SamplingParams> params, bool progress) {
  return run_batch(*engine_, prompts, params, progress);
}
std::vector<RequestOutput> LLM::generate(std::span<const std::vector<int32_t>> prompt_token_ids,
                                         const SamplingParams& params, bool progress) {
  return run_batch(*engine_, prompt_token_ids, std::span<const SamplingParams>(&params, 1),
                   progress);
}
std::vector<RequestOutput> LLM::generate(std::span<const std::vector<int32_t>> prompt_token_ids,
                                         std::span<const SamplingParams> params, bool progress) {
  return run_batch(*engine_, prompt_token_ids, params, progress);
}

int64_t LLM::add_request(const std::string& prompt, const SamplingParams& params,
                         StreamCallback on_token) {
  return engine_->add_request(prompt, params, std::move(on_token));
}
int64_t LLM::add_request(std::vector<int32_t> prompt_token_ids, const SamplingParams& params,
                         StreamCallback on_token) {
  return engine_->add_request(std::move(prompt_token_ids), params, std::move(on_token));
}
std::vector<RequestOutput> LLM::step() { return engine_->step(); }
bool LLM::abort(int64_t request_id) { return engine_->abort(request_id); }
bool LLM::has_unfinished() const { return engine_->has_unfinished(); }
const Tokenizer& LLM::tokenizer() const { return engine_->tokenizer(); }
EngineStats LLM::stats() const { return engine_->stats(); }
std::string LLM::kv_stats_json() const { return engine_->kv_stats_json(); }

}  // namespace hardkv
