// GEMM through cuBLASLt for linear layers: out[N, M] = x[N, K] w[M, K]^T (+ bias[M]),
// bf16 operands, fp32 accumulation, bf16 or fp32 output.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace hardkv::cuda {

class LtGemm {
 public:
  // workspace_bytes of device memory are allocated once for cuBLASLt's split-K and similar.
  explicit LtGemm(size_t workspace_bytes = 32u << 20);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // x bf16 [n, k] row-major; w bf16 [m, k] row-major; bias bf16 [m] or null;
  // out bf16 or F32 (out_f32) [n, m] row-major. Plans (descriptors + heuristic algorithm) are
  // cached per shape and pointer alignment, so a repeated shape costs no heuristic query and the
  // call is capturable in a CUDA graph.
  void run(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias, void* out,
           bool out_f32, int64_t n, int64_t m, int64_t k, cudaStream_t stream);

  // One of cuBLASLt's heuristic algorithms for a shape, timed (bench_gemm).
  struct Candidate {
    int rank = 0;       // position in cuBLASLt's heuristic order (0 = what run() uses)
    float us = 0.f;     // time per call of reps back-to-back calls (best of 3), microseconds;
                        // < 0 when the call failed
    float waves = 0.f;  // cuBLASLt's wave count estimate for the algorithm
    size_t workspace = 0;
  };
  // Times up to max_algos heuristic algorithms for the shape of run(x, w, bias, out, ...) on
  // stream (reps back-to-back calls, best of 3, after 2 warm-up calls; out is overwritten). w holds
  // w_copies consecutive [m, k] matrices, used in turn so that the weights do not stay in L2 as one
  // layer's would not. Synchronises stream.
  std::vector<Candidate> time_candidates(const __nv_bfloat16* x, const __nv_bfloat16* w,
                                         const __nv_bfloat16* bias, void* out, bool out_f32,
                                         int64_t n, int64_t m, int64_t k, cudaStream_t stream,
                                         int max_algos, int reps, int w_copies);

 private:
  struct Plan;
  // (n, m, k, out_f32, has_bias, alignment of x, w, out, bias)
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int, int, int, int>;
  static Key key_for(const void* x, const void* w, const void* bias, const void* out, bool out_f32,
                     int64_t n, int64_t m, int64_t k);
  // The descriptors of key's problem into plan; cuBLASLt's first max_algos heuristic algorithms.
  std::vector<cublasLtMatmulHeuristicResult_t> describe(Plan& plan, const Key& key, int max_algos);
  Plan& plan_for(const Key& key);
  void matmul(Plan& plan, const cublasLtMatmulAlgo_t& algo, const __nv_bfloat16* x,
              const __nv_bfloat16* w, const __nv_bfloat16* bias, void* out, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;  // device, workspace_bytes_
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan*> plans_;
};

// out[r, :] += bias[:]    out F32 [rows, cols]; bias bf16 [cols]. For fp32 outputs with a bias,
// which the bf16 GEMM epilogue does not cover.
void launch_bias_add_f32(float* out, const __nv_bfloat16* bias, int64_t rows, int64_t cols,
                         cudaStream_t stream);

}  // namespace hardkv::cuda
