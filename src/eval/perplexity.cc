// Held-out text -> token chunks -> teacher-forced LLM::generate with log-probabilities -> NLL and
// perplexity per chunk and overall -> ppl.json, ppl.md.
#include "eval/perplexity.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hardkv/llm.h"
#include "tokenizer/tokenizer.h"

namespace hardkv::eval {

double PerplexityResult::mean_nll() const {
  return num_scored > 0 ? nll_sum / static_cast<double>(num_scored) : 0.0;
}

double PerplexityResult::perplexity() const { return std::exp(mean_nll()); }

std::vector<TokenSpan> split_into_chunks(int64_t num_tokens, int chunk_len, int max_chunks) {
  HARDKV_CHECK(chunk_len >= 2, kInvalidArgument, "--chunk-len must be >= 2, got {}", chunk_len);
  std::vector<TokenSpan> spans;
  for (int64_t start = 0; start + chunk_len <= num_tokens; start += chunk_len) {
    if (max_chunks > 0 && static_cast<int>(spans.size()) == max_chunks) break;
    spans.push_back({start, chunk_len});
  }
  return spans;
}

namespace {

void check_lengths(int chunk_len, int prompt_len) {
  HARDKV_CHECK(chunk_len >= 2, kInvalidArgument, "--chunk-len must be >= 2, got {}", chunk_len);
  HARDKV_CHECK(prompt_len >= 1 && prompt_len < chunk_len, kInvalidArgument,
               "--prompt-len must be in [1, --chunk-len) = [1, {}), got {}", chunk_len,
               prompt_len);
}

}  // namespace

PerplexityResult score_perplexity(LLM& llm, std::span<const int32_t> tokens, int chunk_len,
                                  int prompt_len, int max_chunks) {
  check_lengths(chunk_len, prompt_len);
  const int max_model_len = llm.stats().max_model_len;
  HARDKV_CHECK(chunk_len <= max_model_len, kInvalidArgument,
               "--chunk-len {} is longer than the context the engine allows ({}); lower it or "
               "raise --max-model-len",
               chunk_len, max_model_len);
  const std::vector<TokenSpan> spans = split_into_chunks(
      static_cast<int64_t>(tokens.size()), chunk_len, max_chunks);
  HARDKV_CHECK(!spans.empty(), kInvalidArgument,
               "the text has {} tokens, fewer than one chunk of {}", tokens.size(), chunk_len);

  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (const TokenSpan& s : spans) {
    const int32_t* begin = tokens.data() + s.start;
    prompts.emplace_back(begin, begin + prompt_len);
    SamplingParams p;
    p.temperature = 0.0f;  // unused: every output token is forced
    p.seed = 0;
    p.ignore_eos = true;  // an end-of-text token inside the text is scored like any other
    p.logprobs = true;
    p.forced_tokens.assign(begin + prompt_len, begin + s.length);
    p.max_tokens = s.length - prompt_len;
    params.push_back(std::move(p));
  }
  const std::vector<RequestOutput> outputs = llm.generate(prompts, params);

  PerplexityResult result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const RequestOutput& out = outputs[i];
    HARDKV_CHECK(out.finish_reason != FinishReason::kError, kRuntime,
                 "chunk {} (tokens from {}) failed: {}", i, spans[i].start, out.error);
    const size_t expected = params[i].forced_tokens.size();
    HARDKV_CHECK(out.logprobs.size() == expected && out.token_ids == params[i].forced_tokens,
                 kInternal, "chunk {}: the engine returned {} log-probabilities for {} forced tokens",
                 i, out.logprobs.size(), expected);
    ChunkScore c;
    c.start = spans[i].start;
    c.num_scored = static_cast<int>(expected);
    for (float lp : out.logprobs) c.nll_sum -= static_cast<double>(lp);
    result.num_scored += c.num_scored;
    result.nll_sum += c.nll_sum;
    result.chunks.push_back(c);
  }
  return result;
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HARDKV_CHECK(in.good(), kBadFile, "--text {}: cannot open", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_outputs(const PerplexityOptions& o, const PerplexityResult& r, int64_t num_tokens) {
  nlohmann::json chunks = nlohmann::json::array();
  for (const ChunkScore& c : r.chunks) {
    const double mean = c.num_scored > 0 ? c.nll_sum / c.num_scored : 0.0;
    chunks.push_back({{"start", c.start},
                      {"num_scored", c.num_scored},
                      {"nll_sum", c.nll_sum},
                      {"mean_nll", mean},
                      {"perplexity", std::exp(mean)}});
  }
  const nlohmann::json js = {{"model", o.model_dir},
                             {"text", o.text_path},
                             {"method", o.method_label},
                             {"budget", o.budget_label},
                             {"kv_mode", o.engine.kv_mode},
                             {"budget_tokens", o.engine.kv_mode == "hard"
                                                   ? nlohmann::json(o.engine.compression.budget)
                                                   : nlohmann::json(nullptr)},
                             {"text_tokens", num_tokens},
                             {"chunk_len", o.chunk_len},
                             {"prompt_len", o.prompt_len},
                             {"num_chunks", r.chunks.size()},
                             {"num_scored", r.num_scored},
                             {"nll_sum", r.nll_sum},
                             {"mean_nll", r.mean_nll()},
                             {"perplexity", r.perplexity()},
                             {"chunks", chunks}};
  const std::filesystem::path dir(o.out_dir);
  std::ofstream json_out(dir / "ppl.json");
  HARDKV_CHECK(json_out.good(), kRuntime, "cannot write {}/ppl.json", o.out_dir);
  json_out << js.dump(2) << "\n";
  std::ofstream md(dir / "ppl.md");
  HARDKV_CHECK(md.good(), kRuntime, "cannot write {}/ppl.md", o.out_dir);
  md << fmt::format(
      "Text `{}` ({} tokens), model `{}`: {} chunks of {} tokens, the first {} of each as the "
      "prompt, the rest scored.\n\n",
      o.text_path, num_tokens, o.model_dir, r.chunks.size(), o.chunk_len, o.prompt_len);
  md << "| method | budget | scored tokens | mean NLL (nats) | perplexity |\n";
  md << "| --- | --- | --- | --- | --- |\n";
  md << fmt::format("| {} | {} | {} | {:.4f} | {:.3f} |\n", o.method_label, o.budget_label,
                    r.num_scored, r.mean_nll(), r.perplexity());
}

}  // namespace

PerplexityResult run_perplexity(const PerplexityOptions& options) {
  check_lengths(options.chunk_len, options.prompt_len);  // before the slow model load
  const std::string text = read_text(options.text_path);
  std::filesystem::create_directories(options.out_dir);
  LLM llm(options.model_dir, options.engine);
  const std::vector<int32_t> tokens = llm.tokenizer().encode(text);
  PerplexityResult result = score_perplexity(llm, tokens, options.chunk_len, options.prompt_len,
                                             options.max_chunks);
  if (!options.stats_out.empty()) {
    std::ofstream stats(options.stats_out);
    HARDKV_CHECK(stats.good(), kRuntime, "cannot write {}", options.stats_out);
    stats << llm.kv_stats_json() << "\n";
  }
  write_outputs(options, result, static_cast<int64_t>(tokens.size()));
  return result;
}

}  // namespace hardkv::eval
