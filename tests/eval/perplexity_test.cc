// Perplexity through the engine (src/eval/perplexity.h) against a plain reference: one full
// forward of the CPU model per chunk, log_softmax written out here, NLL summed over the scored
// positions. HARD-KV with a budget above the chunk scores like dense; a small budget differs.
#include "eval/perplexity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace hardkv::eval {
namespace {

namespace fs = std::filesystem;

const fs::path& model_dir() {  // the "tiny" preset (vocab 320, 2 layers), F32, written once
  static const fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("hardkv_ppl_tiny_" + std::to_string(getpid()));
    RandomCheckpointOptions opt;
    opt.seed = 11;
    opt.dtype = DType::kF32;
    write_random_checkpoint(model_preset("tiny"), p.string(), opt);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("hardkv_ppl_tiny_" + std::to_string(getpid())),
                     ec);
    });
    return p;
  }();
  return dir;
}

EngineConfig dense_config() {
  EngineConfig c;
  c.backend = "cpu";
  c.num_kv_blocks = 256;
  c.kv_block_size = 4;
  c.enable_prefix_caching = false;
  return c;
}

EngineConfig hard_config(int budget) {
  EngineConfig c = dense_config();
  c.kv_mode = "hard";
  c.compression.strategy = "snapkv";
  c.compression.allocation = "uniform";
  c.compression.budget = budget;
  c.compression.upper_budget = 2 * budget;
  c.compression.window = 4;
  c.compression.sinks = 1;
  c.compression.interval = 4;  // events run every 4 decode steps while the text is scored
  c.compression.obs_window = 4;
  c.compression.page_size = 4;
  return c;
}

std::vector<int32_t> text_tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + (i / 7) * 11 + 5) % 300;
  return t;
}

// Sum over p in [prompt_len - 1, n - 1) of -log_softmax(logits at p)[tokens[p + 1]], from one
// prefill of the whole chunk with logits at every position (double-precision log-sum-exp).
double reference_nll(const std::vector<int32_t>& chunk, int prompt_len) {
  auto be = make_cpu_backend();
  auto model = Model::load(model_dir().string(), *be);
  const int n = static_cast<int>(chunk.size());
  const int bs = 4;
  const int num_blocks = (n + bs - 1) / bs;
  KVCache kv = model->allocate_kv_cache(num_blocks, bs);
  ForwardBatch b;
  b.token_ids = chunk;
  for (int p = 0; p < n; ++p) {
    b.positions.push_back(p);
    b.slot_mapping.push_back(p);
    if (p >= prompt_len - 1 && p < n - 1) b.logits_indices.push_back(p);
  }
  b.query_indptr = {0, n};
  b.kv_lens = {n};
  for (int i = 0; i < num_blocks; ++i) b.block_indices.push_back(i);
  b.block_indptr = {0, num_blocks};
  const Tensor logits = model->forward(b, kv);
  const int64_t vocab = logits.dim(1);
  double nll = 0;
  for (int r = 0; r < logits.dim(0); ++r) {
    const float* row = logits.data_as<float>() + r * vocab;
    double m = row[0];
    for (int64_t j = 1; j < vocab; ++j) m = std::max(m, static_cast<double>(row[j]));
    double z = 0;
    for (int64_t j = 0; j < vocab; ++j) z += std::exp(row[j] - m);
    nll -= row[chunk[prompt_len + r]] - m - std::log(z);
  }
  return nll;
}

TEST(SplitIntoChunks, FullChunksOnlyAndMaxChunks) {
  const std::vector<TokenSpan> s = split_into_chunks(10, 4, 0);
  ASSERT_EQ(s.size(), 2u);  // tokens 8 and 9 do not fill a chunk
  EXPECT_EQ(s[0].start, 0);
  EXPECT_EQ(s[1].start, 4);
  EXPECT_EQ(s[1].length, 4);
  EXPECT_EQ(split_into_chunks(12, 4, 0).size(), 3u);
  EXPECT_EQ(split_into_chunks(12, 4, 2).size(), 2u);
  EXPECT_TRUE(split_into_chunks(3, 4, 0).empty());
  EXPECT_THROW(split_into_chunks(10, 1, 0), Error);
}

TEST(Perplexity, DenseEqualsPlainFullAttentionReference) {
  const std::vector<int32_t> tokens = text_tokens(80);  // 3 chunks of 24, 8 tokens dropped
  const int chunk_len = 24, prompt_len = 5;
  LLM llm(model_dir().string(), dense_config());
  const PerplexityResult r = score_perplexity(llm, tokens, chunk_len, prompt_len, 0);
  ASSERT_EQ(r.chunks.size(), 3u);
  double ref_total = 0;
  for (int c = 0; c < 3; ++c) {
    const std::vector<int32_t> chunk(tokens.begin() + c * chunk_len,
                                     tokens.begin() + (c + 1) * chunk_len);
    const double ref = reference_nll(chunk, prompt_len);
    EXPECT_EQ(r.chunks[c].start, c * chunk_len);
    EXPECT_EQ(r.chunks[c].num_scored, chunk_len - prompt_len);
    EXPECT_NEAR(r.chunks[c].nll_sum, ref, 1e-3) << "chunk " << c;
    ref_total += ref;
  }
  EXPECT_EQ(r.num_scored, 3 * (chunk_len - prompt_len));
  const double ref_ppl = std::exp(ref_total / (3.0 * (chunk_len - prompt_len)));
  EXPECT_NEAR(r.perplexity(), ref_ppl, 1e-4 * ref_ppl);
  EXPECT_NEAR(r.mean_nll(), ref_total / (3.0 * (chunk_len - prompt_len)), 1e-5);
}

TEST(Perplexity, HardModeWithBudgetAboveTheChunkEqualsDense) {
  const std::vector<int32_t> tokens = text_tokens(96);
  LLM dense(model_dir().string(), dense_config());
  const PerplexityResult d = score_perplexity(dense, tokens, 48, 6, 0);
  LLM hard(model_dir().string(), hard_config(64));  // > 48: nothing can be evicted
  const PerplexityResult h = score_perplexity(hard, tokens, 48, 6, 0);
  ASSERT_EQ(h.chunks.size(), d.chunks.size());
  for (size_t c = 0; c < d.chunks.size(); ++c) {
    EXPECT_NEAR(h.chunks[c].nll_sum, d.chunks[c].nll_sum, 1e-4) << "chunk " << c;
  }
  EXPECT_NEAR(h.perplexity(), d.perplexity(), 1e-6 * d.perplexity());
}

TEST(Perplexity, HardModeWithSmallBudgetChangesTheScore) {
  const std::vector<int32_t> tokens = text_tokens(96);
  LLM dense(model_dir().string(), dense_config());
  const PerplexityResult d = score_perplexity(dense, tokens, 48, 6, 0);
  LLM hard(model_dir().string(), hard_config(12));  // evicts most of each 48-token chunk
  const PerplexityResult h = score_perplexity(hard, tokens, 48, 6, 0);
  EXPECT_GT(hard.stats().kv_compression_events, 0);
  EXPECT_GT(std::abs(h.nll_sum - d.nll_sum), 1e-3);
  EXPECT_EQ(h.num_scored, d.num_scored);
}

TEST(Perplexity, BadLengthsAreErrors) {
  LLM llm(model_dir().string(), dense_config());
  const std::vector<int32_t> tokens = text_tokens(40);
  EXPECT_THROW(score_perplexity(llm, tokens, 16, 16, 0), Error);  // nothing left to score
  EXPECT_THROW(score_perplexity(llm, tokens, 16, 0, 0), Error);
  EXPECT_THROW(score_perplexity(llm, tokens, 64, 8, 0), Error);  // text shorter than a chunk
}

TEST(Perplexity, RunWritesJsonAndMarkdown) {
  const fs::path dir = fs::temp_directory_path() / ("hardkv_ppl_run_" + std::to_string(getpid()));
  fs::create_directories(dir);
  // The make-model tokenizer maps ASCII bytes to their values: 100 characters = 100 tokens.
  std::string text;
  for (int i = 0; i < 100; ++i) text += static_cast<char>('a' + (i * 7) % 26);
  std::ofstream(dir / "text.txt") << text;
  PerplexityOptions o;
  o.model_dir = model_dir().string();
  o.text_path = (dir / "text.txt").string();
  o.out_dir = (dir / "out").string();
  o.chunk_len = 30;
  o.prompt_len = 4;
  o.engine = dense_config();
  const PerplexityResult r = run_perplexity(o);
  std::ifstream in(dir / "out" / "ppl.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("text_tokens"), 100);
  EXPECT_EQ(j.at("num_chunks"), 3);
  EXPECT_EQ(j.at("num_scored"), 3 * 26);
  EXPECT_EQ(j.at("method"), "full");
  ASSERT_EQ(j.at("chunks").size(), 3u);
  double sum = 0;
  for (const auto& c : j.at("chunks")) sum += c.at("nll_sum").get<double>();
  EXPECT_NEAR(sum, j.at("nll_sum").get<double>(), 1e-9);
  EXPECT_NEAR(j.at("perplexity").get<double>(), std::exp(sum / (3 * 26)), 1e-9);
  // The first chunk's tokens are the text's bytes.
  std::vector<int32_t> first(text.begin(), text.begin() + 30);
  EXPECT_NEAR(r.chunks[0].nll_sum, reference_nll(first, 4), 1e-3);
  EXPECT_TRUE(fs::exists(dir / "out" / "ppl.md"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hardkv::eval
