// Paged attention instantiated for head_dim 64 (one head dim per translation unit).
#include "kernels/cuda/attention_kernel.cuh"

namespace hardkv::cuda {

void launch_paged_attention_d64(const PagedAttentionParams& p, cudaStream_t stream) {
  launch_paged_attention_impl<64>(p, stream);
}

}  // namespace hardkv::cuda
