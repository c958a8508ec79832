// Decode attention instantiated for head_dim 256, groups 1/2/4 (one head dim per translation unit).
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/decode_attention_kernel.cuh"

namespace hardkv::cuda {

void launch_decode_attention_d256(const PagedAttentionParams& p, cudaStream_t stream) {
  launch_decode_attention_for_dim<256>(p, stream);
}

}  // namespace hardkv::cuda
