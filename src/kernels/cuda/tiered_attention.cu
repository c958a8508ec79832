// Tiered attention front end: split planning, shape checks, head-dim dispatch, and the combine
// kernel that merges split partials (weights l_k * 2^(m_k - max m); empty splits have l = 0).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/tiered_attention.h"

namespace hardkv::cuda {
namespace {

// One block per (token, head); thread d owns output dim d.
__global__ void combine_tiered_splits_kernel(const float* __restrict__ partial_o,
                                             const float* __restrict__ partial_ml,
                                             bf16* __restrict__ out, int num_splits, int64_t rows,
                                             int head_dim) {
  const int64_t row = blockIdx.x;  // token * num_q_heads + head
  const int d = threadIdx.x;
  float m_max = -INFINITY;
  for (int s = 0; s < num_splits; ++s) {
    if (partial_ml[(s * rows + row) * 2 + 1] > 0.f) {
      m_max = fmaxf(m_max, partial_ml[(s * rows + row) * 2]);
    }
  }
  float acc = 0.f, wsum = 0.f;
  for (int s = 0; s < num_splits; ++s) {
    const float l = partial_ml[(s * rows + row) * 2 + 1];
    if (!(l > 0.f)) continue;  // a split with no visible token
    const float w = l * exp2f(partial_ml[(s * rows + row) * 2] - m_max);
    wsum += w;
    acc += w * partial_o[(s * rows + row) * head_dim + d];
  }
  out[row * head_dim + d] = __float2bfloat16(wsum > 0.f ? acc / wsum : 0.f);
}

// Smallest entry count a split is given: below it the merge costs more than the split saves.
constexpr int64_t kMinSplitEntries = 256;
constexpr int64_t kMaxSplits = 64;

}  // namespace

// The tensor-core kernel where it covers the head dim; HARDKV_TIERED_MMA=0 keeps the CUDA-core
// kernel (A/B timing).
bool use_mma_kernel(int head_dim) {
  static const bool enabled = [] {
    const char* v = std::getenv("HARDKV_TIERED_MMA");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled && head_dim % 16 == 0 && head_dim >= 16 && head_dim <= 128;
}

size_t plan_tiered_attention(TieredAttentionParams& p, int num_sms, int blocks_per_sm) {
  const int group = std::max(1, p.num_q_heads / std::max(1, p.num_kv_heads));
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(p.max_query_len) * group);
  p.rows_per_block = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : 8;
  // Few rows leave registers for more loads in flight.
  p.tokens_in_flight = p.rows_per_block <= 2 ? 8 : 4;
  p.pipelined = 0;
  // 2 stages: 3 blocks (12 warps) per multiprocessor at head_dim 128 where 3 stages fit 2; H100,
  // 32 x 16k-token Qwen3-8B decode: 0.097 vs 0.101 ms/layer (BENCHMARKS_HARDKV.md, session 4).
  p.mma_stages = use_mma_kernel(p.head_dim) ? 2 : 0;
  const int64_t rows_per_block = p.mma_stages > 0 ? 16 : p.rows_per_block;
  const int64_t blocks =
      ceil_div(rows, rows_per_block) * std::max(1, p.num_seqs) * std::max(1, p.num_kv_heads);
  const int64_t max_list = std::max<int64_t>(
      1, static_cast<int64_t>(std::max(0, p.max_cond_len)) + std::max(0, p.max_dense_len));
  int64_t splits = 1;
  // A block holds only a few tokens' loads in flight, so more blocks than fit at once keep the
  // multiprocessors busy and even out lists of different lengths.
  const int64_t target = static_cast<int64_t>(std::max(1, blocks_per_sm)) * num_sms;
  if (blocks < target) {
    splits = std::min<int64_t>(
        {ceil_div(target, blocks), ceil_div(max_list, kMinSplitEntries), kMaxSplits});
    splits = std::max<int64_t>(splits, 1);
  }
  p.num_splits = static_cast<int>(splits);
  if (p.num_splits == 1) return 0;
  const size_t out_rows = static_cast<size_t>(p.num_tokens) * p.num_q_heads;
  return static_cast<size_t>(p.num_splits) * out_rows * (p.head_dim + 2);
}

void launch_tiered_attention(const TieredAttentionParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.num_q_heads > 0 && p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0,
               kInvalidArgument, "tiered attention: ", p.num_q_heads,
               " query heads is not a multiple of ", p.num_kv_heads, " kv heads");
  CUDA_REQUIRE(p.page_size > 0 && p.dense_block_size > 0 && p.num_seqs >= 0 && p.num_tokens >= 0,
               kInvalidArgument, "tiered attention: bad sizes page_size=", p.page_size,
               " block_size=", p.dense_block_size, " seqs=", p.num_seqs, " tokens=", p.num_tokens);
  CUDA_REQUIRE(p.max_query_len >= 0 && p.max_cond_len >= 0 && p.max_dense_len >= 0,
               kInvalidArgument, "tiered attention: negative bounds");
  CUDA_REQUIRE(p.q && p.out && p.page_indptr && p.cond_len && p.query_indptr && p.dense_len &&
                   p.dense_start && p.dense_block_indptr,
               kInvalidArgument, "tiered attention: a required pointer is null");
  CUDA_REQUIRE((p.mask_indptr == nullptr) == (p.mask_words == nullptr), kInvalidArgument,
               "tiered attention: mask_indptr and mask_words must be both set or both null");
  CUDA_REQUIRE(p.num_splits >= 1 && p.rows_per_block > 0 && p.tokens_in_flight > 0, kInternal,
               "tiered attention: plan_tiered_attention() was not called");
  CUDA_REQUIRE(p.mma_stages == 0 || (p.head_dim <= 128 && p.head_dim % 16 == 0), kInternal,
               "tiered attention: the tensor-core kernel does not cover head_dim ", p.head_dim);
  CUDA_REQUIRE(p.num_splits == 1 || (p.partial_o && p.partial_ml), kInternal,
               "tiered attention: ", p.num_splits, " splits need a workspace");
  if (p.num_seqs == 0 || p.num_tokens == 0) return;
  switch (p.head_dim) {
    case 32:
      launch_tiered_attention_d32(p, stream);
      break;
    case 64:
      launch_tiered_attention_d64(p, stream);
      break;
    case 128:
      launch_tiered_attention_d128(p, stream);
      break;
    case 256:
      launch_tiered_attention_d256(p, stream);
      break;
    default:
      CUDA_REQUIRE(false, kUnsupported, "tiered attention: head_dim ", p.head_dim,
                   " is not supported (32, 64, 128, 256)");
  }
  if (p.num_splits > 1) {
    const int64_t rows = static_cast<int64_t>(p.num_tokens) * p.num_q_heads;
    combine_tiered_splits_kernel<<<rows, p.head_dim, 0, stream>>>(p.partial_o, p.partial_ml, p.out,
                                                                  p.num_splits, rows, p.head_dim);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace hardkv::cuda
