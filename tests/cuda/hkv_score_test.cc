// CUDA HARD-KV scoring (src/kernels/cuda/hkv_score.h) against a plain double-precision CPU loop
// over each head's logical candidate keys: a[j] = mean over (observation, GQA head) of the
// softmax over candidates of q . k_j * scale. Candidates come from shuffled head-pages (P in
// {1, 16}) and a dense block table; observation counts and candidate counts vary per sequence.
#include "kernels/cuda/hkv_score.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "device_array.h"
#include "kernels/backend.h"

#include "core/dtype.h"

namespace hardkv {
namespace {

using test::DeviceArray;

struct ScoreCase {
  int num_q_heads = 8, num_kv_heads = 2, head_dim = 128, page_size = 16, block_size = 16;
  std::vector<int> num_obs;                 // [num_seqs]
  std::vector<std::vector<int>> stored;     // [num_seqs][num_kv_heads] stored condensed tokens
  std::vector<std::vector<int>> cond_skip;  // [num_seqs][num_kv_heads] leading tokens skipped
  std::vector<int> dense_total, dense_cand_start, dense_cand_len;  // [num_seqs]
  float q_std = 2.f;
};

void check_scores(const ScoreCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto rnd = [&](float sd) { return f32_to_bf16(sd * normal(rng)); };
  const int S = static_cast<int>(c.num_obs.size()), Hq = c.num_q_heads, Hkv = c.num_kv_heads;
  const int D = c.head_dim, P = c.page_size, bs = c.block_size, group = Hq / Hkv;

  std::vector<int32_t> obs_indptr{0};
  for (int n : c.num_obs) obs_indptr.push_back(obs_indptr.back() + n);
  std::vector<uint16_t> q(static_cast<size_t>(obs_indptr.back()) * Hq * D);
  for (auto& x : q) x = rnd(c.q_std);

  // Head-pages.
  int num_pages = 2;
  for (const auto& hs : c.stored) {
    for (int n : hs) num_pages += (n + P - 1) / P;
  }
  std::vector<int32_t> page_ids(num_pages);
  std::iota(page_ids.begin(), page_ids.end(), 0);
  std::shuffle(page_ids.begin(), page_ids.end(), rng);
  std::vector<uint16_t> page_k(static_cast<size_t>(num_pages) * P * D);
  for (auto& x : page_k) x = rnd(1.f);
  std::vector<int32_t> page_indptr{0}, page_indices, cond_begin, cond_end;
  size_t next = 0;
  for (int s = 0; s < S; ++s) {
    for (int h = 0; h < Hkv; ++h) {
      const int n = c.stored[s][h];
      for (int pg = 0; pg < (n + P - 1) / P; ++pg) page_indices.push_back(page_ids[next++]);
      page_indptr.push_back(static_cast<int32_t>(page_indices.size()));
      cond_begin.push_back(c.cond_skip[s][h]);
      cond_end.push_back(n);
    }
  }
  // Dense blocks.
  std::vector<int32_t> dense_block_indptr{0}, dense_block_indices;
  int num_blocks = 1;
  for (int n : c.dense_total) num_blocks += (n + bs - 1) / bs;
  std::vector<int32_t> block_ids(num_blocks);
  std::iota(block_ids.begin(), block_ids.end(), 0);
  std::shuffle(block_ids.begin(), block_ids.end(), rng);
  std::vector<uint16_t> dense_k(static_cast<size_t>(num_blocks) * bs * Hkv * D);
  for (auto& x : dense_k) x = rnd(1.f);
  next = 0;
  for (int s = 0; s < S; ++s) {
    for (int b = 0; b < (c.dense_total[s] + bs - 1) / bs; ++b) {
      dense_block_indices.push_back(block_ids[next++]);
    }
    dense_block_indptr.push_back(static_cast<int32_t>(dense_block_indices.size()));
  }

  // Reference: each segment's candidate key pointers, then softmax rows in double.
  std::vector<int32_t> score_indptr{0};
  std::vector<double> want;
  int max_cands = 0, max_obs = 0;
  for (int s = 0; s < S; ++s) {
    max_obs = std::max(max_obs, c.num_obs[s]);
    for (int h = 0; h < Hkv; ++h) {
      const int g = s * Hkv + h;
      std::vector<const uint16_t*> keys;
      const int32_t* pages = page_indices.data() + page_indptr[g];
      for (int i = cond_begin[g]; i < cond_end[g]; ++i) {
        keys.push_back(&page_k[(static_cast<size_t>(pages[i / P]) * P + i % P) * D]);
      }
      const int32_t* table = dense_block_indices.data() + dense_block_indptr[s];
      for (int t = c.dense_cand_start[s]; t < c.dense_cand_start[s] + c.dense_cand_len[s]; ++t) {
        const size_t slot = static_cast<size_t>(table[t / bs]) * bs + t % bs;
        keys.push_back(&dense_k[(slot * Hkv + h) * D]);
      }
      const int n = static_cast<int>(keys.size());
      max_cands = std::max(max_cands, n);
      score_indptr.push_back(score_indptr.back() + n);
      std::vector<double> a(n, 0.0), z(n);
      const int rows = c.num_obs[s] * group;
      for (int o = 0; o < c.num_obs[s]; ++o) {
        for (int gi = 0; gi < group; ++gi) {
          const uint16_t* qr =
              &q[((static_cast<size_t>(obs_indptr[s]) + o) * Hq + h * group + gi) * D];
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j < n; ++j) {
            double dot = 0;
            for (int d = 0; d < D; ++d) dot += double(bf16_to_f32(qr[d])) * bf16_to_f32(keys[j][d]);
            z[j] = dot / std::sqrt(double(D));
            mx = std::max(mx, z[j]);
          }
          for (int j = 0; j < n; ++j) sum += (z[j] = std::exp(z[j] - mx));
          for (int j = 0; j < n; ++j) a[j] += z[j] / sum / rows;
        }
      }
      want.insert(want.end(), a.begin(), a.end());
    }
  }

  DeviceArray<uint16_t> dq(q), dpk(page_k), ddk(dense_k);
  DeviceArray<int32_t> doi(obs_indptr), dpi(page_indptr), dpx(page_indices), dcb(cond_begin),
      dce(cond_end), dbi(dense_block_indptr), dbx(dense_block_indices), dcs(c.dense_cand_start),
      dcl(c.dense_cand_len), dsi(score_indptr);
  DeviceArray<float> scores(std::vector<float>(want.size(), NAN));
  cuda::HkvScoreParams p;
  p.q_obs = reinterpret_cast<const __nv_bfloat16*>(dq.ptr);
  p.obs_indptr = doi.ptr;
  p.page_k = reinterpret_cast<const __nv_bfloat16*>(dpk.ptr);
  p.dense_k = reinterpret_cast<const __nv_bfloat16*>(ddk.ptr);
  p.page_indptr = dpi.ptr;
  p.page_indices = dpx.ptr;
  p.cond_begin = dcb.ptr;
  p.cond_end = dce.ptr;
  p.dense_block_indptr = dbi.ptr;
  p.dense_block_indices = dbx.ptr;
  p.dense_cand_start = dcs.ptr;
  p.dense_cand_len = dcl.ptr;
  p.score_indptr = dsi.ptr;
  p.scores = scores.ptr;
  p.num_seqs = S;
  p.num_q_heads = Hq;
  p.num_kv_heads = Hkv;
  p.head_dim = D;
  p.page_size = P;
  p.dense_block_size = bs;
  p.max_obs = max_obs;
  p.max_candidates = max_cands;
  p.scale = 1.f / std::sqrt(static_cast<float>(D));
  DeviceArray<float> ws(std::vector<float>(cuda::hkv_score_workspace(p), NAN));
  p.row_stats = ws.ptr;
  cuda::launch_hkv_score(p, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = scores.download();
  size_t bad = 0, worst_i = 0;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(want[i] - got[i]);
    if (!(e <= 1e-7 + 2e-3 * want[i])) ++bad;  // NaN (unwritten) counts as bad
    if (!(e <= worst)) worst = e, worst_i = i;
  }
  EXPECT_EQ(bad, 0u) << bad << " of " << want.size() << " scores off; worst |err| " << worst
                     << " at " << worst_i << " (want " << want[worst_i] << ", got " << got[worst_i]
                     << ")";
}

class HkvScoreCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU scoring tests skipped";
  }
};

ScoreCase mixed_case(int page_size) {
  ScoreCase c;
  c.page_size = page_size;
  c.num_obs = {128, 1, 37, 70};
  c.stored = {{1500, 700}, {40, 0}, {300, 2100}, {1, 65}};
  c.cond_skip = {{1, 1}, {1, 0}, {0, 1}, {1, 1}};
  c.dense_total = {300, 130, 64, 5};
  c.dense_cand_start = {3, 0, 10, 0};
  c.dense_cand_len = {128, 100, 0, 5};
  return c;
}

TEST_F(HkvScoreCuda, MatchesPlainLoopPage16) { check_scores(mixed_case(16), 1); }
TEST_F(HkvScoreCuda, MatchesPlainLoopPage1) { check_scores(mixed_case(1), 2); }

TEST_F(HkvScoreCuda, HeadDim64Group1) {
  ScoreCase c = mixed_case(16);
  c.head_dim = 64;
  c.num_q_heads = c.num_kv_heads = 2;
  check_scores(c, 3);
}

// hardkv-tiny's shape: head_dim 32, 8 query heads over 4 kv heads.
TEST_F(HkvScoreCuda, HeadDim32Group2) {
  for (int page_size : {1, 16}) {
    ScoreCase c = mixed_case(page_size);
    c.head_dim = 32;
    c.num_q_heads = 8;
    c.num_kv_heads = 4;
    c.stored = {{1500, 700, 3, 64}, {40, 0, 1, 2}, {300, 2100, 65, 0}, {1, 65, 129, 7}};
    c.cond_skip = {{1, 1, 0, 1}, {1, 0, 0, 1}, {0, 1, 1, 0}, {1, 1, 0, 0}};
    check_scores(c, 4 + page_size);
  }
}

}  // namespace
}  // namespace hardkv
