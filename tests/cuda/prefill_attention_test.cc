// Prefill and mixed-step attention (more than one query row per sequence) on the CUDA backend
// against the CPU backend's attention: single prompts of 2-5000 tokens, chunked prefill over a
// cached prefix, ragged batches mixing prefill and decode rows, GQA groups 1-8, head dims 64/128
// (and 256 on the general kernel), block sizes 1 and 16, split-KV. NMSE-compared; inputs rounded
// to bf16 first so both backends see identical values; output NaN-poisoned. Skips without a device.
// DISABLED_Timing (run with --gtest_also_run_disabled_tests) times tensor-core vs general kernel.
#include "kernels/cuda/prefill_attention.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_backend.h"
#include "paged_attention_check.h"

namespace hardkv {
namespace {

// bf16 output rounding (~1e-6), P rounded to bf16 before P V (~1e-5), fp32 reassociation.
constexpr double kBf16Nmse = 1e-4;

struct Seq {
  int q_len, kv_len;  // the query rows are the last q_len of kv_len positions
};

struct PrefillCase {
  const char* name;
  int heads, kv_heads, dim, block_size;
  std::vector<Seq> seqs;
};

// n sequences: q_len uniform in [1, max_q] (decode rows where it draws 1), a cached prefix of
// [0, max_prefix] positions before them (fixed seed per case).
std::vector<Seq> ragged(int n, int max_q, int max_prefix, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> q(1, max_q), prefix(0, max_prefix);
  std::vector<Seq> seqs(n);
  for (Seq& s : seqs) {
    s.q_len = q(rng);
    s.kv_len = s.q_len + prefix(rng);
  }
  return seqs;
}

class PrefillAttentionTest : public ::testing::TestWithParam<PrefillCase> {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU prefill tests skipped";
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0);
  }
  std::mt19937 rng_{1234};
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_P(PrefillAttentionTest, MatchesCpu) {
  const PrefillCase& c = GetParam();
  test::AttentionStep step{c.heads, c.kv_heads, c.dim, c.block_size, {0}, {}, 0};
  for (const Seq& s : c.seqs) {
    step.query_indptr.push_back(step.query_indptr.back() + s.q_len);
    step.kv_lens.push_back(s.kv_len);
  }
  test::expect_attention_matches_cpu(*cpu_, *gpu_, rng_, step, kBf16Nmse);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PrefillAttentionTest,
    ::testing::Values(
        // Single prompts: below, at and past one 64-row / 64-position tile; one long one.
        PrefillCase{"g1_d64_bs16_prompt2", 4, 4, 64, 16, {{2, 2}}},
        PrefillCase{"g2_d128_bs16_prompt63", 4, 2, 128, 16, {{63, 63}}},
        PrefillCase{"g2_d128_bs1_prompt65", 4, 2, 128, 1, {{65, 65}}},
        PrefillCase{"g4_d64_bs16_prompt1000", 8, 2, 64, 16, {{1000, 1000}}},
        PrefillCase{"g2_d128_bs16_prompt5000", 2, 1, 128, 16, {{5000, 5000}}},
        PrefillCase{"g8_d128_bs16_prompt777", 8, 1, 128, 16, {{777, 777}}},
        // Chunked prefill: the queries are the last part of a longer cached context (split-KV
        // when the chunk alone does not fill the device).
        PrefillCase{"g2_d128_bs16_chunk", 16, 8, 128, 16, {{100, 3000}}},
        PrefillCase{"g1_d64_bs1_chunk", 4, 4, 64, 1, {{257, 4100}, {31, 31}}},
        PrefillCase{"g4_d128_bs1_chunk", 8, 2, 128, 1, {{64, 128}, {2, 1500}}},
        PrefillCase{"g8_d64_bs16_chunk", 16, 2, 64, 16, {{512, 4096}}},
        // Ragged batches mixing prefill and decode rows.
        PrefillCase{"g1_d128_bs16_ragged", 4, 4, 128, 16, ragged(40, 200, 300, 1)},
        PrefillCase{"g2_d64_bs16_ragged", 16, 8, 64, 16, ragged(64, 100, 1000, 2)},
        PrefillCase{"g4_d64_bs1_ragged", 8, 2, 64, 1, ragged(30, 300, 200, 3)},
        PrefillCase{"g8_d128_bs1_ragged", 16, 2, 128, 1, ragged(20, 150, 600, 4)},
        PrefillCase{"g2_d128_bs16_mixed", 16, 8, 128, 16, {{1, 900}, {300, 300}, {1, 1}, {2, 70}}},
        // A group that does not divide the 64-row tile.
        PrefillCase{"g3_d128_bs16_group3", 6, 2, 128, 16, {{150, 150}, {7, 90}}},
        // Head dims without a tensor-core kernel stay on the general kernel.
        PrefillCase{"g2_d256_bs16_fallback", 4, 2, 256, 16, {{200, 700}, {1, 5}}}),
    [](const ::testing::TestParamInfo<PrefillCase>& info) { return std::string(info.param.name); });

// Times one prompt of n tokens (the whole causal square) on the tensor-core kernel and on the
// general kernel (both without splits) and prints each beside the tensor-core floor: the causal
// QK^T and PV FLOPs, 4 n^2 Hq D / 2, at ~800 TFLOP/s dense bf16. Values are irrelevant.
TEST(PrefillAttentionTiming, DISABLED_Timing) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  struct Shape {
    int tokens, heads, kv_heads, dim;
  };
  for (const Shape sh : {Shape{512, 16, 8, 128}, Shape{4096, 16, 8, 128}, Shape{4096, 32, 8, 128},
                         Shape{4096, 8, 8, 64}}) {
    const int bs = 16, num_blocks = (sh.tokens + bs - 1) / bs;
    const size_t kv_elems = static_cast<size_t>(num_blocks) * bs * sh.kv_heads * sh.dim;
    const size_t q_elems = static_cast<size_t>(sh.tokens) * sh.heads * sh.dim;
    std::vector<int32_t> ints_h{0, sh.tokens, sh.tokens, 0, num_blocks};
    for (int i = 0; i < num_blocks; ++i) ints_h.push_back(num_blocks - 1 - i);
    void *q, *k, *v, *out, *ints;
    ASSERT_EQ(cudaMalloc(&q, q_elems * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&out, q_elems * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&k, kv_elems * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&v, kv_elems * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&ints, ints_h.size() * 4), cudaSuccess);
    cudaMemset(q, 0x3c, q_elems * 2);
    cudaMemset(k, 0x3c, kv_elems * 2);
    cudaMemset(v, 0x3c, kv_elems * 2);
    cudaMemcpy(ints, ints_h.data(), ints_h.size() * 4, cudaMemcpyHostToDevice);
    auto* ip = static_cast<int32_t*>(ints);
    cuda::PagedAttentionParams p;
    p.q = static_cast<const __nv_bfloat16*>(q);
    p.k_cache = static_cast<const __nv_bfloat16*>(k);
    p.v_cache = static_cast<const __nv_bfloat16*>(v);
    p.out = static_cast<__nv_bfloat16*>(out);
    p.query_indptr = ip;
    p.kv_lens = ip + 2;
    p.block_indptr = ip + 3;
    p.block_indices = ip + 5;
    p.num_seqs = 1;
    p.num_tokens = p.max_query_len = p.max_kv_len = sh.tokens;
    p.num_q_heads = sh.heads;
    p.num_kv_heads = sh.kv_heads;
    p.head_dim = sh.dim;
    p.block_size = bs;
    p.scale = 0.1f;
    p.num_splits = 1;
    p.kv_chunk =
        (sh.tokens + cuda::kAttentionKvTile - 1) / cuda::kAttentionKvTile * cuda::kAttentionKvTile;
    auto time_us = [&](bool tensor_cores) {
      auto launch = [&] {
        if (tensor_cores) {
          cuda::launch_prefill_attention(p, nullptr);
        } else if (sh.dim == 128) {
          cuda::launch_paged_attention_d128(p, nullptr);
        } else {
          cuda::launch_paged_attention_d64(p, nullptr);
        }
      };
      for (int i = 0; i < 2; ++i) launch();
      cudaEvent_t e0, e1;
      cudaEventCreate(&e0);
      cudaEventCreate(&e1);
      constexpr int kIters = 10;
      cudaEventRecord(e0);
      for (int i = 0; i < kIters; ++i) launch();
      cudaEventRecord(e1);
      EXPECT_EQ(cudaEventSynchronize(e1), cudaSuccess);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      return 1e3 * ms / kIters;
    };
    const double tc_us = time_us(true), general_us = time_us(false);
    const double flops = 2.0 * sh.tokens * sh.tokens * sh.heads * sh.dim;  // causal half of 4n^2
    const double floor_us = flops / 800e12 * 1e6;
    std::printf(
        "prefill attention %d tokens Hq %d Hkv %d D %d: tensor-core %.1f us (%.0f TFLOP/s), "
        "general %.1f us, floor %.1f us at 800 TFLOP/s\n",
        sh.tokens, sh.heads, sh.kv_heads, sh.dim, tc_us, flops / tc_us * 1e-6, general_us,
        floor_us);
    for (void* ptr : {q, k, v, out, ints}) cudaFree(ptr);
  }
}

}  // namespace
}  // namespace hardkv
