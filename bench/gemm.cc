// cuBLASLt algorithm choice for the decode-step GEMMs: for each linear layer of the Qwen3-0.6B and
// Qwen3-8B shapes and each row count, times cuBLASLt's heuristic algorithms (LtGemm::
// time_candidates) and prints the one run() uses (rank 0) beside the fastest. Weights rotate over
// copies of >= 256 MB so that they come from HBM, as in a model forward.
//   bench_gemm [--rows 16,64,128,256] [--algos 16] [--reps 20] [--preset qwen3-0.6b|qwen3-8b|all]
#include "kernels/cuda/gemm.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace {

struct Shape {
  const char* preset;
  const char* name;
  int64_t m, k;
  bool out_f32;
};

constexpr Shape kShapes[] = {
    {"qwen3-0.6b", "qkv", 4096, 1024, false},      {"qwen3-0.6b", "o", 1024, 2048, false},
    {"qwen3-0.6b", "gate_up", 6144, 1024, false},  {"qwen3-0.6b", "down", 1024, 3072, false},
    {"qwen3-0.6b", "lm_head", 151936, 1024, true}, {"qwen3-8b", "qkv", 6144, 4096, false},
    {"qwen3-8b", "o", 4096, 4096, false},          {"qwen3-8b", "gate_up", 24576, 4096, false},
    {"qwen3-8b", "down", 4096, 12288, false},      {"qwen3-8b", "lm_head", 151936, 4096, true},
};

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

template <typename T>
T* device_random(size_t count, uint64_t seed) {
  std::vector<__nv_bfloat16> h(count);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> ud(-0.05f, 0.05f);
  for (auto& v : h) v = __float2bfloat16(ud(rng));
  void* d = nullptr;
  check(cudaMalloc(&d, count * sizeof(__nv_bfloat16)), "cudaMalloc");
  check(cudaMemcpy(d, h.data(), count * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice), "copy");
  return static_cast<T*>(d);
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) v.push_back(std::stoll(t));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> rows = {16, 64, 128, 136, 256, 512};
  int algos = 16, reps = 20;
  std::string preset = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rows" && i + 1 < argc) {
      rows = parse_list(argv[++i]);
    } else if (a == "--algos" && i + 1 < argc) {
      algos = std::atoi(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--preset" && i + 1 < argc) {
      preset = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bench_gemm [--rows 16,64,128,256] [--algos 16] [--reps 20] "
                   "[--preset qwen3-0.6b|qwen3-8b|all]\n");
      return 2;
    }
  }
  if (!hardkv::cuda_device_available()) {
    std::fprintf(stderr, "bench_gemm: no CUDA device\n");
    return 1;
  }
  hardkv::cuda::LtGemm gemm;
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  const int64_t max_n = *std::max_element(rows.begin(), rows.end());
  std::printf("%-11s %-8s %5s %7s %10s %10s %6s %9s %8s\n", "preset", "layer", "rows", "algos",
              "rank0_us", "best_us", "best", "TFLOP/s", "gain");
  for (const Shape& s : kShapes) {
    if (preset != "all" && preset != s.preset) continue;
    const size_t wn = static_cast<size_t>(s.m * s.k);
    const int copies = static_cast<int>(std::max<size_t>(1, (size_t{256} << 20) / (wn * 2) + 1));
    auto* w = device_random<__nv_bfloat16>(wn * copies, 1);
    auto* x = device_random<__nv_bfloat16>(static_cast<size_t>(max_n * s.k), 2);
    void* out = nullptr;
    check(cudaMalloc(&out, static_cast<size_t>(max_n * s.m) * (s.out_f32 ? 4 : 2)), "cudaMalloc");
    for (const int64_t n : rows) {
      const auto c = gemm.time_candidates(x, w, nullptr, out, s.out_f32, n, s.m, s.k, stream, algos,
                                          reps, copies);
      float best = -1.f;
      int best_rank = -1;
      for (const auto& cand : c) {
        if (cand.us > 0.f && (best < 0.f || cand.us < best)) {
          best = cand.us;
          best_rank = cand.rank;
        }
      }
      const float r0 = c[0].us;
      const double flops = 2.0 * static_cast<double>(n * s.m * s.k);
      std::printf("%-11s %-8s %5lld %7zu %10.2f %10.2f %6d %9.1f %7.1f%%\n", s.preset, s.name,
                  static_cast<long long>(n), c.size(), r0, best, best_rank, flops / best * 1e-6,
                  r0 > 0.f ? 100.0 * (r0 - best) / r0 : 0.0);
    }
    cudaFree(w);
    cudaFree(x);
    cudaFree(out);
  }
  cudaStreamDestroy(stream);
  return 0;
}
