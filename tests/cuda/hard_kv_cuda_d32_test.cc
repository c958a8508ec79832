// HARD-KV on the CUDA backend at head_dim 32 (hardkv-tiny's head size; the random "tiny" preset
// keeps its native 32): with eviction the device engine runs the same compression events as the
// CPU reference engine and scores forced text close to it; everything is freed at the end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/llm_engine.h"
#include "hard_kv_requests.h"
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
  EngineConfig c = test::small_engine_config(backend, "hard");
  c.compression.strategy = strategy;
  c.compression.allocation = allocation;
  c.compression.budget = 64;
  c.compression.upper_budget = 128;
  c.compression.sinks = 1;
  return c;
}

void check_d32(const std::string& strategy, const std::string& allocation) {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  // 4 requests of 50-260 prompt tokens and 90-210 forced tokens.
  test::make_forced_requests(4, {50, 70, 13, 1}, {90, 40, 5, 3}, prompts, params);
  LLM cpu(tiny_d32_dir(), d32_config("cpu", strategy, allocation));
  const auto c = cpu.generate(prompts, params, false);
  LLM gpu(tiny_d32_dir(), d32_config("cuda", strategy, allocation));
  const auto g = gpu.generate(prompts, params, false);
  for (size_t r = 0; r < g.size(); ++r) {
    ASSERT_EQ(g[r].token_ids, params[r].forced_tokens) << g[r].error;
  }
  double mean = 0;
  const double mx = test::max_logprob_diff(c, g, &mean);
  const EngineStats sc = cpu.stats(), sg = gpu.stats();
  std::printf(
      "head_dim 32, %s/%s, cuda vs cpu hard: max |logprob diff| %.4g, mean %.4g, events %lld\n",
      strategy.c_str(), allocation.c_str(), mx, mean,
      static_cast<long long>(sg.kv_compression_events));
  EXPECT_EQ(sg.kv_compression_events, sc.kv_compression_events);  // due by length alone
  EXPECT_GT(sg.kv_compression_events, 5);
  // bf16 keys can reorder near-tied scores, so kept sets may differ a little from the CPU's.
  EXPECT_LT(mean, 0.05);
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
