// Test helper for the GPU paged-attention tests: random bf16-rounded inputs, shuffled block
// tables with spare blocks, the same step on the CPU reference backend and the CUDA backend, and
// the NMSE check over the whole output and per sequence (so one wrong short sequence in a long
// ragged batch cannot hide). The GPU output is NaN-poisoned so unwritten elements fail.
#pragma once

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

namespace hardkv::test {

// Host F32 tensor of N(0, stddev) values rounded to bf16 (both backends then see the same values).
inline Tensor random_bf16_values(std::mt19937& rng, Shape shape, float stddev = 1.f) {
  Tensor t = Tensor::empty(DType::kF32, std::move(shape));
  std::normal_distribution<float> dist(0.f, stddev);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = bf16_to_f32(f32_to_bf16(dist(rng)));
  return t;
}

inline Tensor int_tensor(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty(DType::kI32, {static_cast<int64_t>(v.size())});
  if (!v.empty()) std::memcpy(t.data(), v.data(), v.size() * 4);
  return t;
}

// Host F32 copy of a backend tensor.
inline Tensor download_f32(Backend& be, const Tensor& t) {
  Tensor h = be.download(t);
  if (h.dtype() == DType::kF32) return h;
  Tensor f = Tensor::empty(DType::kF32, h.shape());
  convert_to_f32(h.data(), h.dtype(), f.data_as<float>(), h.numel());
  return f;
}

struct AttentionStep {
  int heads, kv_heads, dim, block_size;
  std::vector<int32_t> query_indptr;  // [num_seqs + 1]
  std::vector<int32_t> kv_lens;       // [num_seqs]
  int gpu_kv_bound = 0;               // > 0: the GPU plans with this max_kv_len (graph bound)
};

// Runs one paged attention step on both backends and checks NMSE < tol overall and per sequence.
inline void expect_attention_matches_cpu(Backend& cpu, Backend& gpu, std::mt19937& rng,
                                         const AttentionStep& c, double tol) {
  const int num_seqs = static_cast<int>(c.kv_lens.size());
  std::vector<int32_t> bptr{0};
  int max_q = 0, max_kv = 0;
  for (int s = 0; s < num_seqs; ++s) {
    const int q_len = c.query_indptr[s + 1] - c.query_indptr[s];
    ASSERT_TRUE(q_len >= 1 && q_len <= c.kv_lens[s]);
    bptr.push_back(bptr.back() + (c.kv_lens[s] + c.block_size - 1) / c.block_size);
    max_q = std::max(max_q, q_len);
    max_kv = std::max(max_kv, c.kv_lens[s]);
  }
  const int num_tokens = c.query_indptr.back();
  // Blocks handed out in shuffled order, with spare blocks nobody owns.
  const int total_blocks = bptr.back(), pool_blocks = total_blocks + 3;
  std::vector<int32_t> bidx(pool_blocks);
  std::iota(bidx.begin(), bidx.end(), 0);
  std::shuffle(bidx.begin(), bidx.end(), rng);
  bidx.resize(total_blocks);

  Tensor q = random_bf16_values(rng, {num_tokens, c.heads, c.dim});
  Tensor kc = random_bf16_values(rng, {pool_blocks, c.block_size, c.kv_heads, c.dim});
  Tensor vc = random_bf16_values(rng, {pool_blocks, c.block_size, c.kv_heads, c.dim});
  auto meta_on = [&](Backend& be, int max_kv_len) {
    AttentionMeta m;
    m.query_indptr = be.upload(int_tensor(c.query_indptr), DType::kI32);
    m.kv_lens = be.upload(int_tensor(c.kv_lens), DType::kI32);
    m.block_indptr = be.upload(int_tensor(bptr), DType::kI32);
    m.block_indices = be.upload(int_tensor(bidx), DType::kI32);
    m.num_seqs = num_seqs;
    m.num_tokens = num_tokens;
    m.max_query_len = max_q;
    m.max_kv_len = max_kv_len;
    m.block_size = c.block_size;
    return m;
  };
  const float scale = 1.f / std::sqrt(static_cast<float>(c.dim));
  Tensor out_c = cpu.alloc(DType::kF32, {num_tokens, c.heads, c.dim});
  Tensor poison = Tensor::empty(DType::kF32, {num_tokens, c.heads, c.dim});
  std::fill_n(poison.data_as<float>(), poison.numel(), std::nanf(""));
  Tensor out_g = gpu.upload(poison, DType::kBF16);
  cpu.attention(cpu.upload(q, DType::kF32), cpu.upload(kc, DType::kF32),
                cpu.upload(vc, DType::kF32), meta_on(cpu, max_kv), scale, out_c);
  gpu.attention(gpu.upload(q, DType::kBF16), gpu.upload(kc, DType::kBF16),
                gpu.upload(vc, DType::kBF16), meta_on(gpu, std::max(max_kv, c.gpu_kv_bound)),
                scale, out_g);

  Tensor a = download_f32(cpu, out_c), b = download_f32(gpu, out_g);
  ASSERT_EQ(a.numel(), b.numel());
  const int64_t row = static_cast<int64_t>(c.heads) * c.dim;
  double err = 0, norm = 0, worst_seq_nmse = 0;
  int worst_seq = -1;
  int64_t nonfinite = 0;
  for (int s = 0; s < num_seqs; ++s) {
    double se = 0, sn = 0;
    for (int64_t i = c.query_indptr[s] * row; i < c.query_indptr[s + 1] * row; ++i) {
      const double x = a.data_as<float>()[i], y = b.data_as<float>()[i];
      if (!std::isfinite(y)) ++nonfinite;
      se += (x - y) * (x - y);
      sn += x * x;
    }
    err += se;
    norm += sn;
    const double nmse = se / std::max(sn, 1e-30);
    if (!(nmse <= worst_seq_nmse)) worst_seq_nmse = nmse, worst_seq = s;
  }
  EXPECT_EQ(nonfinite, 0) << "non-finite outputs (unwritten or overflow)";
  EXPECT_LT(err / std::max(norm, 1e-30), tol) << "NMSE over " << a.numel() << " elements";
  EXPECT_LT(worst_seq_nmse, tol) << "worst sequence " << worst_seq;
  gpu.release_scratch();
}

}  // namespace hardkv::test
