// cuBLASLt algorithm choice for the decode-step GEMMs: for each linear layer of the Qwen3-0.6B and
// Qwen3-8B shapes and each row count, times cuBLASLt's heuristic algorithms (LtGemm::
// time_candidates) and prints the one run() uses (rank 0) beside the fastest, then the skinny
// decode GEMM (gemm_skinny.h) with the configuration the dispatch picks and (--sweep 1) the
// fastest of all its configurations, beside the weight-bytes floor at 3,037 GB/s.
// Weights rotate over copies of >= 256 MB so that they come from HBM, as in a model forward.
//   bench_gemm [--rows 16,64,128,256] [--algos 16] [--reps 20] [--preset qwen3-0.6b|qwen3-8b|all]
//              [--sweep 0|1] [--only LAYER] [--cfg bm128s2x6,...] [--cublas 0|1]
// --cfg also times the named skinny configurations (bm<rows>s<splits>[st<max stages>][r1: K
// rotation]); --cublas 0 skips cuBLASLt. The sweep's per-configuration times go to stderr.
#include "kernels/cuda/gemm.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/gemm_skinny.h"

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

// Microseconds per call of fn(w_copy) over reps back-to-back calls (best of 3, after 2 warm-up
// calls), the weights rotating over `copies` copies.
template <typename Fn>
float time_us(cudaStream_t stream, int reps, int copies, Fn&& fn) {
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  check(cudaEventCreate(&e0), "event");
  check(cudaEventCreate(&e1), "event");
  for (int r = 0; r < 2; ++r) fn(r % copies);
  float best = -1.f;
  for (int t = 0; t < 3; ++t) {
    check(cudaEventRecord(e0, stream), "record");
    for (int r = 0; r < reps; ++r) fn(r % copies);
    check(cudaEventRecord(e1, stream), "record");
    check(cudaEventSynchronize(e1), "sync");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    const float us = ms * 1e3f / static_cast<float>(reps);
    if (best < 0.f || us < best) best = us;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return best;
}

// "bm128s2w4x3r0" -> a configuration (missing fields keep their defaults).
hardkv::cuda::GemmSkinnyConfig parse_config(const std::string& s) {
  hardkv::cuda::GemmSkinnyConfig c;
  size_t i = 0;
  auto num = [&]() {
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    const int v = std::stoi(s.substr(i, j - i));
    i = j;
    return v;
  };
  while (i < s.size()) {
    if (s.compare(i, 2, "bm") == 0) {
      i += 2;
      c.bm = num();
    } else if (s.compare(i, 2, "st") == 0) {
      i += 2;
      c.max_stages = num();
    } else if (s[i] == 's') {
      ++i;
      c.splits = num();
    } else if (s[i] == 'r') {
      ++i;
      c.rotate = num();
    } else {
      std::fprintf(stderr, "bad config %s\n", s.c_str());
      std::exit(2);
    }
  }
  return c;
}

std::vector<std::string> parse_names(const char* s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) v.push_back(t);
  return v;
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
  bool sweep = false;
  bool cublas = true;
  std::string only;
  std::vector<std::string> cfgs;
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
    } else if (a == "--sweep" && i + 1 < argc) {
      sweep = std::atoi(argv[++i]) != 0;
    } else if (a == "--cublas" && i + 1 < argc) {
      cublas = std::atoi(argv[++i]) != 0;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--cfg" && i + 1 < argc) {
      cfgs = parse_names(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: bench_gemm [--rows 16,64,128,256] [--algos 16] [--reps 20] "
                   "[--preset qwen3-0.6b|qwen3-8b|all] [--sweep 0|1]\n");
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
  int num_sms = 0;
  check(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, 0), "attribute");
  const int64_t max_n = *std::max_element(rows.begin(), rows.end());
  std::printf("%-11s %-8s %5s %7s %10s %10s %6s %9s %8s %8s %9s %-9s %9s %-9s %7s\n", "preset",
              "layer", "rows", "algos", "rank0_us", "best_us", "best", "TFLOP/s", "gain",
              "floor_us", "skinny_us", "cfg", "sweep_us", "sweep_cfg", "speedup");
  using hardkv::cuda::GemmSkinnyConfig;
  for (const Shape& s : kShapes) {
    if (preset != "all" && preset != s.preset) continue;
    if (!only.empty() && only != s.name) continue;
    const size_t wn = static_cast<size_t>(s.m * s.k);
    const int copies = static_cast<int>(std::max<size_t>(1, (size_t{256} << 20) / (wn * 2) + 1));
    auto* w = device_random<__nv_bfloat16>(wn * copies, 1);
    auto* x = device_random<__nv_bfloat16>(static_cast<size_t>(max_n * s.k), 2);
    void* out = nullptr;
    check(cudaMalloc(&out, static_cast<size_t>(max_n * s.m) * (s.out_f32 ? 4 : 2)), "cudaMalloc");
    for (const int64_t n : rows) {
      std::vector<hardkv::cuda::LtGemm::Candidate> c(1);
      c[0].us = -1.f;
      if (cublas) {
        c = gemm.time_candidates(x, w, nullptr, out, s.out_f32, n, s.m, s.k, stream, algos, reps,
                                 copies);
      }
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
      const double floor_us = static_cast<double>(wn) * 2 / 3.037e12 * 1e6;
      auto* xb = static_cast<const __nv_bfloat16*>(x);
      auto* ob = static_cast<__nv_bfloat16*>(out);
      auto skinny = [&](GemmSkinnyConfig cfg) {
        return time_us(stream, reps, copies, [&](int cpy) {
          hardkv::cuda::launch_gemm_skinny(xb, w + cpy * wn, nullptr, ob, n, s.m, s.k, num_sms,
                                           stream, cfg);
        });
      };
      float sk = -1.f, sw = -1.f;
      std::string sk_cfg = "-", sw_cfg = "-";
      if (!s.out_f32 && hardkv::cuda::gemm_skinny_supported(x, w, nullptr, out, n, s.m, s.k)) {
        sk = skinny({});
        sk_cfg = hardkv::cuda::gemm_skinny_config_name(
            hardkv::cuda::gemm_skinny_pick(n, s.m, s.k, num_sms));
        std::vector<GemmSkinnyConfig> list;
        for (const std::string& name : cfgs) list.push_back(parse_config(name));
        const auto valid = hardkv::cuda::gemm_skinny_configs(n, s.m, s.k);
        if (sweep) {
          for (const GemmSkinnyConfig& cfg : valid) {  // each: deepest ring, 4 stages, rotated
            list.push_back(cfg);
            GemmSkinnyConfig shallow = cfg;
            shallow.max_stages = 4;
            list.push_back(shallow);
            GemmSkinnyConfig rotated = cfg;
            rotated.rotate = 1;
            list.push_back(rotated);
          }
        }
        for (const GemmSkinnyConfig& cs : list) {
          if (std::none_of(valid.begin(), valid.end(), [&](const GemmSkinnyConfig& v) {
                return v.bm == cs.bm && v.splits == cs.splits;
              })) {
            continue;  // not valid for this shape
          }
          const float t = skinny(cs);
          std::fprintf(stderr, "sweep %s %s n=%lld %s %.2f\n", s.preset, s.name,
                       static_cast<long long>(n), hardkv::cuda::gemm_skinny_config_name(cs).c_str(),
                       t);
          if (sw < 0.f || t < sw) {
            sw = t;
            sw_cfg = hardkv::cuda::gemm_skinny_config_name(cs);
          }
        }
      }
      std::printf(
          "%-11s %-8s %5lld %7zu %10.2f %10.2f %6d %9.1f %7.1f%% %8.2f %9.2f %-9s %9.2f "
          "%-9s %6.2fx\n",
          s.preset, s.name, static_cast<long long>(n), c.size(), r0, best, best_rank,
          flops / best * 1e-6, r0 > 0.f ? 100.0 * (r0 - best) / r0 : 0.0, floor_us, sk,
          sk_cfg.c_str(), sw, sw_cfg.c_str(), sk > 0.f ? r0 / sk : 0.0);
    }
    cudaFree(w);
    cudaFree(x);
    cudaFree(out);
  }
  cudaStreamDestroy(stream);
  return 0;
}
