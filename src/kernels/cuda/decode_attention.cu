// Decode attention front end: which shapes the decode kernel covers, and the head-dim dispatch.
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.h"

namespace hardkv::cuda {

bool decode_attention_prep_early() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_ATTN_EARLY_PREP");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

bool decode_attention_supported(int head_dim, int group) {
  const bool dim_ok = head_dim == 64 || head_dim == 128 || head_dim == 256;
  // Group 8 stays on the general kernel: with 16 G q/o registers per lane the decode kernel ran
  // at 212 registers, 2 blocks per SM, and was slower (H100, 128 x 1024 tokens, 64:8 heads:
  // 676 us against 513 us).
  const bool group_ok = group == 1 || group == 2 || group == 4;
  return dim_ok && group_ok;
}

void launch_decode_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.max_query_len <= 1, kInternal, "decode attention: max_query_len ", p.max_query_len,
               " > 1");
  switch (p.head_dim) {
    case 64:
      return launch_decode_attention_d64(p, stream);
    case 128:
      return launch_decode_attention_d128(p, stream);
    case 256:
      return launch_decode_attention_d256(p, stream);
    default:
      CUDA_REQUIRE(false, kUnsupported, "decode attention: head_dim ", p.head_dim,
                   " is not supported (64, 128, 256)");
  }
}

}  // namespace hardkv::cuda
