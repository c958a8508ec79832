// Backend parity (like llama.cpp's test-backend-ops): every op on the CUDA backend against the
// CPU reference backend on random inputs, compared by normalised mean squared error. Inputs are
// rounded to bf16 first so both backends see identical values. Skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "paged_attention_check.h"

namespace hardkv {
namespace {

// bf16 outputs carry ~2^-9 relative rounding (NMSE ~1e-6); 1e-4 leaves room for fp32
// reassociation and the bf16 rounding of intermediates (residual stream, attention inputs).
constexpr double kBf16Nmse = 1e-4;

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU parity tests skipped";
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(0);
  }

  Tensor random(Shape shape, float stddev = 1.f) {
    return test::random_bf16_values(rng_, std::move(shape), stddev);
  }
  static Tensor ints(const std::vector<int32_t>& v) { return test::int_tensor(v); }
  Tensor cpu_act(const Tensor& host) { return cpu_->upload(host, DType::kF32); }
  Tensor gpu_act(const Tensor& host) { return gpu_->upload(host, DType::kBF16); }
  // A GPU output pre-filled with NaN, so an element the kernel does not write fails the check.
  Tensor gpu_poisoned(DType dtype, Shape shape) {
    Tensor host = Tensor::empty(DType::kF32, shape);
    std::fill_n(host.data_as<float>(), host.numel(), std::nanf(""));
    return gpu_->upload(host, dtype);
  }
  static Tensor to_f32(Backend& be, const Tensor& t) { return test::download_f32(be, t); }
  void expect_close(const Tensor& ref_cpu, const Tensor& got_gpu, double tol, const char* what) {
    Tensor a = to_f32(*cpu_, ref_cpu);
    Tensor b = to_f32(*gpu_, got_gpu);
    ASSERT_EQ(a.numel(), b.numel()) << what;
    double err = 0, norm = 0;
    int64_t nan = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double x = a.data_as<float>()[i], y = b.data_as<float>()[i];
      if (!std::isfinite(y)) ++nan;
      err += (x - y) * (x - y);
      norm += x * x;
    }
    EXPECT_EQ(nan, 0) << what << ": non-finite outputs (unwritten or overflow)";
    const double nmse = err / std::max(norm, 1e-30);
    EXPECT_LT(nmse, tol) << what << ": NMSE " << nmse << " over " << a.numel() << " elements";
  }

  std::mt19937 rng_{1234};
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_F(CudaOpsTest, Embedding) {
  for (int64_t hidden : {256, 20}) {
    const int64_t vocab = 300, tokens = 37;
    Tensor table = random({vocab, hidden});
    std::vector<int32_t> ids(tokens);
    for (auto& id : ids) id = static_cast<int32_t>(rng_() % vocab);
    Tensor out_c = cpu_->alloc(DType::kF32, {tokens, hidden});
    Tensor out_g = gpu_poisoned(DType::kBF16, {tokens, hidden});
    cpu_->embedding(cpu_->upload(ints(ids), DType::kI32), cpu_act(table), out_c);
    gpu_->embedding(gpu_->upload(ints(ids), DType::kI32), gpu_act(table), out_g);
    expect_close(out_c, out_g, 1e-12, "embedding");  // a copy: exact
  }
}

// Placeholder ids -(r + 1) embed the token the latest sample_async picked for row r, on both
// backends (greedy rows, so the picks are the logits' argmax, written here).
TEST_F(CudaOpsTest, EmbeddingOfSampledPlaceholders) {
  const int64_t vocab = 300, hidden = 64, rows = 5;
  Tensor table = random({vocab, hidden});
  Tensor logits = random({rows, vocab});
  const Tensor host_logits = to_f32(*cpu_, cpu_->upload(logits, DType::kF32));
  std::vector<int32_t> argmax(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = host_logits.data_as<float>() + r * vocab;
    argmax[r] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
  }
  const SampleRows sr = SampleRows::greedy(static_cast<int>(rows));
  const std::vector<int32_t> ids = {-3, 17, -1, -5, 299, -2};
  std::vector<int32_t> resolved;
  for (int32_t id : ids) resolved.push_back(id < 0 ? argmax[-id - 1] : id);
  Tensor out_ref = cpu_->alloc(DType::kF32, {6, hidden});
  cpu_->embedding(cpu_->upload(ints(resolved), DType::kI32), cpu_act(table), out_ref);
  for (Backend* be : {cpu_.get(), gpu_.get()}) {
    const int64_t ticket = be->sample_async(be->upload(logits, DType::kF32), sr);
    const bool gpu = be == gpu_.get();
    Tensor out =
        gpu ? gpu_poisoned(DType::kBF16, {6, hidden}) : cpu_->alloc(DType::kF32, {6, hidden});
    be->embedding(be->upload(ints(ids), DType::kI32), gpu ? gpu_act(table) : cpu_act(table), out);
    EXPECT_EQ(be->sample_wait(ticket).tokens, argmax) << be->name();
    if (gpu) {
      expect_close(out_ref, out, 1e-12, "embedding of placeholders");
    } else {
      Tensor a = to_f32(*cpu_, out_ref), b = to_f32(*cpu_, out);
      EXPECT_TRUE(std::equal(a.data_as<float>(), a.data_as<float>() + a.numel(),
                             b.data_as<float>()));
    }
  }
}

TEST_F(CudaOpsTest, GatherRows) {
  Tensor x = random({50, 128});
  std::vector<int32_t> idx = {49, 0, 7, 7, 23};
  Tensor out_c = cpu_->alloc(DType::kF32, {5, 128});
  Tensor out_g = gpu_poisoned(DType::kBF16, {5, 128});
  cpu_->gather_rows(cpu_act(x), cpu_->upload(ints(idx), DType::kI32), out_c);
  gpu_->gather_rows(gpu_act(x), gpu_->upload(ints(idx), DType::kI32), out_g);
  expect_close(out_c, out_g, 1e-12, "gather_rows");
}

TEST_F(CudaOpsTest, RmsNorm) {
  for (int64_t dim : {1024, 128, 100, 16}) {
    Tensor x = random({7, dim}, 3.f), w = random({dim});
    Tensor out_c = cpu_->alloc(DType::kF32, {7, dim});
    Tensor out_g = gpu_poisoned(DType::kBF16, {7, dim});
    cpu_->rms_norm(cpu_act(x), cpu_act(w), 1e-6f, out_c);
    gpu_->rms_norm(gpu_act(x), gpu_act(w), 1e-6f, out_g);
    expect_close(out_c, out_g, kBf16Nmse, "rms_norm");
    // In place (out aliases x), as the model does for q/k norm.
    Tensor xg = gpu_act(x);
    gpu_->rms_norm(xg, gpu_act(w), 1e-6f, xg);
    expect_close(out_c, xg, kBf16Nmse, "rms_norm in place");
  }
}

TEST_F(CudaOpsTest, AddRmsNorm) {
  for (int64_t dim : {1024, 4096, 72}) {
    Tensor x = random({5, dim}), res = random({5, dim}), w = random({dim});
    Tensor xc = cpu_act(x), rc = cpu_act(res), xg = gpu_act(x), rg = gpu_act(res);
    cpu_->add_rms_norm(xc, rc, cpu_act(w), 1e-5f);
    gpu_->add_rms_norm(xg, rg, gpu_act(w), 1e-5f);
    expect_close(rc, rg, kBf16Nmse, "add_rms_norm residual");
    expect_close(xc, xg, kBf16Nmse, "add_rms_norm x");
  }
}

// n <= 4 takes the skinny (GEMV) kernel, larger n cuBLASLt; both with and without bias / F32.
TEST_F(CudaOpsTest, Linear) {
  struct Case {
    int64_t n, k, m;
    bool bias, f32_out;
  };
  const Case cases[] = {
      {1, 1024, 3072, false, false}, {37, 256, 512, true, false}, {4, 1024, 1000, false, true},
      {9, 64, 40, true, true},       {3, 72, 24, true, false},    {128, 512, 768, false, false},
      {2, 3072, 1024, true, false},  {5, 256, 300, false, true},  {1, 1024, 151936, false, true},
      // long rows (k >= 4096: the skinny kernel's deeper unroll), k not a multiple of its step
      {1, 4096, 520, true, false},   {3, 12296, 64, false, true}, {2, 8200, 33, true, false},
      // narrow matrices (fewer 16-row blocks than SMs): each row split over 4 warps
      {1, 2048, 1024, false, false}, {3, 3072, 17, true, true},   {2, 1024, 1, false, false},
      // wide matrices (more than one wave of 16-row blocks, n == 1): 2 rows per warp; m % 32 != 0
      {1, 512, 8500, true, false},   {1, 1024, 6144, false, true}};
  for (const Case& c : cases) {
    Tensor x = random({c.n, c.k}), w = random({c.m, c.k}, 0.05f), b = random({c.m});
    const DType out_dt = c.f32_out ? DType::kF32 : DType::kBF16;
    Tensor out_c = cpu_->alloc(DType::kF32, {c.n, c.m});
    Tensor out_g = gpu_poisoned(out_dt, {c.n, c.m});
    Tensor bc = cpu_act(b), bg = gpu_act(b);
    cpu_->linear(cpu_act(x), cpu_act(w), c.bias ? &bc : nullptr, out_c);
    gpu_->linear(gpu_act(x), gpu_act(w), c.bias ? &bg : nullptr, out_g);
    expect_close(out_c, out_g, c.f32_out ? 1e-8 : kBf16Nmse, "linear");
  }
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

// add_rms_norm + linear as one op: n <= 4 rows of k < 4096 (n * k * 2 <= 47 KB) run the fused GEMV
// (every block normalises in its prologue, the last one writes residual and x back), others the
// two ops. Cases follow each other on one backend, so the fused kernel's block counter must be
// left at 0.
TEST_F(CudaOpsTest, AddRmsNormLinear) {
  struct Case {
    int64_t n, k, m;
    bool bias;
  };
  const Case cases[] = {{1, 1024, 4096, false}, {2, 1024, 6144, false}, {3, 1024, 1000, true},
                        {4, 1024, 1024, false}, {1, 4096, 520, true},   {2, 4096, 6144, false},
                        {4, 6144, 300, false},  {4, 3584, 64, true},    {1, 64, 384, true},
                        {8, 256, 96, false},    {2, 72, 40, false},     {1, 1024, 4096, false},
                        {1, 1024, 6144, false}, {1, 1024, 8500, true}};
  for (const Case& c : cases) {
    Tensor x = random({c.n, c.k}), res = random({c.n, c.k}, 2.f), nw = random({c.k});
    Tensor w = random({c.m, c.k}, 0.05f), b = random({c.m});
    Tensor xc = cpu_act(x), rc = cpu_act(res), xg = gpu_act(x), rg = gpu_act(res);
    Tensor bc = cpu_act(b), bg = gpu_act(b);
    Tensor out_c = cpu_->alloc(DType::kF32, {c.n, c.m});
    Tensor out_g = gpu_poisoned(DType::kBF16, {c.n, c.m});
    cpu_->add_rms_norm(xc, rc, cpu_act(nw), 1e-6f);
    cpu_->linear(xc, cpu_act(w), c.bias ? &bc : nullptr, out_c);
    gpu_->add_rms_norm_linear(xg, rg, gpu_act(nw), 1e-6f, gpu_act(w), c.bias ? &bg : nullptr,
                              out_g);
    const std::string what = "add_rms_norm_linear n=" + std::to_string(c.n) +
                             " k=" + std::to_string(c.k) + " m=" + std::to_string(c.m);
    expect_close(out_c, out_g, kBf16Nmse, (what + " out").c_str());
    expect_close(rc, rg, kBf16Nmse, (what + " residual").c_str());
    expect_close(xc, xg, kBf16Nmse, (what + " x").c_str());
  }
}

// silu_mul + linear as one op: n <= 4 rows of k < 4096 (n * k * 2 <= 47 KB) run the fused GEMV
// (SiLU * up built in its prologue); others silu_mul into `mid`, then linear.
TEST_F(CudaOpsTest, SiluMulLinear) {
  struct Case {
    int64_t n, k, m;
    bool bias;
  };
  const Case cases[] = {{1, 3072, 1024, false}, {2, 3072, 1024, true}, {4, 3072, 1000, false},
                        {1, 12288, 256, true},  {3, 1024, 6144, false}, {4, 12288, 64, false},
                        {9, 256, 128, true},    {1, 128, 64, false},    {2, 20, 16, false},
                        {1, 1024, 8500, true}};
  for (const Case& c : cases) {
    Tensor gu = random({c.n, 2 * c.k}, 2.f), w = random({c.m, c.k}, 0.05f), b = random({c.m});
    Tensor bc = cpu_act(b), bg = gpu_act(b);
    Tensor mid_c = cpu_->alloc(DType::kF32, {c.n, c.k});
    Tensor mid_g = gpu_->alloc(DType::kBF16, {c.n, c.k});
    Tensor out_c = cpu_->alloc(DType::kF32, {c.n, c.m});
    Tensor out_g = gpu_poisoned(DType::kBF16, {c.n, c.m});
    cpu_->silu_mul(cpu_act(gu), mid_c);
    cpu_->linear(mid_c, cpu_act(w), c.bias ? &bc : nullptr, out_c);
    gpu_->silu_mul_linear(gpu_act(gu), gpu_act(w), c.bias ? &bg : nullptr, mid_g, out_g);
    const std::string what = "silu_mul_linear n=" + std::to_string(c.n) +
                             " k=" + std::to_string(c.k) + " m=" + std::to_string(c.m);
    expect_close(out_c, out_g, kBf16Nmse, what.c_str());
  }
}

TEST_F(CudaOpsTest, Rope) {
  for (int64_t dim : {128, 64, 16}) {
    const int64_t tokens = 9, heads = 4, max_pos = 4096;
    Tensor table = rope_table(max_pos, dim, 1e6);
    std::vector<int32_t> pos(tokens);
    for (auto& p : pos) p = static_cast<int32_t>(rng_() % max_pos);
    Tensor x = random({tokens, heads, dim});
    Tensor xc = cpu_act(x), xg = gpu_act(x);
    cpu_->rope(xc, cpu_->upload(ints(pos), DType::kI32), cpu_->upload(table, DType::kF32));
    gpu_->rope(xg, gpu_->upload(ints(pos), DType::kI32), gpu_->upload(table, DType::kF32));
    expect_close(xc, xg, kBf16Nmse, "rope");
  }
}

TEST_F(CudaOpsTest, QkNormRopeMatchesNormThenRope) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(gpu_.get());
  ASSERT_NE(cuda, nullptr);
  for (int64_t dim : {128, 64}) {
    const int64_t tokens = 11, heads = 8, max_pos = 512;
    Tensor table = rope_table(max_pos, dim, 1e4);
    std::vector<int32_t> pos(tokens);
    for (auto& p : pos) p = static_cast<int32_t>(rng_() % max_pos);
    Tensor x = random({tokens, heads, dim}, 2.f), w = random({dim});
    Tensor xc = cpu_act(x);
    Tensor xc2 = xc.reshape({tokens * heads, dim});
    cpu_->rms_norm(xc2, cpu_act(w), 1e-6f, xc2);
    cpu_->rope(xc, cpu_->upload(ints(pos), DType::kI32), cpu_->upload(table, DType::kF32));
    Tensor xg = gpu_act(x);
    cuda->qk_norm_rope(xg, gpu_act(w), 1e-6f, gpu_->upload(ints(pos), DType::kI32),
                       gpu_->upload(table, DType::kF32));
    expect_close(xc, xg, kBf16Nmse, "qk_norm_rope");
  }
}

TEST_F(CudaOpsTest, SiluMul) {
  for (int64_t inter : {768, 100}) {
    Tensor gu = random({7, 2 * inter}, 2.f);
    Tensor out_c = cpu_->alloc(DType::kF32, {7, inter});
    Tensor out_g = gpu_poisoned(DType::kBF16, {7, inter});
    cpu_->silu_mul(cpu_act(gu), out_c);
    gpu_->silu_mul(gpu_act(gu), out_g);
    expect_close(out_c, out_g, kBf16Nmse, "silu_mul");
  }
}

TEST_F(CudaOpsTest, KvStore) {
  const int64_t blocks = 6, bs = 16, hkv = 2, dim = 64, tokens = 20;
  Tensor kc = random({blocks, bs, hkv, dim}), vc = random({blocks, bs, hkv, dim});
  Tensor k = random({tokens, hkv, dim}), v = random({tokens, hkv, dim});
  std::vector<int32_t> slots(blocks * bs);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng_);
  slots.resize(tokens);
  slots[3] = -1;
  slots[11] = -1;
  Tensor kcc = cpu_act(kc), vcc = cpu_act(vc), kcg = gpu_act(kc), vcg = gpu_act(vc);
  cpu_->kv_store(cpu_act(k), cpu_act(v), cpu_->upload(ints(slots), DType::kI32), kcc, vcc);
  gpu_->kv_store(gpu_act(k), gpu_act(v), gpu_->upload(ints(slots), DType::kI32), kcg, vcg);
  expect_close(kcc, kcg, 1e-12, "kv_store k");
  expect_close(vcc, vcg, 1e-12, "kv_store v");
}

// The fused attention-input op against the CPU reference (which runs rms_norm / rope / kv_store
// on the split projection): with and without per-head norms, head_dim 128 / 64 / 48 (a head whose
// half is not a multiple of 32), skipped slots.
TEST_F(CudaOpsTest, QkvPrepare) {
  struct Case {
    int64_t dim;
    bool norms;
  };
  for (const Case c : {Case{128, true}, Case{64, false}, Case{48, true}}) {
    const int64_t tokens = 13, hq = 8, hkv = 2, blocks = 4, bs = 16, max_pos = 512;
    Tensor table = rope_table(max_pos, c.dim, 1e6);
    std::vector<int32_t> pos(tokens), slots(blocks * bs);
    for (auto& p : pos) p = static_cast<int32_t>(rng_() % max_pos);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng_);
    slots.resize(tokens);
    slots[5] = -1;
    Tensor qkv = random({tokens, (hq + 2 * hkv) * c.dim}, 2.f);
    Tensor qw = random({c.dim}), kw = random({c.dim});
    Tensor kc = random({blocks, bs, hkv, c.dim}), vc = random({blocks, bs, hkv, c.dim});
    Tensor kcc = cpu_act(kc), vcc = cpu_act(vc), kcg = gpu_act(kc), vcg = gpu_act(vc);
    Tensor qc = cpu_->alloc(DType::kF32, {tokens, hq, c.dim});
    Tensor qg = gpu_poisoned(DType::kBF16, {tokens, hq, c.dim});
    Tensor qwc = cpu_act(qw), kwc = cpu_act(kw), qwg = gpu_act(qw), kwg = gpu_act(kw);
    cpu_->qkv_prepare(cpu_act(qkv), c.norms ? &qwc : nullptr, c.norms ? &kwc : nullptr, 1e-6f,
                      cpu_->upload(ints(pos), DType::kI32), cpu_->upload(table, DType::kF32),
                      cpu_->upload(ints(slots), DType::kI32), qc, kcc, vcc);
    gpu_->qkv_prepare(gpu_act(qkv), c.norms ? &qwg : nullptr, c.norms ? &kwg : nullptr, 1e-6f,
                      gpu_->upload(ints(pos), DType::kI32), gpu_->upload(table, DType::kF32),
                      gpu_->upload(ints(slots), DType::kI32), qg, kcg, vcg);
    expect_close(qc, qg, kBf16Nmse, "qkv_prepare q");
    expect_close(kcc, kcg, kBf16Nmse, "qkv_prepare k cache");
    expect_close(vcc, vcg, 1e-12, "qkv_prepare v cache");
  }
}

// One attention scenario: per sequence, (new query tokens, cached + new tokens).
struct AttnCase {
  std::vector<std::pair<int, int>> seqs;
  int heads, kv_heads, dim, block_size;
};

class CudaAttentionTest : public CudaOpsTest, public ::testing::WithParamInterface<AttnCase> {};

TEST_P(CudaAttentionTest, MatchesCpu) {
  const AttnCase& c = GetParam();
  const int num_seqs = static_cast<int>(c.seqs.size());
  std::vector<int32_t> qptr{0}, kv_lens, bptr{0}, bidx;
  int max_q = 0, max_kv = 0, total_blocks = 0;
  for (auto [q_len, kv_len] : c.seqs) {
    qptr.push_back(qptr.back() + q_len);
    kv_lens.push_back(kv_len);
    const int nb = (kv_len + c.block_size - 1) / c.block_size;
    bptr.push_back(bptr.back() + nb);
    total_blocks += nb;
    max_q = std::max(max_q, q_len);
    max_kv = std::max(max_kv, kv_len);
  }
  // Blocks handed out in shuffled order, with spare blocks nobody owns.
  const int pool_blocks = total_blocks + 3;
  std::vector<int32_t> perm(pool_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng_);
  bidx.assign(perm.begin(), perm.begin() + total_blocks);
  const int tokens = qptr.back();

  Tensor q = random({tokens, c.heads, c.dim});
  Tensor kc = random({pool_blocks, c.block_size, c.kv_heads, c.dim});
  Tensor vc = random({pool_blocks, c.block_size, c.kv_heads, c.dim});
  auto meta_on = [&](Backend& be) {
    AttentionMeta m;
    m.query_indptr = be.upload(ints(qptr), DType::kI32);
    m.kv_lens = be.upload(ints(kv_lens), DType::kI32);
    m.block_indptr = be.upload(ints(bptr), DType::kI32);
    m.block_indices = be.upload(ints(bidx), DType::kI32);
    m.num_seqs = num_seqs;
    m.num_tokens = tokens;
    m.max_query_len = max_q;
    m.max_kv_len = max_kv;
    m.block_size = c.block_size;
    return m;
  };
  const float scale = 1.f / std::sqrt(static_cast<float>(c.dim));
  Tensor out_c = cpu_->alloc(DType::kF32, {tokens, c.heads, c.dim});
  Tensor out_g = gpu_poisoned(DType::kBF16, {tokens, c.heads, c.dim});
  cpu_->attention(cpu_act(q), cpu_act(kc), cpu_act(vc), meta_on(*cpu_), scale, out_c);
  gpu_->attention(gpu_act(q), gpu_act(kc), gpu_act(vc), meta_on(*gpu_), scale, out_g);
  expect_close(out_c, out_g, kBf16Nmse, "attention");
  gpu_->release_scratch();
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttentionTest,
    ::testing::Values(
        // decode, one sequence, short and long (split-KV) contexts
        AttnCase{{{1, 7}}, 16, 8, 128, 16}, AttnCase{{{1, 3000}}, 16, 8, 128, 16},
        AttnCase{{{1, 4100}}, 32, 8, 128, 32},
        // batched decode with different lengths
        AttnCase{{{1, 1}, {1, 65}, {1, 700}, {1, 129}}, 8, 2, 64, 16},
        // prefill from scratch and prefill after a cached prefix, varlen
        AttnCase{{{100, 100}}, 4, 4, 64, 16},
        AttnCase{{{37, 200}, {5, 5}, {64, 64}}, 16, 8, 128, 32},
        // mixed prefill + decode in one step; GQA 7:1 (Qwen2-0.5B-like), block size 8
        AttnCase{{{1, 300}, {20, 50}, {1, 2}}, 14, 2, 64, 8},
        // tiny test-model head dims
        AttnCase{{{9, 30}, {1, 17}}, 4, 2, 32, 16}, AttnCase{{{12, 12}, {1, 40}}, 4, 1, 16, 16},
        // head_dim 256, GQA 16:1 (group spans two row tiles)
        AttnCase{{{3, 90}}, 16, 1, 256, 16}));

}  // namespace
}  // namespace hardkv
