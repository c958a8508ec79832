// The engine on the CUDA backend: the KV pool sized from device memory (and a clear error when
// nothing is left for it), and decode steps replayed from CUDA graphs (padded batches, KV-length
// buckets) scoring forced tokens like eager steps, to bf16 level.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"
#include "model/random_checkpoint.h"

namespace hardkv {
namespace {

const std::string& tiny_bf16_dir() {
  static const std::string dir = [] {
    const auto p =
        std::filesystem::temp_directory_path() / ("hardkv_cuda_engine_" + std::to_string(getpid()));
    RandomCheckpointOptions opt;
    opt.seed = 11;
    opt.dtype = DType::kBF16;
    write_random_checkpoint(model_preset("tiny"), p.string(), opt);
    return p.string();
  }();
  return dir;
}

EngineConfig cuda_config() {
  EngineConfig c;
  c.backend = "cuda";
  c.max_num_seqs = 16;
  c.max_num_batched_tokens = 2048;
  c.max_model_len = 1024;
  c.gpu_memory_utilization = 0.5f;
  return c;
}

TEST(CudaEngine, KVPoolComesFromDeviceMemory) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: CUDA engine test skipped";
  LLM llm(tiny_bf16_dir(), cuda_config());
  const EngineStats st = llm.stats();
  // Half of an H100's memory holds far more than what 16 sequences of 1024 tokens can use, so the
  // pool is capped at that (the CPU byte budget would have given a different count).
  const int blocks_per_seq = (1024 + st.kv_block_size - 1) / st.kv_block_size;
  EXPECT_EQ(st.num_kv_blocks, 16 * blocks_per_seq);
  EXPECT_EQ(st.max_model_len, 1024);
}

TEST(CudaEngine, NoRoomForTheKVCacheIsAClearError) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: CUDA engine test skipped";
  EngineConfig c = cuda_config();
  c.gpu_memory_utilization = 0.001f;  // far below what the weights alone take
  try {
    LLM llm(tiny_bf16_dir(), c);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("gpu_memory_utilization"), std::string::npos) << e.what();
  }
}

// 11 requests (a padded graph batch of 16, shrinking as they finish) of up to 600 tokens (KV
// buckets 256 and 512 and 1024): graphed and eager engines score the same forced tokens.
TEST(CudaEngine, GraphedDecodeScoresLikeEager) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: CUDA engine test skipped";
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (int r = 0; r < 11; ++r) {
    std::vector<int32_t> prompt(5 + 37 * r);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7 + r) % 250);
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.logprobs = true;
    p.max_tokens = 1000;
    for (int i = 0; i < 40 + 20 * r; ++i) p.forced_tokens.push_back((i * 13 + 3 * r) % 250);
    prompts.push_back(prompt);
    params.push_back(p);
  }
  EngineConfig eager_c = cuda_config();
  eager_c.enforce_eager = true;
  LLM eager(tiny_bf16_dir(), eager_c);
  const auto e = eager.generate(prompts, params, false);
  EXPECT_EQ(eager.stats().num_graph_replays, 0);
  // Graphs captured at start-up (the default: every step must find one, so none is captured
  // while serving) and on first use (graph_warmup off).
  for (const bool warmup : {true, false}) {
    EngineConfig c = cuda_config();
    c.graph_warmup = warmup;
    LLM graphed(tiny_bf16_dir(), c);
    const auto g = graphed.generate(prompts, params, false);
    const EngineStats st = graphed.stats();
    if (warmup) {
      EXPECT_GT(st.num_warmup_graphs, 2);
      EXPECT_EQ(st.num_graph_captures, 0);
    } else {
      EXPECT_EQ(st.num_warmup_graphs, 0);
      EXPECT_GT(st.num_graph_captures, 2);  // several batch sizes and KV buckets
    }
    EXPECT_GT(st.num_graph_replays, 200);
    double max_diff = 0;
    for (size_t r = 0; r < prompts.size(); ++r) {
      ASSERT_EQ(g[r].token_ids, params[r].forced_tokens) << g[r].error;
      ASSERT_EQ(g[r].logprobs.size(), e[r].logprobs.size());
      for (size_t i = 0; i < g[r].logprobs.size(); ++i) {
        max_diff =
            std::max(max_diff, static_cast<double>(std::fabs(g[r].logprobs[i] - e[r].logprobs[i])));
      }
    }
    std::printf(
        "graph vs eager (warm-up %d): %lld + %lld captures, %lld replays, max |logprob "
        "diff| %.4g\n",
        warmup, static_cast<long long>(st.num_warmup_graphs),
        static_cast<long long>(st.num_graph_captures), static_cast<long long>(st.num_graph_replays),
        max_diff);
    EXPECT_LT(max_diff, 0.05);  // bf16 activations; GEMM shapes differ with padding
  }
}

// Overlapped steps (the default) against steps in order on the device: sampled (greedy and
// seeded) tokens, graphed decode with placeholders read from the device's sampled tokens. Both
// runs batch the same rows every step (length limits only), so the tokens must be identical.
TEST(CudaEngine, OverlappedStepsGiveTheSameTokens) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: CUDA engine test skipped";
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (int r = 0; r < 13; ++r) {
    std::vector<int32_t> prompt(3 + 29 * r);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 11 + r) % 250);
    SamplingParams p;
    p.temperature = r % 2 ? 0.9f : 0.f;
    p.top_k = r % 3 == 1 ? 50 : 0;
    p.seed = 1000 + r;
    p.ignore_eos = true;
    p.logprobs = r % 4 == 0;
    p.max_tokens = 20 + 17 * r;
    prompts.push_back(prompt);
    params.push_back(p);
  }
  EngineConfig in_order_c = cuda_config();
  in_order_c.async_scheduling = false;
  LLM in_order(tiny_bf16_dir(), in_order_c);
  const auto ref = in_order.generate(prompts, params, false);
  LLM overlapped(tiny_bf16_dir(), cuda_config());
  const auto got = overlapped.generate(prompts, params, false);
  const EngineStats st = overlapped.stats();
  EXPECT_EQ(in_order.stats().num_overlapped_steps, 0);
  EXPECT_GT(st.num_overlapped_steps, st.num_steps / 2);
  EXPECT_GT(st.num_graph_replays, 100);
  for (size_t r = 0; r < prompts.size(); ++r) {
    EXPECT_EQ(got[r].token_ids, ref[r].token_ids) << "request " << r;
    EXPECT_EQ(got[r].logprobs, ref[r].logprobs) << "request " << r;
    EXPECT_EQ(got[r].finish_reason, FinishReason::kLength) << got[r].error;
  }
  std::printf("overlapped: %lld of %lld steps, %lld replays\n",
              static_cast<long long>(st.num_overlapped_steps),
              static_cast<long long>(st.num_steps), static_cast<long long>(st.num_graph_replays));
}

}  // namespace
}  // namespace hardkv
