// Bias add on fp32 rows (used after a GEMM with fp32 output and a bias).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/gemm.h"

namespace hardkv::cuda {
namespace {

__global__ void bias_add_f32_kernel(float* out, const bf16* __restrict__ bias, int64_t cols,
                                    int64_t total) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx < total) out[idx] += __bfloat162float(bias[idx % cols]);
}

}  // namespace

void launch_bias_add_f32(float* out, const bf16* bias, int64_t rows, int64_t cols,
                         cudaStream_t stream) {
  const int64_t total = rows * cols;
  if (total == 0) return;
  constexpr int kThreads = 256;
  bias_add_f32_kernel<<<ceil_div(total, kThreads), kThreads, 0, stream>>>(out, bias, cols, total);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
