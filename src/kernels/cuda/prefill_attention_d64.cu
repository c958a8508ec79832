// Tensor-core prefill attention instantiated for head_dim 64 (one head dim per translation unit).
#include "kernels/cuda/prefill_attention_kernel.cuh"

namespace hardkv::cuda {

void launch_prefill_attention_d64(const PagedAttentionParams& p, cudaStream_t stream) {
  launch_prefill_attention_impl<64>(p, stream);
}

}  // namespace hardkv::cuda
