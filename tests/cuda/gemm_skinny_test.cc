// The skinny decode GEMM (src/kernels/cuda/gemm_skinny.h) against a double-precision loop on the
// host: the Qwen3-0.6B and Qwen3-8B layer shapes at 5-256 rows, with and without bias, through
// the configuration the dispatch picks; every valid tile configuration (with its deepest ring, a
// 2-stage ring and K rotation) on the 0.6B shapes. The reference covers every row of x and one
// random column in each 64-column block of the output (every block's tile), and the whole output
// must be written (it starts as NaN). Skips without a CUDA device.
#include "kernels/cuda/gemm_skinny.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "device_array.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

using cuda::GemmSkinnyConfig;
using test::DeviceArray;

// Uniform bf16 values in [-scale, scale) (xorshift: the 8B matrices have 100M elements).
std::vector<uint16_t> random_bf16(uint64_t& state, size_t n, float scale) {
  std::vector<uint16_t> v(n);
  for (auto& x : v) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const float u = static_cast<float>(state >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    x = f32_to_bf16((2.f * u - 1.f) * scale);
  }
  return v;
}

struct Problem {
  int64_t m = 0, k = 0;
  std::vector<uint16_t> x, w, b;  // x holds 256 rows
  std::unique_ptr<DeviceArray<uint16_t>> dx, dw, db;
};

class GemmSkinnyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: skinny GEMM tests skipped";
    cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, 0);
  }

  void make(Problem& p, int64_t m, int64_t k) {
    p.m = m;
    p.k = k;
    p.x = random_bf16(state_, static_cast<size_t>(256 * k), 1.f);
    p.w = random_bf16(state_, static_cast<size_t>(m * k), 0.05f);
    p.b = random_bf16(state_, static_cast<size_t>(m), 1.f);
    p.dx = std::make_unique<DeviceArray<uint16_t>>(p.x);
    p.dw = std::make_unique<DeviceArray<uint16_t>>(p.w);
    p.db = std::make_unique<DeviceArray<uint16_t>>(p.b);
    ASSERT_NE(p.dw->ptr, nullptr);
  }

  // Runs out = xin w^T (+ bias) for the first n rows; checks every row at one random column per
  // 64-column block, and that no output element is left NaN.
  void run_case(const Problem& p, int64_t n, bool bias, GemmSkinnyConfig cfg) {
    const int64_t m = p.m, k = p.k;
    const std::string what =
        "m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n) +
        (bias ? " bias" : "") + " cfg " +
        (cfg.bm ? cuda::gemm_skinny_config_name(cfg)
                : cuda::gemm_skinny_config_name(cuda::gemm_skinny_pick(n, m, k, num_sms_)) +
                      " (picked)");
    DeviceArray<uint16_t> dout(std::vector<uint16_t>(static_cast<size_t>(n * m), 0x7fc0));
    const auto* xp = reinterpret_cast<const __nv_bfloat16*>(p.dx->ptr);
    ASSERT_TRUE(
        cuda::gemm_skinny_supported(xp, p.dw->ptr, bias ? p.db->ptr : nullptr, dout.ptr, n, m, k))
        << what;
    cuda::launch_gemm_skinny(xp, reinterpret_cast<const __nv_bfloat16*>(p.dw->ptr),
                             bias ? reinterpret_cast<const __nv_bfloat16*>(p.db->ptr) : nullptr,
                             reinterpret_cast<__nv_bfloat16*>(dout.ptr), n, m, k, num_sms_, nullptr,
                             cfg);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
    const std::vector<uint16_t> got = dout.download();

    // x as the GEMM sees it.
    std::vector<float> xin(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < n * k; ++i) xin[i] = bf16_to_f32(p.x[i]);
    double err = 0, norm = 0;
    int64_t nan_count = 0;
    for (const uint16_t v : got) nan_count += std::isnan(bf16_to_f32(v));
    std::uniform_int_distribution<int64_t> off(0, 63);
    std::vector<double> wcol(k);
    for (int64_t c0 = 0; c0 < m; c0 += 64) {
      const int64_t c = c0 + off(rng_);
      for (int64_t i = 0; i < k; ++i) wcol[i] = bf16_to_f32(p.w[c * k + i]);
      for (int64_t r = 0; r < n; ++r) {
        double acc = bias ? bf16_to_f32(p.b[c]) : 0.0;
        const float* xr = &xin[r * k];
        for (int64_t i = 0; i < k; ++i) acc += wcol[i] * xr[i];
        const double g = bf16_to_f32(got[r * m + c]);
        err += (g - acc) * (g - acc);
        norm += acc * acc;
      }
    }
    EXPECT_EQ(nan_count, 0) << what << ": outputs left unwritten (or NaN)";
    EXPECT_LT(err / std::max(norm, 1e-30), 1e-4) << what;
  }

  int num_sms_ = 0;
  uint64_t state_ = 0x9e3779b97f4a7c15ull;
  std::mt19937 rng_{4242};
};

constexpr int64_t kRows[] = {5, 8, 16, 24, 64, 136, 137, 200, 256};

TEST_F(GemmSkinnyTest, Qwen3_0_6BShapes) {
  const int64_t shapes[][2] = {{4096, 1024}, {1024, 2048}, {6144, 1024}, {1024, 3072}};
  for (const auto& s : shapes) {
    Problem p;
    make(p, s[0], s[1]);
    for (const int64_t n : kRows) {
      for (const bool bias : {false, true}) run_case(p, n, bias, {});
    }
  }
}

TEST_F(GemmSkinnyTest, Qwen3_8BShapes) {
  const int64_t shapes[][2] = {{6144, 4096}, {4096, 4096}, {24576, 4096}, {4096, 12288}};
  for (const auto& s : shapes) {
    Problem p;
    make(p, s[0], s[1]);
    for (const int64_t n : kRows) run_case(p, n, n % 2 == 0, {});
  }
}

// Every tile configuration (block rows x K splits), and a 2-stage weight ring (slot reuse).
TEST_F(GemmSkinnyTest, AllConfigs) {
  const int64_t shapes[][2] = {{4096, 1024}, {1024, 2048}, {6144, 1024}, {1024, 3072}};
  for (const auto& s : shapes) {
    Problem p;
    make(p, s[0], s[1]);
    for (const int64_t n : {int64_t{5}, int64_t{24}, int64_t{137}, int64_t{256}}) {
      for (GemmSkinnyConfig c : cuda::gemm_skinny_configs(n, s[0], s[1])) {
        run_case(p, n, true, c);
        c.max_stages = 2;
        run_case(p, n, false, c);
        c.max_stages = 0;
        c.rotate = 1;
        run_case(p, n, n == 24, c);
      }
    }
  }
}

}  // namespace
}  // namespace hardkv
