// Tiered attention instantiated for head_dim 64 (one head dim per translation unit): the
// tensor-core kernel or the CUDA-core one, as planned.
#include "kernels/cuda/tiered_attention_kernel.cuh"
#include "kernels/cuda/tiered_attention_mma.cuh"

namespace hardkv::cuda {

void launch_tiered_attention_d64(const TieredAttentionParams& p, cudaStream_t stream) {
  if (p.mma_stages > 0) {
    launch_tiered_attention_mma<64>(p, stream);
  } else {
    launch_tiered_attention_impl<64>(p, stream);
  }
}

}  // namespace hardkv::cuda
