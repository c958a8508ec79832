// HARD-KV row copies (see hkv_copy_rows.h): one warp per row, 16-byte chunks.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/hkv_copy_rows.h"

namespace hardkv::cuda {
namespace {

constexpr int kWarps = 4;

__global__ void __launch_bounds__(kWarps * 32) hkv_copy_rows_kernel(const HkvCopyRowsParams p) {
  const int i = blockIdx.x * kWarps + threadIdx.x / 32;
  if (i >= p.num_rows) return;
  const int64_t s = p.src_rows ? p.src_rows[i] : i, d = p.dst_rows ? p.dst_rows[i] : i;
  if (s < 0 || d < 0) return;  // a skipped row (padding rows of a graph step)
  const uint4* src = reinterpret_cast<const uint4*>(p.src + s * p.row_elems);
  uint4* dst = reinterpret_cast<uint4*>(p.dst + d * p.row_elems);
  for (int c = threadIdx.x % 32; c < p.row_elems / 8; c += 32) dst[c] = src[c];
}

}  // namespace

void launch_hkv_copy_rows(const HkvCopyRowsParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.row_elems > 0 && p.row_elems % 8 == 0 && p.num_rows >= 0, kInvalidArgument,
               "hkv copy rows: row_elems ", p.row_elems, " must be a positive multiple of 8, rows ",
               p.num_rows);
  if (p.num_rows == 0) return;
  CUDA_REQUIRE(p.src && p.dst, kInvalidArgument, "hkv copy rows: null src or dst");
  hkv_copy_rows_kernel<<<(p.num_rows + kWarps - 1) / kWarps, kWarps * 32, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
