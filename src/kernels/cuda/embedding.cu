// Row-gather kernel behind embedding lookup and gather_rows: one block per output row, 16-byte
// vector copies when the row width allows (rows are memory-bound; nothing else to optimise).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/embedding.h"

namespace hardkv::cuda {
namespace {

// kVec elements per access: 8 (16 bytes) when width % 8 == 0, else 1.
template <int kVec>
__global__ void gather_rows_kernel(const bf16* __restrict__ src, const int32_t* __restrict__ idx,
                                   const int32_t* __restrict__ sampled, int32_t num_sampled,
                                   bf16* __restrict__ out, int64_t width, int64_t num_src_rows) {
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  pdl_wait();
  const int64_t row = blockIdx.x;
  int32_t src_row = idx[row];
  if (src_row < 0 && sampled != nullptr) {  // placeholder -(r + 1): the token sampled for row r
    const int32_t r = -(src_row + 1);
    src_row = r < num_sampled ? sampled[r] : -1;
  }
  const bool valid = src_row >= 0 && src_row < num_src_rows;
  const bf16* s = src + static_cast<int64_t>(src_row) * width;
  bf16* o = out + row * width;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * kVec; i < width;
       i += static_cast<int64_t>(blockDim.x) * kVec) {
    if constexpr (kVec == 8) {
      Bf16x8 v{};
      if (valid) v = *reinterpret_cast<const Bf16x8*>(s + i);
      *reinterpret_cast<Bf16x8*>(o + i) = v;
    } else {
      o[i] = valid ? s[i] : __float2bfloat16(0.f);
    }
  }
}

void launch_gather(const bf16* src, const int32_t* idx, const int32_t* sampled, int32_t num_sampled,
                   bf16* out, int64_t num_rows, int64_t width, int64_t num_src_rows,
                   cudaStream_t stream) {
  CUDA_REQUIRE(width > 0 && num_src_rows > 0 && num_rows >= 0, kInvalidArgument,
               "gather: bad sizes rows=", num_rows, " width=", width, " src_rows=", num_src_rows);
  if (num_rows == 0) return;
  CUDA_REQUIRE(num_rows <= 0x7fffffff, kInvalidArgument, "gather: ", num_rows, " rows is too many");
  const bool vec = width % 8 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int64_t per_thread = vec ? 8 : 1;
  const int threads = static_cast<int>(
      std::min<int64_t>(256, std::max<int64_t>(32, ceil_div(width / per_thread, 32) * 32)));
  if (vec) {
    launch_pdl(gather_rows_kernel<8>, dim3(static_cast<unsigned>(num_rows)), dim3(threads), 0,
               stream, src, idx, sampled, num_sampled, out, width, num_src_rows);
  } else {
    launch_pdl(gather_rows_kernel<1>, dim3(static_cast<unsigned>(num_rows)), dim3(threads), 0,
               stream, src, idx, sampled, num_sampled, out, width, num_src_rows);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_embedding(const int32_t* ids, const int32_t* sampled, int32_t num_sampled,
                      const bf16* table, bf16* out, int64_t num_tokens, int64_t hidden,
                      int64_t vocab_size, cudaStream_t stream) {
  launch_gather(table, ids, sampled, num_sampled, out, num_tokens, hidden, vocab_size, stream);
}

void launch_gather_rows(const bf16* x, const int32_t* idx, bf16* out, int64_t num_rows,
                        int64_t width, int64_t num_src_rows, cudaStream_t stream) {
  launch_gather(x, idx, nullptr, 0, out, num_rows, width, num_src_rows, stream);
}

}  // namespace hardkv::cuda
