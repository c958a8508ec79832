// HARD-KV on the CUDA backend (device tiers): with a budget above the context nothing is evicted
// and forced tokens score like dense mode on the same device; with eviction the device engine runs
// the same compression events as the CPU reference engine, holds less KV than dense, scores the
// forced text close to the CPU engine, and frees everything at the end.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/llm_engine.h"
#include "hard_kv_requests.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

// head_dim 64: the random "tiny" preset's own 32 is covered by hard_kv_cuda_d32_test.cc.
const std::string& tiny_dir() {
  static const std::string dir = test::random_tiny_checkpoint("cuda_hard", 5, 64);
  return dir;
}

EngineConfig config(const std::string& backend, const std::string& mode, int budget,
                    const std::string& strategy = "snapkv", bool rewrite_every_time = false,
                    double rkv_threshold = 0.5) {
  EngineConfig c = test::small_engine_config(backend, mode);
  c.compression.rkv_threshold = rkv_threshold;
  c.compression.strategy = strategy;
  c.compression.rewrite_every_time = rewrite_every_time;
  c.compression.allocation = "hard";
  c.compression.budget = budget;
  c.compression.upper_budget = 2 * budget;
  c.compression.sinks = 4;
  return c;
}

// 5 requests of 60-300 prompt tokens and 100-220 forced tokens.
void requests(std::vector<std::vector<int32_t>>& prompts, std::vector<SamplingParams>& params) {
  test::make_forced_requests(5, {60, 60, 11, 1}, {100, 30, 7, 5}, prompts, params);
}

TEST(CudaHardKV, NoEvictionScoresLikeDense) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: device HARD-KV test skipped";
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  requests(prompts, params);
  LLM dense(tiny_dir(), config("cuda", "dense", 0));
  const auto d = dense.generate(prompts, params, false);
  LLM hard(tiny_dir(), config("cuda", "hard", 1000));  // above every context: nothing evicted
  const auto h = hard.generate(prompts, params, false);
  double mean = 0;
  const double mx = test::max_logprob_diff(d, h, &mean);
  std::printf("no eviction, cuda hard vs cuda dense: max |logprob diff| %.4g, mean %.4g\n", mx,
              mean);
  EXPECT_LT(mx, 0.05);  // bf16: tiered vs paged attention kernels round differently
  EXPECT_EQ(hard.stats().kv_compression_events, 0);  // no sequence ever exceeds the budget
}

void check_eviction(const std::string& strategy, bool rewrite_every_time,
                    double rkv_threshold = 0.5) {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  requests(prompts, params);
  LLM cpu(tiny_dir(), config("cpu", "hard", 64, strategy, rewrite_every_time, rkv_threshold));
  LLM gpu(tiny_dir(), config("cuda", "hard", 64, strategy, rewrite_every_time, rkv_threshold));
  test::expect_matches_cpu_engine(
      cpu, gpu, prompts, params,
      fmt::format("eviction (budget 64, {}, threshold {:.2f}, rewrite every time {})", strategy,
                  rkv_threshold, rewrite_every_time ? 1 : 0));
}

// Device scoring from the attention alone (snapkv), with the keys downloaded (rkv), and with a
// rewrite at every event (the device rewrite kernel on every head with masked tokens).
TEST(CudaHardKV, EvictionMatchesTheCpuEngine) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: device HARD-KV test skipped";
  check_eviction("snapkv", false);
}

TEST(CudaHardKV, EvictionWithKeysAndRewritesMatchesTheCpuEngine) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: device HARD-KV test skipped";
  check_eviction("rkv", true);
}

// rkv's redundancy on the device at a similarity threshold other than the default.
TEST(CudaHardKV, RkvAtAnotherThresholdMatchesTheCpuEngine) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: device HARD-KV test skipped";
  check_eviction("rkv", false, 0.3);
}

}  // namespace
}  // namespace hardkv
