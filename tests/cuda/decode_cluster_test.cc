// Decode attention whose split blocks merge inside a thread-block cluster (small grids of 2-16
// splits, PagedAttentionParams::cluster_merge) against the CPU backend's attention: cluster sizes
// 7-16 (above 8: non-portable), empty splits (sequences shorter than the bound), several
// sequences and KV heads, GQA groups 1/2/4. Inputs rounded to bf16 first. Skips without a device.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/attention.h"
#include "paged_attention_check.h"

namespace hardkv {
namespace {

constexpr double kBf16Nmse = 1e-4;

struct ClusterCase {
  const char* name;
  int heads, kv_heads, dim, block_size;
  std::vector<int> kv_lens;  // one query token per sequence
  int kv_bound = 0;          // > 0: the GPU plans with this max_kv_len (graph bound)
};

class DecodeClusterTest : public ::testing::TestWithParam<ClusterCase> {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU cluster decode skipped";
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0);
  }
  std::mt19937 rng_{2468};
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_P(DecodeClusterTest, MatchesCpu) {
  const ClusterCase& c = GetParam();
  // The plan this case should get on a 132-SM H100 has 2-16 splits on <= 4 blocks per SM; the
  // comparison holds whichever way the step is planned.
  test::AttentionStep step{c.heads, c.kv_heads, c.dim, c.block_size, {}, c.kv_lens, c.kv_bound};
  step.query_indptr.resize(c.kv_lens.size() + 1);
  std::iota(step.query_indptr.begin(), step.query_indptr.end(), 0);
  test::expect_attention_matches_cpu(*cpu_, *gpu_, rng_, step, kBf16Nmse);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DecodeClusterTest,
    ::testing::Values(ClusterCase{"qwen06b_ctx512_8splits", 16, 8, 128, 16, {512}},
                      ClusterCase{"qwen06b_ctx700_11splits", 16, 8, 128, 16, {700}},
                      ClusterCase{"two_seqs_16splits_empty", 16, 8, 128, 16, {300, 1000}},
                      ClusterCase{"g4_d64_bs1_15splits", 8, 2, 64, 1, {65, 129, 900}},
                      ClusterCase{"g1_d256_7splits", 4, 4, 256, 16, {1, 400}},
                      ClusterCase{"graph_bound_10splits", 16, 8, 128, 16, {40}, 640},
                      ClusterCase{"graph_bound_batch4", 16, 8, 128, 16, {1, 64, 65, 600}, 640}),
    [](const ::testing::TestParamInfo<ClusterCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace hardkv
