// Backend::qkv_prepare_attention on the CUDA backend (decode steps: q/k norm, RoPE and the K/V
// store done inside the decode attention kernel, splits merged in-kernel) against (a) the CPU
// reference backend's qkv_prepare + attention, NMSE-compared, and (b) the CUDA backend's own two
// separate ops, which must give the same output and caches to fp32 noise. GQA groups 1/2/4, head
// dims 64/128/256, block sizes 16 and 1, with and without norms, split-KV, a graph-sized KV bound
// (most splits empty) and a 256-sequence batch. Cases run back to back on one backend, so the
// split counters must be left at 0. Skips without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "paged_attention_check.h"

namespace hardkv {
namespace {

// q and k are rounded to bf16 after norm and RoPE on the GPU and stay F32 on the CPU reference;
// the attention output inherits that (~1e-5 NMSE), plus bf16 output rounding.
constexpr double kVsCpuNmse = 5e-4;
// The fused kernel and the two separate GPU ops round identically: only fp32 noise may differ.
constexpr double kVsSeparateNmse = 1e-10;

struct FusedCase {
  const char* name;
  int heads, kv_heads, dim, block_size;
  bool norms;
  std::vector<int> kv_lens;  // one query token per sequence (its last KV position)
  int kv_bound = 0;          // > 0: the GPU plans with this max_kv_len (graph bound)
};

std::vector<int> ragged(int n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> lens(n);
  for (int& len : lens) len = dist(rng);
  return lens;
}

Tensor rope_table(int64_t max_pos, int64_t dim, double theta) {
  Tensor t = Tensor::empty(DType::kF32, {max_pos, dim});
  for (int64_t p = 0; p < max_pos; ++p) {
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double f = std::pow(theta, -2.0 * i / dim);
      t.data_as<float>()[p * dim + i] = static_cast<float>(std::cos(p * f));
      t.data_as<float>()[p * dim + dim / 2 + i] = static_cast<float>(std::sin(p * f));
    }
  }
  return t;
}

// NMSE of b against a (host F32 tensors), and the count of non-finite values in b.
std::pair<double, int64_t> nmse(const Tensor& a, const Tensor& b) {
  double err = 0, norm = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data_as<float>()[i], y = b.data_as<float>()[i];
    if (!std::isfinite(y)) ++bad;
    err += (x - y) * (x - y);
    norm += x * x;
  }
  return {err / std::max(norm, 1e-30), bad};
}

class QkvPrepareAttentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU fused attention skipped";
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0);
  }

  void run(const FusedCase& c) {
    SCOPED_TRACE(c.name);
    const int num_seqs = static_cast<int>(c.kv_lens.size());
    const int d = c.dim, hq = c.heads, hkv = c.kv_heads, bs = c.block_size;
    std::vector<int32_t> qptr(num_seqs + 1), bptr{0};
    std::iota(qptr.begin(), qptr.end(), 0);
    int max_kv = 0;
    for (int len : c.kv_lens) {
      bptr.push_back(bptr.back() + (len + bs - 1) / bs);
      max_kv = std::max(max_kv, len);
    }
    const int total_blocks = bptr.back(), pool_blocks = total_blocks + 3;
    std::vector<int32_t> bidx(pool_blocks);
    std::iota(bidx.begin(), bidx.end(), 0);
    std::shuffle(bidx.begin(), bidx.end(), rng_);
    bidx.resize(total_blocks);
    // Each query token sits at its sequence's last position, in that position's slot.
    std::vector<int32_t> positions(num_seqs), slots(num_seqs);
    for (int s = 0; s < num_seqs; ++s) {
      const int pos = c.kv_lens[s] - 1;
      positions[s] = pos;
      slots[s] = bidx[bptr[s] + pos / bs] * bs + pos % bs;
    }
    const int64_t max_pos = max_kv + 1;
    Tensor table = rope_table(max_pos, d, 1e6);
    Tensor qkv = test::random_bf16_values(rng_, {num_seqs, (hq + 2 * hkv) * d}, 2.f);
    Tensor qw = test::random_bf16_values(rng_, {d}), kw = test::random_bf16_values(rng_, {d});
    Tensor kc = test::random_bf16_values(rng_, {pool_blocks, bs, hkv, d});
    Tensor vc = test::random_bf16_values(rng_, {pool_blocks, bs, hkv, d});
    Tensor poison = Tensor::empty(DType::kF32, {num_seqs, hq, d});
    std::fill_n(poison.data_as<float>(), poison.numel(), std::nanf(""));
    const float scale = 1.f / std::sqrt(static_cast<float>(d));

    struct Out {
      Tensor out, k, v;
    };
    // fused: qkv_prepare_attention; else the two separate ops.
    auto step = [&](Backend& be, DType act, int kv_bound, bool fused) {
      AttentionMeta m;
      m.query_indptr = be.upload(test::int_tensor(qptr), DType::kI32);
      m.kv_lens = be.upload(test::int_tensor(std::vector<int32_t>(c.kv_lens.begin(),
                                                                  c.kv_lens.end())),
                            DType::kI32);
      m.block_indptr = be.upload(test::int_tensor(bptr), DType::kI32);
      m.block_indices = be.upload(test::int_tensor(bidx), DType::kI32);
      m.num_seqs = num_seqs;
      m.num_tokens = num_seqs;
      m.max_query_len = 1;
      m.max_kv_len = std::max(max_kv, kv_bound);
      m.block_size = bs;
      Tensor k = be.upload(kc, act), v = be.upload(vc, act);
      Tensor qn = be.upload(qw, act), kn = be.upload(kw, act);
      Tensor q = be.upload(poison, act), out = be.upload(poison, act);
      Tensor pos = be.upload(test::int_tensor(positions), DType::kI32);
      Tensor sl = be.upload(test::int_tensor(slots), DType::kI32);
      Tensor cs = be.upload(table, DType::kF32);
      Tensor x = be.upload(qkv, act);
      const Tensor* qnp = c.norms ? &qn : nullptr;
      const Tensor* knp = c.norms ? &kn : nullptr;
      if (fused) {
        be.qkv_prepare_attention(x, qnp, knp, 1e-6f, pos, cs, sl, q, k, v, m, scale, out);
      } else {
        be.qkv_prepare(x, qnp, knp, 1e-6f, pos, cs, sl, q, k, v);
        be.attention(q, k, v, m, scale, out);
      }
      Out o{test::download_f32(be, out), test::download_f32(be, k), test::download_f32(be, v)};
      be.release_scratch();
      return o;
    };
    const Out ref = step(*cpu_, DType::kF32, 0, true);
    const Out sep = step(*gpu_, DType::kBF16, c.kv_bound, false);
    const Out got = step(*gpu_, DType::kBF16, c.kv_bound, true);

    auto [e_out, bad_out] = nmse(ref.out, got.out);
    EXPECT_EQ(bad_out, 0) << "non-finite outputs (unwritten or overflow)";
    EXPECT_LT(e_out, kVsCpuNmse) << "output vs CPU reference";
    EXPECT_LT(nmse(ref.k, got.k).first, 1e-4) << "K cache vs CPU reference";
    EXPECT_LT(nmse(ref.v, got.v).first, 1e-12) << "V cache vs CPU reference";
    EXPECT_LT(nmse(sep.out, got.out).first, kVsSeparateNmse) << "output vs separate GPU ops";
    EXPECT_LT(nmse(sep.k, got.k).first, 1e-12) << "K cache vs separate GPU ops";
    // Per sequence, so one wrong sequence in a long batch cannot hide in the total.
    const int64_t row = static_cast<int64_t>(hq) * d;
    for (int s = 0; s < num_seqs; ++s) {
      double se = 0, sn = 0;
      for (int64_t i = s * row; i < (s + 1) * row; ++i) {
        const double x = ref.out.data_as<float>()[i], y = got.out.data_as<float>()[i];
        se += (x - y) * (x - y);
        sn += x * x;
      }
      EXPECT_LT(se / std::max(sn, 1e-30), kVsCpuNmse) << "sequence " << s;
    }
  }

  std::mt19937 rng_{777};
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_F(QkvPrepareAttentionTest, MatchesCpuAndSeparateOps) {
  const FusedCase cases[] = {
      {"qwen06b_batch1_ctx513", 16, 8, 128, 16, true, {513}},
      {"qwen06b_ragged", 16, 8, 128, 16, true, ragged(4, 100, 700, 1)},
      {"qwen8b_long", 32, 8, 128, 16, true, {4100, 17}},
      {"g1_d64_bs1_nonorm", 4, 4, 64, 1, false, ragged(50, 1, 300, 2)},
      {"g4_d256_split", 8, 2, 256, 16, true, {3000, 65}},
      {"g2_d64_graph_bound", 4, 2, 64, 16, true, {1, 30, 200}, 8192},
      {"g2_d128_graph_batch", 16, 8, 128, 16, true, ragged(40, 1, 64, 3), 4096},
      {"g2_d128_batch256", 16, 8, 128, 16, true, ragged(256, 1, 600, 4)},
      {"qwen06b_batch1_again", 16, 8, 128, 16, true, {1000}},
  };
  for (const FusedCase& c : cases) run(c);
}

}  // namespace
}  // namespace hardkv
