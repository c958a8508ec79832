// SiLU-mul kernel: one thread per 8 outputs (16-byte loads of gate and up), fp32 math.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/silu_mul.h"

namespace hardkv::cuda {
namespace {

__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }

__global__ void silu_mul_vec_kernel(const bf16* __restrict__ gate_up, bf16* __restrict__ out,
                                    int64_t inter, int64_t total_chunks) {
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  pdl_wait();
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= total_chunks) return;
  const int64_t chunks_per_row = inter / 8;
  const int64_t t = c / chunks_per_row;
  const int64_t i = (c % chunks_per_row) * 8;
  float g[8], u[8], r[8];
  load8(gate_up + t * 2 * inter + i, g);
  load8(gate_up + t * 2 * inter + inter + i, u);
#pragma unroll
  for (int k = 0; k < 8; ++k) r[k] = silu(g[k]) * u[k];
  store8(out + t * inter + i, r);
}

__global__ void silu_mul_scalar_kernel(const bf16* __restrict__ gate_up, bf16* __restrict__ out,
                                       int64_t inter, int64_t total) {
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  pdl_wait();
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int64_t t = idx / inter;
  const int64_t i = idx % inter;
  const float g = __bfloat162float(gate_up[t * 2 * inter + i]);
  const float u = __bfloat162float(gate_up[t * 2 * inter + inter + i]);
  out[idx] = __float2bfloat16(silu(g) * u);
}

}  // namespace

void launch_silu_mul(const bf16* gate_up, bf16* out, int64_t num_tokens, int64_t inter,
                     cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && inter > 0, kInvalidArgument, "silu_mul: bad shape [", num_tokens,
               ", ", inter, "]");
  if (num_tokens == 0) return;
  constexpr int kThreads = 256;
  const bool aligned =
      reinterpret_cast<uintptr_t>(gate_up) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (inter % 8 == 0 && aligned) {
    const int64_t chunks = num_tokens * inter / 8;
    launch_pdl(silu_mul_vec_kernel, dim3(static_cast<unsigned>(ceil_div(chunks, kThreads))),
               dim3(kThreads), 0, stream, gate_up, out, inter, chunks);
  } else {
    const int64_t total = num_tokens * inter;
    launch_pdl(silu_mul_scalar_kernel, dim3(static_cast<unsigned>(ceil_div(total, kThreads))),
               dim3(kThreads), 0, stream, gate_up, out, inter, total);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
