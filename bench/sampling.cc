// GPU sampling benchmark: the sampling kernel (launch_sample) and the whole CudaBackend::sample
// (params up, tokens down) on random logits F32 [rows, 151936] for greedy, temperature 0.6, and
// temperature 0.6 + top-k 20 + top-p 0.95 (also top-p alone and min-p alone); beside the floor of
// one read of the logits at the measured copy bandwidth, and the host path it replaces
// (Backend::sample: download + host).
//   bench_sampling [--rows 1,32,256] [--iters 50] [--no-host]
#include "kernels/cuda/sampling.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"

namespace {

using hardkv::cuda::SampleRowParams;

constexpr int64_t kVocab = 151936;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Device-to-device copy bandwidth in bytes/s, counting bytes read + written (median of 20).
double measure_copy_bandwidth() {
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc");
  check(cudaMalloc(reinterpret_cast<void**>(&b), bytes), "cudaMalloc");
  check(cudaMemset(a, 1, bytes), "cudaMemset");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> s;
  for (int i = 0; i < 23; ++i) {
    cudaEventRecord(e0);
    check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "copy");
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 3) s.push_back(ms * 1e-3);
  }
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / median(s);
}

struct Mode {
  const char* name;
  float temperature;
  int top_k;
  float top_p;
  float min_p;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> row_counts = {1, 32, 256};
  int iters = 50;
  bool host = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rows" && i + 1 < argc) {
      row_counts.clear();
      std::stringstream ss(argv[++i]);
      for (std::string t; std::getline(ss, t, ',');) row_counts.push_back(std::stoll(t));
    } else if (a == "--iters" && i + 1 < argc) {
      iters = std::atoi(argv[++i]);
    } else if (a == "--no-host") {
      host = false;
    } else {
      std::fprintf(stderr, "usage: bench_sampling [--rows 1,32,256] [--iters 50] [--no-host]\n");
      return 2;
    }
  }
  if (!hardkv::cuda_device_available()) {
    std::fprintf(stderr, "bench_sampling: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const double bw = measure_copy_bandwidth();
  std::printf("device %s, copy bandwidth %.0f GB/s (read + write), vocab %lld\n", prop.name,
              bw * 1e-9, static_cast<long long>(kVocab));
  auto be = hardkv::make_cuda_backend(0);
  auto* cuda_be = static_cast<hardkv::cuda::CudaBackend*>(be.get());
  cudaStream_t stream = cuda_be->stream();

  const Mode modes[] = {{"greedy", 0.f, 0, 1.f, 0.f},
                        {"temperature 0.6", 0.6f, 0, 1.f, 0.f},
                        {"T 0.6 top-k 20 top-p 0.95", 0.6f, 20, 0.95f, 0.f},
                        {"T 0.6 top-p 0.95", 0.6f, 0, 0.95f, 0.f},
                        {"T 0.6 min-p 0.05", 0.6f, 0, 1.f, 0.05f}};
  const int64_t max_rows = *std::max_element(row_counts.begin(), row_counts.end());
  // Logits like a model's: N(0, 2) with a few large entries.
  std::vector<float> h(static_cast<size_t>(max_rows) * kVocab);
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nd(0.f, 2.f);
  for (float& x : h) x = nd(rng);
  for (int64_t r = 0; r < max_rows; ++r) {
    for (int j = 0; j < 8; ++j) h[r * kVocab + rng() % kVocab] = 12.f + j;
  }

  std::printf("%-28s %5s %12s %12s %14s %12s %12s\n", "mode", "rows", "kernel_us", "floor_us",
              "floor_passes", "api_us", "host_api_us");
  for (const int64_t n : row_counts) {
    const size_t bytes = static_cast<size_t>(n) * kVocab * sizeof(float);
    // Enough copies to rotate through >= 256 MB, so repeated calls do not run from L2.
    const int copies = static_cast<int>(std::min<size_t>(512, (size_t{256} << 20) / bytes + 1));
    std::vector<float*> bufs(copies);
    for (auto& b : bufs) {
      check(cudaMalloc(reinterpret_cast<void**>(&b), bytes), "cudaMalloc");
      check(cudaMemcpy(b, h.data(), bytes, cudaMemcpyHostToDevice), "upload");
    }
    SampleRowParams* params = nullptr;
    int32_t* tokens = nullptr;
    check(cudaMalloc(reinterpret_cast<void**>(&params), n * sizeof(SampleRowParams)), "cudaMalloc");
    check(cudaMalloc(reinterpret_cast<void**>(&tokens), n * sizeof(int32_t)), "cudaMalloc");
    for (const Mode& m : modes) {
      std::vector<SampleRowParams> hp(n);
      std::uniform_real_distribution<double> ud(0.0, 1.0);
      for (auto& p : hp) {
        p.temperature = m.temperature;
        p.top_k = m.top_k;
        p.top_p = m.top_p;
        p.min_p = m.min_p;
        p.uniform = ud(rng);
      }
      check(cudaMemcpy(params, hp.data(), n * sizeof(SampleRowParams), cudaMemcpyHostToDevice),
            "params");
      cudaEvent_t e0, e1;
      cudaEventCreate(&e0);
      cudaEventCreate(&e1);
      std::vector<double> us;
      for (int it = 0; it < iters + 3; ++it) {
        const float* buf = bufs[it % copies];
        cudaEventRecord(e0, stream);
        hardkv::cuda::launch_sample(buf, n, kVocab, params, tokens, nullptr, nullptr, stream);
        cudaEventRecord(e1, stream);
        check(cudaEventSynchronize(e1), "kernel");
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (it >= 3) us.push_back(ms * 1e3);
      }
      const double kernel_us = median(us);
      const double floor_us = bytes / bw * 1e6;  // one read of the logits
      // The whole op through the backend (params up, tokens down, host clock).
      hardkv::SampleRows rows;
      for (const auto& p : hp) {
        rows.temperature.push_back(p.temperature);
        rows.top_k.push_back(p.top_k);
        rows.top_p.push_back(p.top_p);
        rows.min_p.push_back(p.min_p);
        rows.uniform.push_back(p.uniform);
        rows.forced.push_back(-1);
      }
      std::vector<double> api;
      for (int it = 0; it < iters + 3; ++it) {
        hardkv::Tensor t = hardkv::Tensor::view(bufs[it % copies], hardkv::DType::kF32, {n, kVocab},
                                                hardkv::Device::kCUDA);
        be->synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        be->sample(t, rows);
        const auto t1 = std::chrono::steady_clock::now();
        be->release_scratch();
        if (it >= 3) api.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
      double host_us = -1;
      if (host) {  // the path this replaces: download every logit, sample on the host
        std::vector<double> hs;
        for (int it = 0; it < 1; ++it) {  // slow (host sorting): one call
          hardkv::Tensor t = hardkv::Tensor::view(bufs[it % copies], hardkv::DType::kF32,
                                                  {n, kVocab}, hardkv::Device::kCUDA);
          const auto t0 = std::chrono::steady_clock::now();
          be->Backend::sample(t, rows);
          hs.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count());
        }
        host_us = median(hs);
      }
      std::printf("%-28s %5lld %12.1f %12.1f %14.1f %12.1f %12.1f\n", m.name,
                  static_cast<long long>(n), kernel_us, floor_us, kernel_us / floor_us, median(api),
                  host_us);
      std::fflush(stdout);
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
    }
    for (auto* b : bufs) cudaFree(b);
    cudaFree(params);
    cudaFree(tokens);
  }
  std::printf(
      "floor_us: one read of the logits at the copy bandwidth; floor_passes = "
      "kernel / floor (full reads of the logits the kernel's time is worth)\n");
  return 0;
}
