// Tiered attention instantiated for head_dim 256 (one head dim per translation unit).
#include "kernels/cuda/tiered_attention_kernel.cuh"

namespace hardkv::cuda {

void launch_tiered_attention_d256(const TieredAttentionParams& p, cudaStream_t stream) {
  launch_tiered_attention_impl<256>(p, stream);
}

}  // namespace hardkv::cuda
