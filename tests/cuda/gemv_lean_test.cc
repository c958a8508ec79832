// The lean batch-1 GEMV (src/kernels/cuda/gemv_lean.h) against a plain double-precision loop on
// the host: the three prologues (none, residual add + RMSNorm, SiLU * up), every rows-per-warp
// variant, m not a multiple of a block's rows, with and without bias; the add_rms_norm form twice
// in a row (its block counter must be left at 0); the warp-staged form (x read by every warp, no
// block barrier) and the shared-memory form. Skips without a CUDA device.
#include "kernels/cuda/gemv_lean.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "device_array.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

using cuda::gemv_lean_supported;
using cuda::launch_gemv_lean;
using cuda::LeanGemvArgs;
using cuda::LeanPrologue;
using test::DeviceArray;

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

std::vector<uint16_t> random_bf16(std::mt19937& rng, size_t n, float stddev) {
  std::normal_distribution<float> dist(0.f, stddev);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(dist(rng));
  return v;
}

// NMSE of got (bf16) against want (double).
double nmse(const std::vector<double>& want, const std::vector<uint16_t>& got) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = bf16_to_f32(got[i]);
    if (!std::isfinite(g)) return INFINITY;
    err += (want[i] - g) * (want[i] - g);
    norm += want[i] * want[i];
  }
  return err / std::max(norm, 1e-30);
}

class GemvLeanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: lean GEMV tests skipped";
    cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, 0);
  }
  // Runs one case; out = xin w^T (+ bias) where xin is what the prologue builds on the host.
  void run_case(LeanPrologue pro, int64_t m, int64_t k, bool bias, int repeats = 1) {
    const std::string what = "prologue " + std::to_string(static_cast<int>(pro)) +
                             " m=" + std::to_string(m) + " k=" + std::to_string(k);
    if (!gemv_lean_supported(1, m, k, num_sms_)) {
      GTEST_SKIP() << what << " is not covered on this device (" << num_sms_ << " SMs)";
    }
    const int64_t x_len = pro == LeanPrologue::kSiluMul ? 2 * k : k;
    std::vector<uint16_t> x = random_bf16(rng_, x_len, 1.f), res = random_bf16(rng_, k, 2.f);
    std::vector<uint16_t> nw = random_bf16(rng_, k, 1.f), w = random_bf16(rng_, m * k, 0.05f);
    std::vector<uint16_t> b = random_bf16(rng_, m, 1.f);

    // Host reference, rounding where the unfused bf16 ops store.
    std::vector<float> xin(k), sum(k);
    if (pro == LeanPrologue::kNone) {
      for (int64_t i = 0; i < k; ++i) xin[i] = bf16_to_f32(x[i]);
    } else if (pro == LeanPrologue::kSiluMul) {
      for (int64_t i = 0; i < k; ++i) {
        const float g = bf16_to_f32(x[i]), u = bf16_to_f32(x[k + i]);
        xin[i] = round_bf16(static_cast<float>(g / (1.0 + std::exp(-g)) * u));
      }
    } else {
      double ss = 0;
      for (int64_t i = 0; i < k; ++i) {
        sum[i] = round_bf16(bf16_to_f32(x[i]) + bf16_to_f32(res[i]));
        ss += static_cast<double>(sum[i]) * sum[i];
      }
      const double inv = 1.0 / std::sqrt(ss / k + 1e-6);
      for (int64_t i = 0; i < k; ++i) {
        xin[i] = round_bf16(static_cast<float>(sum[i] * inv * bf16_to_f32(nw[i])));
      }
    }
    std::vector<double> want(m);
    for (int64_t r = 0; r < m; ++r) {
      double acc = bias ? bf16_to_f32(b[r]) : 0.0;
      for (int64_t i = 0; i < k; ++i)
        acc += static_cast<double>(bf16_to_f32(w[r * k + i])) * xin[i];
      want[r] = acc;
    }

    DeviceArray<uint16_t> dx(x), dres(res), dnw(nw), dw(w), db(b);
    DeviceArray<uint16_t> dout(std::vector<uint16_t>(m, 0x7fc0));  // NaN: unwritten rows fail
    DeviceArray<unsigned> counter(std::vector<unsigned>{0});
    LeanGemvArgs a;
    a.x = reinterpret_cast<const __nv_bfloat16*>(dx.ptr);
    a.w = reinterpret_cast<const __nv_bfloat16*>(dw.ptr);
    a.bias = bias ? reinterpret_cast<const __nv_bfloat16*>(db.ptr) : nullptr;
    a.out = reinterpret_cast<__nv_bfloat16*>(dout.ptr);
    a.m = m;
    a.k = k;
    a.prologue = pro;
    a.warp_x = warp_x_ ? 1 : 0;
    if (pro == LeanPrologue::kAddRmsNorm) {
      a.x_out = reinterpret_cast<__nv_bfloat16*>(dx.ptr);
      a.residual = reinterpret_cast<__nv_bfloat16*>(dres.ptr);
      a.norm_w = reinterpret_cast<const __nv_bfloat16*>(dnw.ptr);
      a.eps = 1e-6f;
      a.counter = counter.ptr;
    }
    launch_gemv_lean(a, num_sms_, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
    EXPECT_LT(nmse(want, dout.download()), 1e-4) << what;
    if (pro != LeanPrologue::kAddRmsNorm) return;
    // residual = bf16(x + residual) exactly; x = the normed row.
    const std::vector<uint16_t> res_got = dres.download(), x_got = dx.download();
    int64_t res_bad = 0;
    for (int64_t i = 0; i < k; ++i) res_bad += bf16_to_f32(res_got[i]) != sum[i];
    EXPECT_EQ(res_bad, 0) << what << ": residual elements differ from bf16(x + residual)";
    std::vector<double> xin_d(xin.begin(), xin.end());
    EXPECT_LT(nmse(xin_d, x_got), 1e-5) << what << ": normed x";
    EXPECT_EQ(counter.download()[0], 0u) << what << ": block counter not reset";
    if (repeats > 1) run_case(pro, m, k, bias, repeats - 1);
  }
  int num_sms_ = 0;
  bool warp_x_ = true;  // LeanGemvArgs::warp_x
  std::mt19937 rng_{777};
};

TEST_F(GemvLeanTest, Plain) {
  run_case(LeanPrologue::kNone, 4096, 1024, false);  // 4 rows per warp
  run_case(LeanPrologue::kNone, 1000, 2048, true);   // 1 row per warp, last block partial
  run_case(LeanPrologue::kNone, 1024, 3072, false);  // 12 chunks per lane
  run_case(LeanPrologue::kNone, 2000, 2048, true);   // 2 rows per warp, 8 chunks
  run_case(LeanPrologue::kNone, 1, 1024, true);      // one row
}

TEST_F(GemvLeanTest, AddRmsNorm) {
  run_case(LeanPrologue::kAddRmsNorm, 4096, 1024, false, 2);  // Qwen3-0.6B qkv
  run_case(LeanPrologue::kAddRmsNorm, 6144, 1024, false, 2);  // gate_up: 6 rows per warp
  run_case(LeanPrologue::kAddRmsNorm, 1999, 1024, true);      // 2 rows per warp, partial block
  run_case(LeanPrologue::kAddRmsNorm, 1024, 2048, true);
  run_case(LeanPrologue::kAddRmsNorm, 700, 3072, false);
  run_case(LeanPrologue::kAddRmsNorm, 500, 1024, true, 3);  // 1 row per warp, 4 chunks
}

// The same cases on the shared-memory form (the warp-staged one is the default where it fits).
TEST_F(GemvLeanTest, PlainSharedMemoryForm) {
  warp_x_ = false;
  run_case(LeanPrologue::kNone, 4096, 1024, false);
  run_case(LeanPrologue::kNone, 1000, 2048, true);
  run_case(LeanPrologue::kNone, 1024, 3072, false);
}

TEST_F(GemvLeanTest, AddRmsNormSharedMemoryForm) {
  warp_x_ = false;
  run_case(LeanPrologue::kAddRmsNorm, 4096, 1024, false, 2);
  run_case(LeanPrologue::kAddRmsNorm, 1999, 1024, true);
}

TEST_F(GemvLeanTest, SiluMul) {
  run_case(LeanPrologue::kSiluMul, 1024, 3072, false);  // Qwen3-0.6B down
  run_case(LeanPrologue::kSiluMul, 1000, 1024, true);
  run_case(LeanPrologue::kSiluMul, 2047, 2048, true);
}

}  // namespace
}  // namespace hardkv
