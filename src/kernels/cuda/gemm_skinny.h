// Skinny tensor-core GEMM for decode-sized batches (a few to 256 rows of x):
// out[n, m] = x[n, k] . w[m, k]^T (+ bias[m]), bf16 operands, fp32 accumulation, bf16 out.
// Each block owns bm = 64 or 128 weight rows and one K range of all n rows: TMA streams the
// weight and x tiles (128-byte swizzle) through an mbarrier ring, the weights of the first stages
// requested before pdl_wait() (no earlier kernel writes them), and wgmma (weights as A, x as B,
// both from shared memory) accumulates out^T. K ranges ("splits") form one thread-block cluster
// and add their fp32 partial tiles through distributed shared memory, so no partials reach
// global memory. cuBLASLt takes 7-12 us for the Qwen3-0.6B layers at 16-256 rows against a
// 1.4-4.2 us weight-bytes floor (docs/BENCHMARKS.md, session 6); this kernel targets that gap.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hardkv::cuda {

// The rows of x the skinny GEMM covers (above kGemvMaxRows the GEMV stops).
inline constexpr int64_t kGemmSkinnyMaxRows = 256;

// A tile configuration: bm weight rows per block (64 or 128) and K splits per cluster
// (1, 2, 4 or 8). bm == 0: picked by gemm_skinny_pick.
struct GemmSkinnyConfig {
  int bm = 0;
  int splits = 0;
  int max_stages = 0;  // cap on the ring's stages (0: as many as shared memory allows, <= 16)
  int rotate = 0;      // 1: each block starts its K loop at its own step (measured slower)
};

// True when launch_gemm_skinny can run the problem: 1 <= n <= 256, k % 64 == 0 (k >= 128),
// m % 64 == 0 (m <= 32768), some tile configuration fits shared memory and every pointer is
// 16-byte aligned.
bool gemm_skinny_supported(const void* x, const void* w, const void* bias, const void* out,
                           int64_t n, int64_t m, int64_t k);

// Whether CudaBackend::linear should use it for n rows of an [m, k] weight (the caller also
// checks gemm_skinny_supported and that the GEMV does not cover n). HARDKV_GEMM_SKINNY (read
// once): unset or 0: never (the default: on the whole nano-vLLM run the kernel has not been
// measured faster yet, see docs/BENCHMARKS.md session 7); 1: the shapes and row counts where
// bench_gemm measured it faster than cuBLASLt by more than the in-model loss seen at batch 128 /
// 256 (the Qwen3-0.6B and Qwen3-8B layer shapes); all: every supported problem.
bool gemm_skinny_dispatch(int64_t n, int64_t m, int64_t k);

// The configuration launch_gemm_skinny uses for (n, m, k) on num_sms multiprocessors: 64 weight
// rows per block, K splits until there are 64 blocks and, for long K ranges (> 32 steps), once
// more while the grid stays one wave (the fastest configurations of bench_gemm's sweep on H100
// for every Qwen3-0.6B / 8B shape); bm == 0 when none is valid.
GemmSkinnyConfig gemm_skinny_pick(int64_t n, int64_t m, int64_t k, int num_sms);

// Every configuration valid for (n, m, k) (bench_gemm's sweep and the tests).
std::vector<GemmSkinnyConfig> gemm_skinny_configs(int64_t n, int64_t m, int64_t k);

std::string gemm_skinny_config_name(const GemmSkinnyConfig& c);

// x bf16 [n, k]; w bf16 [m, k]; bias bf16 [m] or null; out bf16 [n, m]. cfg.bm == 0:
// gemm_skinny_pick. Launched with PDL (weights requested before pdl_wait()).
void launch_gemm_skinny(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias,
                        __nv_bfloat16* out, int64_t n, int64_t m, int64_t k, int num_sms,
                        cudaStream_t stream, GemmSkinnyConfig cfg = {});

}  // namespace hardkv::cuda
