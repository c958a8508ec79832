// CUDA HARD-KV rewrite (src/kernels/cuda/hkv_rewrite.h) against a plain out-of-place CPU copy:
// each head's kept tokens compacted to the front of its (randomly numbered) head-pages, every
// other slot of the pool untouched. Random masks, P in {1, 16}, head_dim 32, 64 and 128.
#include "kernels/cuda/hkv_rewrite.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "device_array.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

using test::DeviceArray;

// Runs one rewrite of segments with the given stored lengths and mask probabilities.
void check_rewrite(int page_size, int head_dim, const std::vector<int>& lens,
                   const std::vector<double>& mask_probs, bool keep_identity_moves, uint32_t seed) {
  std::mt19937 rng(seed);
  const int P = page_size, D = head_dim, S = static_cast<int>(lens.size());
  int num_pages = 5;
  for (int n : lens) num_pages += (n + P - 1) / P;
  std::vector<int32_t> ids(num_pages);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::uniform_int_distribution<int> bits(0, 0xffff);
  std::vector<uint16_t> k(static_cast<size_t>(num_pages) * P * D), v(k.size());
  for (auto& x : k) x = static_cast<uint16_t>(bits(rng));
  for (auto& x : v) x = static_cast<uint16_t>(bits(rng));

  std::vector<int32_t> page_indptr{0}, page_indices, move_indptr{0}, move_src, move_dst;
  std::vector<uint16_t> want_k = k, want_v = v;
  size_t next = 0;
  int total_kept = 0;
  for (int s = 0; s < S; ++s) {
    const int n = lens[s];
    for (int pg = 0; pg < (n + P - 1) / P; ++pg) page_indices.push_back(ids[next++]);
    const int32_t* pages = page_indices.data() + page_indptr.back();
    auto offset = [&](int i) { return (static_cast<size_t>(pages[i / P]) * P + i % P) * D; };
    std::bernoulli_distribution masked(mask_probs[s]);
    int kept = 0;
    for (int i = 0; i < n; ++i) {
      if (masked(rng)) continue;
      if (i != kept || keep_identity_moves) {
        move_src.push_back(i);
        move_dst.push_back(kept);
      }
      std::copy_n(&k[offset(i)], D, &want_k[offset(kept)]);  // from the original: out of place
      std::copy_n(&v[offset(i)], D, &want_v[offset(kept)]);
      ++kept;
    }
    total_kept += kept;
    page_indptr.push_back(static_cast<int32_t>(page_indices.size()));
    move_indptr.push_back(static_cast<int32_t>(move_src.size()));
  }
  ASSERT_GT(total_kept, 0);
  ASSERT_NE(want_k, k) << "the scenario moves nothing";

  DeviceArray<uint16_t> dk(k), dv(v);
  DeviceArray<int32_t> pi(page_indptr), px(page_indices), mi(move_indptr), ms(move_src),
      md(move_dst);
  cuda::HkvRewriteParams p;
  p.page_k = reinterpret_cast<__nv_bfloat16*>(dk.ptr);
  p.page_v = reinterpret_cast<__nv_bfloat16*>(dv.ptr);
  p.page_indptr = pi.ptr;
  p.page_indices = px.ptr;
  p.move_indptr = mi.ptr;
  p.move_src = ms.ptr;
  p.move_dst = md.ptr;
  p.num_segments = S;
  p.page_size = P;
  p.head_dim = D;
  cuda::launch_hkv_rewrite(p, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> got_k = dk.download(), got_v = dv.download();
  size_t bad = 0;
  for (size_t i = 0; i < k.size(); ++i) bad += (got_k[i] != want_k[i]) + (got_v[i] != want_v[i]);
  EXPECT_EQ(bad, 0u) << "P=" << P << " D=" << D << ": " << bad << " of " << 2 * k.size()
                     << " pool elements differ from the CPU compaction";
}

class HkvRewriteCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU rewrite tests skipped";
  }
};

TEST_F(HkvRewriteCuda, CompactsPage16) {
  check_rewrite(16, 128, {2000, 17, 0, 300, 1500, 64, 1}, {0.5, 0.3, 0.5, 1.0, 0.05, 0.0, 0.0},
                false, 1);
}

TEST_F(HkvRewriteCuda, CompactsPage1) {
  check_rewrite(1, 128, {700, 33, 1200, 5}, {0.5, 0.9, 0.2, 0.4}, false, 2);
}

TEST_F(HkvRewriteCuda, IdentityMovesAndHeadDim64) {
  check_rewrite(16, 64, {1000, 129, 2047}, {0.5, 0.5, 0.7}, true, 3);
}

TEST_F(HkvRewriteCuda, HeadDim32BothPageSizes) {
  check_rewrite(16, 32, {900, 33, 0, 2047, 16}, {0.5, 0.2, 0.5, 0.8, 1.0}, false, 4);
  check_rewrite(1, 32, {300, 1, 64}, {0.4, 0.0, 0.9}, false, 5);
}

}  // namespace
}  // namespace hardkv
