// Decode attention instantiated for head_dim 64, groups 1/2/4 (one head dim per translation unit).
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/decode_attention_kernel.cuh"

namespace hardkv::cuda {

void launch_decode_attention_d64(const PagedAttentionParams& p, cudaStream_t stream) {
  launch_decode_attention_for_dim<64>(p, stream);
}

}  // namespace hardkv::cuda
