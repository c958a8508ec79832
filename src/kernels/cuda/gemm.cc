// LtGemm: cuBLASLt plans cached per shape. Row-major out[N, M] = x[N, K] w[M, K]^T is computed as
// the column-major product C(M x N) = op(A) B with A = w (K x M, transposed) and B = x (K x N).
#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "kernels/cuda/cuda_check.h"

namespace hardkv::cuda {

struct LtGemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool epilogue_bias = false;  // the bias pointer is set per call (CUBLASLT_EPILOGUE_BIAS)
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

namespace {

// Largest power of two <= 256 dividing the address (cuBLASLt picks kernels by alignment).
int alignment_of(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  int a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

}  // namespace

LtGemm::LtGemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

LtGemm::~LtGemm() {
  for (auto& [key, plan] : plans_) delete plan;
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

LtGemm::Key LtGemm::key_for(const void* x, const void* w, const void* bias, const void* out,
                            bool out_f32, int64_t n, int64_t m, int64_t k) {
  // The bf16 epilogue takes the bias; an fp32 output gets it from a separate kernel.
  const bool epilogue_bias = bias != nullptr && !out_f32;
  return Key{n,
             m,
             k,
             out_f32,
             epilogue_bias,
             alignment_of(x),
             alignment_of(w),
             alignment_of(out),
             epilogue_bias ? alignment_of(bias) : 0};
}

std::vector<cublasLtMatmulHeuristicResult_t> LtGemm::describe(Plan& plan, const Key& key,
                                                              int max_algos) {
  const auto [n, m, k, out_f32, has_bias, align_x, align_w, align_out, align_bias] = key;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                              sizeof(trans_a)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                              sizeof(trans_b)));
  if (has_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_16BF;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                sizeof(epi)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                &bias_type, sizeof(bias_type)));
  }
  const cudaDataType_t c_type = out_f32 ? CUDA_R_32F : CUDA_R_16BF;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, k, m, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, k, n, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, c_type, m, n, m));

  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = workspace_bytes_;
  const uint32_t al_a = align_w, al_b = align_x, al_c = align_out, al_d = align_out;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof(ws));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                       sizeof(al_a));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                       sizeof(al_b));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                       sizeof(al_c));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d,
                                       sizeof(al_d));
  (void)align_bias;
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(max_algos));
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      handle_, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, max_algos, results.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  HARDKV_CHECK(st == CUBLAS_STATUS_SUCCESS && found > 0, kUnsupported,
               "cuBLASLt has no algorithm for linear n={} m={} k={} out={} bias={} ({})", n, m, k,
               out_f32 ? "F32" : "BF16", has_bias, cublasLtGetStatusString(st));
  results.resize(static_cast<size_t>(found));
  return results;
}

LtGemm::Plan& LtGemm::plan_for(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  plan->epilogue_bias = std::get<4>(key);
  plan->algo = describe(*plan, key, 1)[0].algo;
  Plan* p = plan.release();
  plans_.emplace(key, p);
  return *p;
}

void LtGemm::matmul(Plan& plan, const cublasLtMatmulAlgo_t& algo, const __nv_bfloat16* x,
                    const __nv_bfloat16* w, const __nv_bfloat16* bias, void* out,
                    cudaStream_t stream) {
  if (plan.epilogue_bias) {
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                sizeof(bias)));
  }
  const float alpha = 1.f, beta = 0.f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, out, plan.c,
                              out, plan.c, &algo, workspace_, workspace_bytes_, stream));
}

void LtGemm::run(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias,
                 void* out, bool out_f32, int64_t n, int64_t m, int64_t k, cudaStream_t stream) {
  HARDKV_CHECK(n >= 0 && m > 0 && k > 0, kInvalidArgument, "linear: bad sizes n={} m={} k={}", n, m,
               k);
  if (n == 0) return;
  Plan& plan = plan_for(key_for(x, w, bias, out, out_f32, n, m, k));
  matmul(plan, plan.algo, x, w, bias, out, stream);
  if (bias != nullptr && out_f32) {
    launch_bias_add_f32(static_cast<float*>(out), bias, n, m, stream);
  }
}

std::vector<LtGemm::Candidate> LtGemm::time_candidates(const __nv_bfloat16* x,
                                                       const __nv_bfloat16* w,
                                                       const __nv_bfloat16* bias, void* out,
                                                       bool out_f32, int64_t n, int64_t m,
                                                       int64_t k, cudaStream_t stream,
                                                       int max_algos, int reps, int w_copies) {
  HARDKV_CHECK(n > 0 && m > 0 && k > 0 && max_algos > 0 && reps > 0 && w_copies > 0,
               kInvalidArgument, "time_candidates: n={} m={} k={} max_algos={} reps={} copies={}",
               n, m, k, max_algos, reps, w_copies);
  const Key key = key_for(x, w, bias, out, out_f32, n, m, k);
  Plan plan;
  plan.epilogue_bias = std::get<4>(key);
  const std::vector<cublasLtMatmulHeuristicResult_t> algos = describe(plan, key, max_algos);
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<Candidate> out_list;
  for (size_t i = 0; i < algos.size(); ++i) {
    Candidate c;
    c.rank = static_cast<int>(i);
    c.waves = algos[i].wavesCount;
    c.workspace = algos[i].workspaceSize;
    try {
      // Back to back, as a model's GEMMs run: launches overlap the previous call's execution.
      std::vector<float> us;
      for (int r = 0; r < 2; ++r) matmul(plan, algos[i].algo, x, w, bias, out, stream);
      for (int t = 0; t < 3; ++t) {
        CUDA_CHECK(cudaEventRecord(e0, stream));
        for (int r = 0; r < reps; ++r) {
          matmul(plan, algos[i].algo, x, w + (r % w_copies) * m * k, bias, out, stream);
        }
        CUDA_CHECK(cudaEventRecord(e1, stream));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0.f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        us.push_back(ms * 1e3f / static_cast<float>(reps));
      }
      c.us = *std::min_element(us.begin(), us.end());
    } catch (const Error&) {
      c.us = -1.f;
    }
    out_list.push_back(c);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return out_list;
}

}  // namespace hardkv::cuda
