// HARD-KV decode steps as CUDA graphs: the same requests run with graphs and with
// --enforce-eager on the device score the forced text alike (the graph plans tiered attention for
// its KV bucket, so only the split merge order differs), run the same compression events and free
// everything; batches shrink as requests finish, so steps replay graphs with many padding rows.
// Without eviction a graphed hard run scores like graphed dense mode.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "hard_kv_requests.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

const std::string& checkpoint() {
  static const std::string dir = test::random_tiny_checkpoint("graph_hard", 11, 64);
  return dir;
}

EngineConfig graph_config(const std::string& mode, int budget, bool eager) {
  EngineConfig c = test::small_engine_config("cuda", mode);
  c.enforce_eager = eager;
  c.max_num_seqs = 16;
  c.num_kv_blocks = 768;
  c.compression.strategy = "snapkv";
  c.compression.allocation = "hard";
  c.compression.budget = budget;
  c.compression.upper_budget = 2 * budget;
  c.compression.sinks = 4;
  return c;
}

// 11 requests: prompts of 20-420 tokens, 240 down to 40 forced output tokens (so the batch shrinks
// from 11 through every padded graph size).
struct Requests {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
};
Requests make_requests() {
  Requests q;
  test::make_forced_requests(11, {20, 40, 13, 3}, {240, -20, 5, 7}, q.prompts, q.params);
  return q;
}

TEST(CudaHardKVGraphs, GraphStepsScoreLikeEagerSteps) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: HARD-KV graph test skipped";
  const Requests q = make_requests();
  LLM eager(checkpoint(), graph_config("hard", 64, true));
  const auto e = eager.generate(q.prompts, q.params, false);
  LLM graphed(checkpoint(), graph_config("hard", 64, false));
  const auto g = graphed.generate(q.prompts, q.params, false);
  for (size_t r = 0; r < g.size(); ++r) {
    ASSERT_EQ(g[r].token_ids, q.params[r].forced_tokens) << g[r].error;
  }
  const EngineStats se = eager.stats(), sg = graphed.stats();
  double mean = 0;
  const double mx = test::max_logprob_diff(e, g, &mean);
  std::printf(
      "hard, budget 64: graphs vs eager max |logprob diff| %.4g, mean %.4g; events %lld vs %lld; "
      "graph captures %lld, replays %lld\n",
      mx, mean, static_cast<long long>(sg.kv_compression_events),
      static_cast<long long>(se.kv_compression_events),
      static_cast<long long>(sg.num_graph_captures), static_cast<long long>(sg.num_graph_replays));
  EXPECT_EQ(se.num_graph_replays + se.num_graph_captures, 0);
  // Batches of 11 down to 1 sequence: graphs of 16 rows (11-8 sequences, padded) and 4 rows (4-1)
  // at least; smaller batches replay the larger graph (ModelRunner's graph reuse).
  EXPECT_GE(sg.num_graph_captures, 2);
  EXPECT_GT(sg.num_graph_replays, 10 * sg.num_graph_captures);
  EXPECT_EQ(sg.kv_compression_events, se.kv_compression_events);  // due by length alone
  EXPECT_GT(sg.kv_compression_events, 20);
  // bf16 outputs of differently split attention round differently, and near-tied scores may then
  // keep different tokens; the text's scores must stay close.
  EXPECT_LT(mean, 0.02);
  EXPECT_EQ(sg.kv_dense_bytes_now + sg.kv_condensed_bytes_now, 0);  // everything freed
}

TEST(CudaHardKVGraphs, NoEvictionGraphsScoreLikeDenseGraphs) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: HARD-KV graph test skipped";
  const Requests q = make_requests();
  LLM dense(checkpoint(), graph_config("dense", 0, false));
  const auto d = dense.generate(q.prompts, q.params, false);
  LLM hard(checkpoint(), graph_config("hard", 1000, false));  // above every context
  const auto h = hard.generate(q.prompts, q.params, false);
  double mean = 0;
  const double mx = test::max_logprob_diff(d, h, &mean);
  const EngineStats sh = hard.stats();
  std::printf("no eviction, graphs: hard vs dense max |logprob diff| %.4g, mean %.4g; replays %lld\n",
              mx, mean, static_cast<long long>(sh.num_graph_replays));
  EXPECT_EQ(sh.kv_compression_events, 0);
  EXPECT_GT(sh.num_graph_replays, 100);
  EXPECT_LT(mx, 0.05);  // bf16: tiered vs paged attention kernels round differently
}

}  // namespace
}  // namespace hardkv
