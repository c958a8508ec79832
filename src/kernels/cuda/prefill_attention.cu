// Tensor-core prefill attention front end: which head dims are covered, dispatch by head dim.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/prefill_attention.h"

namespace hardkv::cuda {

bool prefill_attention_supported(int head_dim) { return head_dim == 64 || head_dim == 128; }

void launch_prefill_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 64:
      launch_prefill_attention_d64(p, stream);
      break;
    case 128:
      launch_prefill_attention_d128(p, stream);
      break;
    default:
      CUDA_REQUIRE(false, kUnsupported, "prefill attention: head_dim ", p.head_dim,
                   " has no tensor-core kernel (64, 128)");
  }
}

}  // namespace hardkv::cuda
