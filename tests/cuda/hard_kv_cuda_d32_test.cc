// HARD-KV on the CUDA backend at head_dim 32 (hardkv-tiny's head size; the random "tiny" preset
// keeps its native 32): with eviction the device engine runs the same compression events as the
// CPU reference engine and scores forced text close to it; everything is freed at the end.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/llm_engine.h"
#include "hard_kv_requests.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

const std::string& tiny_d32_dir() {
  static const std::string dir = [] {
    EXPECT_EQ(model_preset("tiny").head_dim, 32);
    return test::random_tiny_checkpoint("cuda_hard_d32", 7);
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
  LLM gpu(tiny_d32_dir(), d32_config("cuda", strategy, allocation));
  test::expect_matches_cpu_engine(cpu, gpu, prompts, params,
                                  "head_dim 32, " + strategy + "/" + allocation);
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
