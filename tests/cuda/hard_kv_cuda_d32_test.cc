// HARD-KV on the CUDA backend at head_dim 32 (hardkv-tiny's head size; the random "tiny" preset
// keeps its native 32): with eviction the device engine runs the same compression events as the
// CPU reference engine and scores forced text close to it; everything is freed at the end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/llm_engine.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"
#include "model/random_checkpoint.h"

namespace hardkv {
namespace {

const std::string& tiny_d32_dir() {
  static const std::string dir = [] {
    const auto p = std::filesystem::temp_directory_path() /
                   ("hardkv_cuda_hard_d32_" + std::to_string(getpid()));
    RandomCheckpointOptions opt;
    opt.seed = 7;
    opt.dtype = DType::kBF16;
    ModelConfig mc = model_preset("tiny");
    EXPECT_EQ(mc.head_dim, 32);
    write_random_checkpoint(mc, p.string(), opt);
    return p.string();
  }();
  return dir;
}

EngineConfig d32_config(const std::string& backend, const std::string& strategy,
                        const std::string& allocation) {
  EngineConfig c;
  c.backend = backend;
  c.max_num_seqs = 8;
  c.max_model_len = 1024;
  c.num_kv_blocks = 512;
  c.kv_block_size = 16;
  c.enable_prefix_caching = false;
  c.kv_mode = "hard";
  c.compression.strategy = strategy;
  c.compression.allocation = allocation;
  c.compression.budget = 64;
  c.compression.upper_budget = 128;
  c.compression.window = 16;
  c.compression.sinks = 1;
  c.compression.interval = 16;
  c.compression.obs_window = 16;
  c.compression.page_size = 16;
  return c;
}

void check_d32(const std::string& strategy, const std::string& allocation) {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (int r = 0; r < 4; ++r) {
    std::vector<int32_t> prompt(50 + 70 * r);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 13 + r) % 250);
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.logprobs = true;
    p.max_tokens = 1000;
    for (int i = 0; i < 90 + 40 * r; ++i) p.forced_tokens.push_back((i * 5 + 3 * r) % 250);
    prompts.push_back(prompt);
    params.push_back(p);
  }
  LLM cpu(tiny_d32_dir(), d32_config("cpu", strategy, allocation));
  const auto c = cpu.generate(prompts, params, false);
  LLM gpu(tiny_d32_dir(), d32_config("cuda", strategy, allocation));
  const auto g = gpu.generate(prompts, params, false);
  double mx = 0, sum = 0;
  int64_t n = 0;
  for (size_t r = 0; r < g.size(); ++r) {
    ASSERT_EQ(g[r].token_ids, params[r].forced_tokens) << g[r].error;
    ASSERT_EQ(c[r].logprobs.size(), g[r].logprobs.size());
    for (size_t i = 0; i < g[r].logprobs.size(); ++i) {
      const double d = std::fabs(c[r].logprobs[i] - g[r].logprobs[i]);
      mx = std::max(mx, d);
      sum += d;
      ++n;
    }
  }
  const EngineStats sc = cpu.stats(), sg = gpu.stats();
  std::printf(
      "head_dim 32, %s/%s, cuda vs cpu hard: max |logprob diff| %.4g, mean %.4g, events %lld\n",
      strategy.c_str(), allocation.c_str(), mx, n ? sum / n : 0.0,
      static_cast<long long>(sg.kv_compression_events));
  EXPECT_EQ(sg.kv_compression_events, sc.kv_compression_events);  // due by length alone
  EXPECT_GT(sg.kv_compression_events, 5);
  // bf16 keys can reorder near-tied scores, so kept sets may differ a little from the CPU's.
  EXPECT_LT(sum / std::max<int64_t>(n, 1), 0.05);
  EXPECT_EQ(sg.kv_dense_bytes_now + sg.kv_condensed_bytes_now, 0);  // everything freed
}

TEST(CudaHardKVHeadDim32, SnapkvHardMatchesTheCpuEngine) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: device HARD-KV test skipped";
  check_d32("snapkv", "hard");
}

TEST(CudaHardKVHeadDim32, RkvUniformMatchesTheCpuEngine) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: device HARD-KV test skipped";
  check_d32("rkv", "uniform");
}

}  // namespace
}  // namespace hardkv
