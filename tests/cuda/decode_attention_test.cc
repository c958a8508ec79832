// Decode attention (one query token per sequence) on the CUDA backend against the CPU backend's
// attention: GQA groups 1-8, head dims 64/128/256, block sizes 16 and 1, ragged batches, split-KV,
// and a host-side KV bound far above the lengths (what a CUDA graph plans with). NMSE-compared;
// inputs are rounded to bf16 first so both backends see identical values. Skips without a device.
// DISABLED_Timing (run with --gtest_also_run_disabled_tests) times decode vs general kernel.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

constexpr double kBf16Nmse = 1e-4;  // bf16 output rounding (~1e-6) plus fp32 reassociation

struct DecodeCase {
  const char* name;
  int heads, kv_heads, dim, block_size;
  std::vector<int> kv_lens;  // one query token per sequence
  int kv_bound = 0;          // > 0: the GPU plans with this max_kv_len (graph bound)
};

// n sequences with lengths uniform in [lo, hi] (fixed seed per case).
std::vector<int> ragged(int n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> lens(n);
  for (int& len : lens) len = dist(rng);
  return lens;
}

class DecodeAttentionTest : public ::testing::TestWithParam<DecodeCase> {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU decode tests skipped";
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0);
  }
  std::mt19937 rng_{4321};
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_P(DecodeAttentionTest, MatchesCpu) {
  const DecodeCase& c = GetParam();
  test::AttentionStep step{c.heads, c.kv_heads, c.dim, c.block_size, {}, c.kv_lens, c.kv_bound};
  step.query_indptr.resize(c.kv_lens.size() + 1);
  std::iota(step.query_indptr.begin(), step.query_indptr.end(), 0);  // one query per sequence
  test::expect_attention_matches_cpu(*cpu_, *gpu_, rng_, step, kBf16Nmse);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DecodeAttentionTest,
    ::testing::Values(
        // Each GQA group with each head dim; block sizes 16 and 1; ragged batches.
        DecodeCase{"g1_d64_bs16_ragged300", 8, 8, 64, 16, ragged(300, 1, 300, 1)},
        DecodeCase{"g1_d128_bs1_single", 4, 4, 128, 1, {1}},
        DecodeCase{"g1_d256_bs1_ragged100", 4, 4, 256, 1, ragged(100, 1, 200, 2)},
        DecodeCase{"g2_d64_bs16_long", 4, 2, 64, 16, {5000, 1, 2, 4097}},
        DecodeCase{"g2_d128_bs16_qwen06b", 16, 8, 128, 16, ragged(64, 480, 512, 3)},
        DecodeCase{"g2_d128_bs16_split", 16, 8, 128, 16, {1, 7, 512, 5000}},
        DecodeCase{"g2_d256_bs1_ragged", 4, 2, 256, 1, ragged(30, 1, 700, 4)},
        DecodeCase{"g4_d64_bs1_ragged", 8, 2, 64, 1, ragged(50, 1, 1000, 5)},
        DecodeCase{"g4_d128_bs16_qwen8b", 32, 8, 128, 16, ragged(8, 1, 4096, 6)},
        DecodeCase{"g4_d256_bs16_split", 8, 2, 256, 16, {3000, 65}},
        DecodeCase{"g8_d64_bs1_long", 8, 1, 64, 1, {5000}},
        DecodeCase{"g8_d128_bs16_ragged", 64, 8, 128, 16, ragged(20, 1, 5000, 7)},
        DecodeCase{"g8_d256_bs16_mixed", 16, 2, 256, 16, {3000, 1, 64, 65}},
        // Graph case: planned for a bound far above every length (most splits empty).
        DecodeCase{"g2_d64_bs16_graph", 4, 2, 64, 16, {1, 30, 200}, 8192},
        DecodeCase{"g4_d256_bs16_graph", 8, 2, 256, 16, ragged(5, 1, 100, 8), 16384},
        DecodeCase{"g2_d128_bs16_graph_batch", 16, 8, 128, 16, ragged(200, 1, 64, 9), 4096},
        DecodeCase{"g1_d128_bs1_graph", 2, 2, 128, 1, {1, 2, 3}, 5000},
        // Groups the decode kernel does not cover fall back to the general kernel (group 8 too,
        // above: it is faster there).
        DecodeCase{"g3_d128_fallback", 6, 2, 128, 16, {1, 100, 1000}},
        DecodeCase{"g16_d64_fallback", 16, 1, 64, 16, {33, 2000}}),
    [](const ::testing::TestParamInfo<DecodeCase>& info) { return std::string(info.param.name); });

// Times launch_paged_attention on uniform decode batches with the decode kernel (max_query_len 1)
// and with the general kernel (max_query_len 2: same plan and grid, rows past q_len idle), and
// prints each beside the K/V-bytes floor at 3,000 GB/s. Values are irrelevant to the timing.
TEST(DecodeAttentionTiming, DISABLED_Timing) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  struct Shape {
    int seqs, kv_len, heads, kv_heads, dim, bound;
    bool ragged = false;  // lengths spread over [kv_len / 8, kv_len] (an engine step's mix)
  };
  int num_sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  for (const Shape sh : {Shape{256, 512, 16, 8, 128, 0}, Shape{256, 1100, 16, 8, 128, 2048, true},
                         Shape{64, 1800, 16, 8, 128, 2048, true}, Shape{1, 4096, 16, 8, 128, 0},
                         Shape{1, 512, 16, 8, 128, 4096}, Shape{32, 4096, 32, 8, 128, 0},
                         Shape{64, 2048, 16, 8, 128, 0}, Shape{128, 1024, 64, 8, 128, 0},
                         Shape{64, 1024, 8, 4, 256, 0}}) {
    const int bs = 16, blocks_per_seq = (sh.kv_len + bs - 1) / bs;
    const int64_t num_blocks = static_cast<int64_t>(sh.seqs) * blocks_per_seq;
    const size_t kv_elems = static_cast<size_t>(num_blocks) * bs * sh.kv_heads * sh.dim;
    std::vector<int32_t> qptr(sh.seqs + 1), lens(sh.seqs, sh.kv_len), bptr(sh.seqs + 1),
        bidx(num_blocks);
    std::iota(qptr.begin(), qptr.end(), 0);
    int64_t kv_tokens = 0;
    for (int i = 0; i < sh.seqs; ++i) {
      if (sh.ragged) lens[i] = sh.kv_len / 8 + (i * 7919) % (sh.kv_len - sh.kv_len / 8 + 1);
      kv_tokens += lens[i];
    }
    for (int i = 0; i <= sh.seqs; ++i) bptr[i] = i * blocks_per_seq;
    std::iota(bidx.begin(), bidx.end(), 0);
    std::shuffle(bidx.begin(), bidx.end(), std::mt19937(7));
    void *q, *k, *v, *out, *ws, *ints;
    const size_t q_bytes = static_cast<size_t>(sh.seqs) * sh.heads * sh.dim * 2;
    const size_t ws_bytes = 132 * (q_bytes / 2) * sizeof(float);
    ASSERT_EQ(cudaMalloc(&q, q_bytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&out, q_bytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&k, kv_elems * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&v, kv_elems * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&ws, ws_bytes), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&ints, (3 * (sh.seqs + 1) + num_blocks) * 4), cudaSuccess);
    cudaMemset(q, 0x3c, q_bytes);
    cudaMemset(k, 0x3c, kv_elems * 2);
    cudaMemset(v, 0x3c, kv_elems * 2);
    auto* ip = static_cast<int32_t*>(ints);
    cudaMemcpy(ip, qptr.data(), qptr.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(ip + sh.seqs + 1, lens.data(), lens.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(ip + 2 * (sh.seqs + 1), bptr.data(), bptr.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(ip + 3 * (sh.seqs + 1), bidx.data(), bidx.size() * 4, cudaMemcpyHostToDevice);
    cuda::PagedAttentionParams p;
    p.q = static_cast<const __nv_bfloat16*>(q);
    p.k_cache = static_cast<const __nv_bfloat16*>(k);
    p.v_cache = static_cast<const __nv_bfloat16*>(v);
    p.out = static_cast<__nv_bfloat16*>(out);
    p.query_indptr = ip;
    p.kv_lens = ip + sh.seqs + 1;
    p.block_indptr = ip + 2 * (sh.seqs + 1);
    p.block_indices = ip + 3 * (sh.seqs + 1);
    p.num_seqs = p.num_tokens = sh.seqs;
    p.num_q_heads = sh.heads;
    p.num_kv_heads = sh.kv_heads;
    p.head_dim = sh.dim;
    p.block_size = bs;
    p.max_kv_len = std::max(sh.kv_len, sh.bound);
    p.scale = 0.1f;
    p.partial_o = static_cast<float*>(ws);
    // The decode kernel's occupancy4 variant (PagedAttentionParams); -1: as planned.
    int occupancy4 = -1;
    // Plans with max_query_len q_len (or forced_splits > 0), returns microseconds per call.
    auto time_us = [&](int q_len, int forced_splits) {
      p.max_query_len = q_len;
      cuda::plan_paged_attention(p, num_sms);
      if (occupancy4 >= 0) p.occupancy4 = occupancy4 == 1;
      if (forced_splits > 0) {
        const int tiles = (p.max_kv_len + cuda::kAttentionKvTile - 1) / cuda::kAttentionKvTile;
        const int per_split = (tiles + forced_splits - 1) / forced_splits;
        p.num_splits = (tiles + per_split - 1) / per_split;
        p.kv_chunk = per_split * cuda::kAttentionKvTile;
      }
      p.partial_ml = p.partial_o + static_cast<size_t>(p.num_splits) * sh.seqs * sh.heads * sh.dim;
      for (int i = 0; i < 3; ++i) cuda::launch_paged_attention(p, nullptr);
      cudaEvent_t e0, e1;
      cudaEventCreate(&e0);
      cudaEventCreate(&e1);
      constexpr int kIters = 20;
      cudaEventRecord(e0);
      for (int i = 0; i < kIters; ++i) cuda::launch_paged_attention(p, nullptr);
      cudaEventRecord(e1);
      EXPECT_EQ(cudaEventSynchronize(e1), cudaSuccess);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      return 1e3 * ms / kIters;
    };
    const double general_us = time_us(2, 0);
    const int general_splits = p.num_splits;
    const double decode_us = time_us(1, 0);
    const int decode_splits = p.num_splits;
    const double floor_us = 2.0 * kv_tokens * sh.kv_heads * sh.dim * 2 / 3000e9 * 1e6;
    std::printf(
        "decode attention seqs %d kv %d%s (bound %d) Hq %d Hkv %d D %d: decode kernel %.1f us "
        "(%d splits), general kernel %.1f us (%d splits), floor %.1f us (%.0f%% of it); decode "
        "kernel at forced splits",
        sh.seqs, sh.kv_len, sh.ragged ? " ragged" : "", sh.bound, sh.heads, sh.kv_heads, sh.dim,
        decode_us, decode_splits, general_us, general_splits, floor_us, 100 * floor_us / decode_us);
    for (int forced : {1, 2, 3, 4, 8, 16, 64}) {
      const double t = time_us(1, forced);
      std::printf(" %d: %.1f", p.num_splits, t);
    }
    std::printf(" us\n");
    std::printf("  decode kernel variants:");
    for (const int occ : {0, 1}) {
      occupancy4 = occ;
      const double t = time_us(1, 0);
      std::printf(" occupancy4=%d %.1f (%.0f%%)", occ, t, 100 * floor_us / t);
    }
    occupancy4 = -1;
    std::printf(" us\n");
    for (void* ptr : {q, k, v, out, ws, ints}) cudaFree(ptr);
  }
}

}  // namespace
}  // namespace hardkv
