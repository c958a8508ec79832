// Skinny GEMM kernels with 128 weight rows per block, x tiles of 8-128 rows
// (gemm_skinny_kernel.cuh).
#include "kernels/cuda/gemm_skinny_kernel.cuh"

namespace hardkv::cuda::skinny {

void launch_wg2_lo(int nx, const CUtensorMap& w_map, const CUtensorMap& x_map, const Params& p,
                   unsigned grid, size_t smem, cudaStream_t stream) {
  launch_range<2, 0, 128>(nx, w_map, x_map, p, grid, smem, stream);
}

}  // namespace hardkv::cuda::skinny
