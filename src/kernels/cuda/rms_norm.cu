// RMSNorm kernels: one block per row; each thread keeps its slice of the row in registers
// (at most kMaxChunks 16-byte chunks) so the row is read from HBM once and written once.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/rms_norm.h"

namespace hardkv::cuda {
namespace {

constexpr int kMaxChunks = 4;  // 8 elements each: rows up to 1024 threads * 32 = 32768 wide

// kAdd: residual += x first and normalise the sum (written back to x); else out = norm(x).
// The norm weights are read before pdl_wait() (no kernel of a step writes them), so their
// load overlaps the previous kernel's tail.
template <bool kAdd>
__global__ void rms_norm_vec_kernel(bf16* x, bf16* residual, const bf16* __restrict__ w, float eps,
                                    bf16* out, int64_t dim) {
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  uint4 wraw[kMaxChunks];
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int64_t i = (static_cast<int64_t>(c) * blockDim.x + threadIdx.x) * 8;
    if (i < dim) wraw[c] = *reinterpret_cast<const uint4*>(w + i);
  }
  pdl_wait();
  const int64_t row = blockIdx.x;
  bf16* xr = x + row * dim;
  float v[kMaxChunks][8];
  float sum_sq = 0.f;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int64_t i = (static_cast<int64_t>(c) * blockDim.x + threadIdx.x) * 8;
    if (i < dim) {
      load8(xr + i, v[c]);
      if constexpr (kAdd) {
        float r[8];
        load8(residual + row * dim + i, r);
#pragma unroll
        for (int k = 0; k < 8; ++k) r[k] += v[c][k];
        store8(residual + row * dim + i, r);
        // Normalise the bf16-rounded sum, as a bf16 residual stream would (the value store8
        // wrote, rounded here in registers instead of read back).
#pragma unroll
        for (int k = 0; k < 8; ++k) v[c][k] = __bfloat162float(__float2bfloat16_rn(r[k]));
      }
#pragma unroll
      for (int k = 0; k < 8; ++k) sum_sq += v[c][k] * v[c][k];
    }
  }
  const float inv = rsqrtf(block_sum(sum_sq) / static_cast<float>(dim) + eps);
  bf16* o = kAdd ? xr : out + row * dim;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int64_t i = (static_cast<int64_t>(c) * blockDim.x + threadIdx.x) * 8;
    if (i < dim) {
      float wv[8];
      unpack8(wraw[c], wv);
      float r[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) r[k] = v[c][k] * inv * wv[k];
      store8(o + i, r);
    }
  }
}

// Scalar fallback for widths that are not a multiple of 8 (tiny test models); reads x twice.
template <bool kAdd>
__global__ void rms_norm_scalar_kernel(bf16* x, bf16* residual, const bf16* __restrict__ w,
                                       float eps, bf16* out, int64_t dim) {
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  pdl_wait();
  const int64_t row = blockIdx.x;
  bf16* xr = x + row * dim;
  float sum_sq = 0.f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float val = __bfloat162float(xr[i]);
    if constexpr (kAdd) {
      bf16 s = __float2bfloat16(__bfloat162float(residual[row * dim + i]) + val);
      residual[row * dim + i] = s;
      val = __bfloat162float(s);
    }
    sum_sq += val * val;
  }
  const float inv = rsqrtf(block_sum(sum_sq) / static_cast<float>(dim) + eps);
  bf16* o = kAdd ? xr : out + row * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float val = kAdd ? __bfloat162float(residual[row * dim + i]) : __bfloat162float(xr[i]);
    o[i] = __float2bfloat16(val * inv * __bfloat162float(w[i]));
  }
}

template <bool kAdd>
void launch(bf16* x, bf16* residual, const bf16* w, float eps, bf16* out, int64_t num_rows,
            int64_t dim, cudaStream_t stream) {
  CUDA_REQUIRE(num_rows >= 0 && dim > 0, kInvalidArgument, "rms_norm: bad shape [", num_rows, ", ",
               dim, "]");
  if (num_rows == 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(w) % 16 == 0 &&
                       (kAdd ? reinterpret_cast<uintptr_t>(residual) % 16 == 0
                             : reinterpret_cast<uintptr_t>(out) % 16 == 0);
  const int64_t chunks = dim / 8;
  if (dim % 8 == 0 && aligned && chunks <= 1024 * kMaxChunks) {
    // One 16-byte chunk per thread up to 1024 threads, then up to kMaxChunks each.
    const int threads = static_cast<int>(std::clamp<int64_t>(ceil_div(chunks, 32) * 32, 32, 1024));
    launch_pdl(rms_norm_vec_kernel<kAdd>, dim3(static_cast<unsigned>(num_rows)), dim3(threads), 0,
               stream, x, residual, w, eps, out, dim);
  } else {
    const int threads = static_cast<int>(std::clamp<int64_t>(ceil_div(dim, 32) * 32, 32, 1024));
    launch_pdl(rms_norm_scalar_kernel<kAdd>, dim3(static_cast<unsigned>(num_rows)), dim3(threads),
               0, stream, x, residual, w, eps, out, dim);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_rms_norm(const bf16* x, const bf16* w, float eps, bf16* out, int64_t num_rows,
                     int64_t dim, cudaStream_t stream) {
  launch<false>(const_cast<bf16*>(x), nullptr, w, eps, out, num_rows, dim, stream);
}

void launch_add_rms_norm(bf16* x, bf16* residual, const bf16* w, float eps, int64_t num_rows,
                         int64_t dim, cudaStream_t stream) {
  launch<true>(x, residual, w, eps, nullptr, num_rows, dim, stream);
}

}  // namespace hardkv::cuda
