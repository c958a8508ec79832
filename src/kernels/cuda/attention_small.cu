// Paged attention instantiated for the small head dims of test models (16 and 32).
#include "kernels/cuda/attention_kernel.cuh"

namespace hardkv::cuda {

void launch_paged_attention_d16(const PagedAttentionParams& p, cudaStream_t stream) {
  launch_paged_attention_impl<16>(p, stream);
}

void launch_paged_attention_d32(const PagedAttentionParams& p, cudaStream_t stream) {
  launch_paged_attention_impl<32>(p, stream);
}

}  // namespace hardkv::cuda
