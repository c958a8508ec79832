// `hardkv ppl`: perplexity of held-out text scored through the engine by teacher forcing, so that
// HARD-KV compression events run while the text is scored. Each chunk's first prompt_len tokens
// are the prompt (prefill, unscored); the rest are forced outputs whose log-probabilities are the
// negative log-likelihood (NLL, nats).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hardkv/engine_config.h"

namespace hardkv {
class LLM;
}

namespace hardkv::eval {

struct PerplexityOptions {
  std::string model_dir;
  std::string text_path;  // UTF-8 text; special tokens written in it (<|endoftext|>) become ids
  std::string out_dir;    // ppl.json and ppl.md are written here
  int chunk_len = 1024;   // tokens per chunk, prompt included
  int prompt_len = 32;    // unscored prefix of each chunk, >= 1 and < chunk_len
  int max_chunks = 0;     // > 0: only the first max_chunks chunks
  EngineConfig engine;
  std::string method_label = "full";  // as eval's table: full, or strategy/allocation
  std::string budget_label = "full";
  std::string stats_out;  // HARD-KV statistics JSON path ("" = none)
};

struct TokenSpan {
  int64_t start = 0;  // first token of the chunk in the text's token stream
  int length = 0;
};

// Consecutive non-overlapping spans of chunk_len tokens over a stream of num_tokens (a shorter
// tail is dropped); at most max_chunks of them when max_chunks > 0. Throws on chunk_len < 2.
std::vector<TokenSpan> split_into_chunks(int64_t num_tokens, int chunk_len, int max_chunks);

struct ChunkScore {
  int64_t start = 0;   // as TokenSpan::start
  int num_scored = 0;  // chunk_len - prompt_len
  double nll_sum = 0;  // nats over the scored tokens
};

struct PerplexityResult {
  std::vector<ChunkScore> chunks;
  int64_t num_scored = 0;
  double nll_sum = 0;
  double mean_nll() const;    // nll_sum / num_scored (0 when nothing was scored)
  double perplexity() const;  // exp(mean_nll())
};

// Scores `tokens` through `llm`: every chunk of split_into_chunks is one request (all in one
// batch) with its first prompt_len tokens as the prompt and the rest forced. Throws Error when a
// request fails or the options are out of range.
PerplexityResult score_perplexity(LLM& llm, std::span<const int32_t> tokens, int chunk_len,
                                  int prompt_len, int max_chunks);

// Loads the model and the text, scores it, writes out_dir/ppl.json (totals and per-chunk NLL) and
// out_dir/ppl.md (one table row), and the HARD-KV statistics when stats_out is set.
PerplexityResult run_perplexity(const PerplexityOptions& options);

}  // namespace hardkv::eval
