// Test helpers shared by the CUDA HARD-KV engine tests: a random tiny checkpoint, a small engine
// config, teacher-forced requests whose prompt and forced tokens follow simple formulas, their
// logprob difference, and the device-vs-CPU-engine check.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/llm_engine.h"
#include "hardkv/llm.h"
#include "model/random_checkpoint.h"

namespace hardkv::test {

// Writes a random bf16 checkpoint of the "tiny" preset (head_dim > 0 overrides the preset's) to
// the temp dir as hardkv_<name>_<pid>; returns its path. Callers keep it in a function static.
inline std::string random_tiny_checkpoint(const std::string& name, uint64_t seed,
                                          int head_dim = 0) {
  const auto p =
      std::filesystem::temp_directory_path() / ("hardkv_" + name + "_" + std::to_string(getpid()));
  RandomCheckpointOptions opt;
  opt.seed = seed;
  opt.dtype = DType::kBF16;
  ModelConfig mc = model_preset("tiny");
  if (head_dim > 0) mc.head_dim = head_dim;
  write_random_checkpoint(mc, p.string(), opt);
  return p.string();
}

// The tokens of request r's prompt or forced continuation: len + len_step * r of them, token i
// being (i * mul + shift * r) % 250.
struct TokenFormula {
  int len = 0, len_step = 0, mul = 1, shift = 0;
  std::vector<int32_t> tokens(int r) const {
    std::vector<int32_t> t(len + len_step * r);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * mul + shift * r) % 250);
    return t;
  }
};

// count greedy requests with logprobs on and EOS ignored, each teacher-forced through its forced
// tokens.
inline void make_forced_requests(int count, const TokenFormula& prompt, const TokenFormula& forced,
                                 std::vector<std::vector<int32_t>>& prompts,
                                 std::vector<SamplingParams>& params) {
  for (int r = 0; r < count; ++r) {
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.logprobs = true;
    p.max_tokens = 1000;
    p.forced_tokens = forced.tokens(r);
    prompts.push_back(prompt.tokens(r));
    params.push_back(p);
  }
}

// Up to 8 sequences of up to 1,024 tokens in 512 blocks of 16, no prefix caching; in hard mode
// window 16, interval 16, obs-window 16, page size 16 (strategy, allocation, budget, sinks: the
// caller's).
inline EngineConfig small_engine_config(const std::string& backend, const std::string& kv_mode) {
  EngineConfig c;
  c.backend = backend;
  c.max_num_seqs = 8;
  c.max_model_len = 1024;
  c.num_kv_blocks = 512;
  c.kv_block_size = 16;
  c.enable_prefix_caching = false;
  c.kv_mode = kv_mode;
  c.compression.window = 16;
  c.compression.interval = 16;
  c.compression.obs_window = 16;
  c.compression.page_size = 16;
  return c;
}

// max |a - b| over the requests' logprobs (each pair of requests must have as many); *mean gets
// the mean.
inline double max_logprob_diff(const std::vector<RequestOutput>& a,
                               const std::vector<RequestOutput>& b, double* mean = nullptr) {
  double mx = 0, sum = 0;
  int64_t n = 0;
  EXPECT_EQ(a.size(), b.size());
  for (size_t r = 0; r < std::min(a.size(), b.size()); ++r) {
    EXPECT_EQ(a[r].logprobs.size(), b[r].logprobs.size());
    for (size_t i = 0; i < std::min(a[r].logprobs.size(), b[r].logprobs.size()); ++i) {
      const double d = std::fabs(a[r].logprobs[i] - b[r].logprobs[i]);
      mx = std::max(mx, d);
      sum += d;
      ++n;
    }
  }
  if (mean) *mean = n ? sum / n : 0;
  return mx;
}

// Runs the teacher-forced requests on a CPU engine (the reference) and a CUDA engine, both in hard
// mode, and checks the device engine: the forced tokens come back, the same compression events run
// (due by length alone; more than 5), the text scores close to the reference (bf16 keys can
// reorder near-tied scores, so kept sets may differ a little: mean |logprob diff| < 0.05), and
// everything is freed at the end. label heads the printed line.
inline void expect_matches_cpu_engine(LLM& cpu, LLM& gpu,
                                      const std::vector<std::vector<int32_t>>& prompts,
                                      const std::vector<SamplingParams>& params,
                                      const std::string& label) {
  const auto c = cpu.generate(prompts, params, false);
  const auto g = gpu.generate(prompts, params, false);
  for (size_t r = 0; r < g.size(); ++r) {
    ASSERT_EQ(g[r].token_ids, params[r].forced_tokens) << g[r].error;
  }
  double mean = 0;
  const double mx = max_logprob_diff(c, g, &mean);
  const EngineStats sc = cpu.stats(), sg = gpu.stats();
  std::printf("%s, cuda vs cpu hard: max |logprob diff| %.4g, mean %.4g; events %lld vs %lld\n",
              label.c_str(), mx, mean, static_cast<long long>(sg.kv_compression_events),
              static_cast<long long>(sc.kv_compression_events));
  EXPECT_EQ(sg.kv_compression_events, sc.kv_compression_events);
  EXPECT_GT(sg.kv_compression_events, 5);
  EXPECT_LT(mean, 0.05);
  EXPECT_EQ(sg.kv_dense_bytes_now + sg.kv_condensed_bytes_now, 0);
}

}  // namespace hardkv::test
