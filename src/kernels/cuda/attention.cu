// Paged attention front end: split-KV planning, shape checks, dispatch (decode kernel, tensor-core
// prefill kernel, or the general one, by head dim), and the combine kernel that merges split
// partials.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/prefill_attention.h"

namespace hardkv::cuda {
namespace {

constexpr int kCombineThreads = 128;
constexpr int kMaxSplits = 128;  // plan_paged_attention's cap

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[kCombineThreads / 32];
  v = warp_max(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  v = -INFINITY;
#pragma unroll
  for (int w = 0; w < kCombineThreads / 32; ++w) v = fmaxf(v, partial[w]);
  return v;
}

// One block per (token, head) row. The split weights l_s * 2^(m_s - max m) are computed once into
// shared memory; then each thread sums its dims over the splits, the loads unrolled so many are in
// flight (a rolled loop pays one L2 latency per split). Empty splits (l == 0) never wrote their o.
__global__ void __launch_bounds__(kCombineThreads)
    combine_splits_kernel(const float* __restrict__ partial_o, const float* __restrict__ partial_ml,
                          bf16* __restrict__ out, int num_splits, int64_t rows, int head_dim) {
  __shared__ float w_s[kMaxSplits];
  pdl_launch_dependents();  // no weights to fetch: let the next kernel launch and prefetch
  pdl_wait();
  const int64_t row = blockIdx.x;  // token * num_q_heads + head
  float m_max = -INFINITY;
  for (int s = threadIdx.x; s < num_splits; s += kCombineThreads) {
    m_max = fmaxf(m_max, partial_ml[(s * rows + row) * 2]);
  }
  m_max = block_max(m_max);
  float wsum = 0.f;
  for (int s = threadIdx.x; s < num_splits; s += kCombineThreads) {
    const float m = partial_ml[(s * rows + row) * 2];
    const float l = partial_ml[(s * rows + row) * 2 + 1];
    w_s[s] = l == 0.f ? 0.f : l * exp2f(m - m_max);
    wsum += w_s[s];
  }
  wsum = block_sum(wsum);  // its barriers also publish w_s
  const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
  for (int d = threadIdx.x; d < head_dim; d += kCombineThreads) {
    float acc = 0.f;
#pragma unroll 16
    for (int s = 0; s < num_splits; ++s) {
      const float o = partial_o[(s * rows + row) * head_dim + d];
      const float w = w_s[s];
      acc += w != 0.f ? w * o : 0.f;
    }
    out[row * head_dim + d] = __float2bfloat16(acc * inv);
  }
}

// The general kernel (prefill, mixed steps, and decode shapes the decode kernel does not cover).
void launch_general(const PagedAttentionParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 16:
      launch_paged_attention_d16(p, stream);
      break;
    case 32:
      launch_paged_attention_d32(p, stream);
      break;
    case 64:
      launch_paged_attention_d64(p, stream);
      break;
    case 128:
      launch_paged_attention_d128(p, stream);
      break;
    case 256:
      launch_paged_attention_d256(p, stream);
      break;
    default:
      CUDA_REQUIRE(false, kUnsupported, "CUDA attention: head_dim ", p.head_dim,
                   " is not supported (16, 32, 64, 128, 256)");
  }
}

// Steps with more than one query row per sequence on the tensor-core prefill kernel where it
// covers the head dim. HARDKV_PREFILL_ATTENTION=0 keeps them on the general kernel (A/B timing).
bool use_prefill_kernel(const PagedAttentionParams& p) {
  static const bool enabled = [] {
    const char* v = std::getenv("HARDKV_PREFILL_ATTENTION");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled && p.max_query_len > 1 && prefill_attention_supported(p.head_dim);
}

bool env_not_zero(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// The decode kernel's split cap: at batch 1 (8 KV heads) the plan would give every 64-token tile
// its own split. H100, Qwen3-0.6B batch 1 ctx 4096 (graph device time per token): 64 splits
// 1.276-1.282 ms, capped at 32 1.208 ms, at 16 1.300 ms; ctx 512 (10 splits) unchanged.
// HARDKV_ATTN_MAX_SPLITS=N sets another cap (1..kMaxSplits).
constexpr int kDecodeMaxSplitsDefault = 32;
int decode_max_splits() {
  static const int cap = [] {
    const char* v = std::getenv("HARDKV_ATTN_MAX_SPLITS");
    const int n = v != nullptr ? std::atoi(v) : 0;
    return n >= 1 && n <= kMaxSplits ? n : kDecodeMaxSplitsDefault;
  }();
  return cap;
}

// Grids of many waves (>= 8 blocks per multiprocessor) run the decode kernel's 4-blocks variant.
// H100, kernel alone (DecodeAttentionTiming, two runs), Qwen3-0.6B heads: 256 x 512 tokens
// 201.8 / 202.6 us -> 198.5 / 198.0 us; 64 x 2048 198.7 / 198.3 -> 196.0 / 195.3; but 1 x 512
// (64 splits, one step per block) 11.6 -> 13.0 / 13.4, hence only for large grids.
// HARDKV_ATTN_OCC4=0 turns it off (before/after measurements).
void set_decode_variant(PagedAttentionParams& p, int num_sms) {
  static const bool occupancy4 = env_not_zero("HARDKV_ATTN_OCC4");
  const int64_t blocks = static_cast<int64_t>(p.num_kv_heads) * p.num_splits * p.num_seqs;
  p.occupancy4 = occupancy4 && blocks >= int64_t{8} * num_sms;
}

// Small decode grids (<= 4 blocks per multiprocessor) of 2-16 splits merge their splits inside a
// thread-block cluster instead of in the combine kernel. HARDKV_ATTN_CLUSTER=0 turns it off.
bool use_cluster_merge(const PagedAttentionParams& p, int num_sms) {
  static const bool enabled = env_not_zero("HARDKV_ATTN_CLUSTER");
  const int64_t blocks = static_cast<int64_t>(p.num_kv_heads) * p.num_splits * p.num_seqs;
  return enabled && p.num_splits > 1 && p.num_splits <= kDecodeMaxClusterSplits &&
         blocks <= int64_t{4} * num_sms;
}

}  // namespace

size_t plan_paged_attention(PagedAttentionParams& p, int num_sms) {
  const int group = std::max(1, p.num_q_heads / std::max(1, p.num_kv_heads));
  const bool prefill = use_prefill_kernel(p);
  const int64_t row_tiles = ceil_div(static_cast<int64_t>(p.max_query_len) * group,
                                     prefill ? kPrefillRowTile : kAttentionRowTile);
  const int64_t blocks = row_tiles * p.num_seqs * p.num_kv_heads;
  const int64_t kv_tiles = ceil_div(std::max(1, p.max_kv_len), kAttentionKvTile);
  int64_t splits = 1;
  // The general kernel has little work in flight per block (one tile at a time): aim for ~4
  // blocks per multiprocessor when the batch alone does not provide them. The decode kernel runs
  // 4-8 blocks per multiprocessor at once and its blocks of one step have near-equal lengths:
  // aim for ~32 per multiprocessor, so the last, partly filled wave is a small fraction of the
  // time (256 x 512 tokens, 8 KV heads: 2048 blocks = 3.1 waves -> 3 splits, 9.3 waves).
  // The prefill kernel keeps 2 blocks (8 warps of mma work) resident per multiprocessor: split
  // only when the batch does not fill one such wave (short chunks over a long cached context).
  const bool decode = p.max_query_len == 1 && decode_attention_supported(p.head_dim, group);
  const int64_t target_blocks = static_cast<int64_t>(decode ? 32 : prefill ? 2 : 4) * num_sms;
  if (blocks > 0 && blocks < target_blocks) {
    splits = std::min<int64_t>({ceil_div(target_blocks, blocks), kv_tiles,
                                int64_t{decode ? decode_max_splits() : kMaxSplits}});
  }
  const int64_t tiles_per_split = ceil_div(kv_tiles, splits);
  splits = ceil_div(kv_tiles, tiles_per_split);  // drop splits that would be empty for all seqs
  p.num_splits = static_cast<int>(splits);
  p.kv_chunk = static_cast<int>(tiles_per_split * kAttentionKvTile);
  if (decode) set_decode_variant(p, num_sms);
  p.cluster_merge = decode && use_cluster_merge(p, num_sms);
  if (p.num_splits == 1 || p.cluster_merge) return 0;
  const size_t rows = static_cast<size_t>(p.num_tokens) * p.num_q_heads;
  return static_cast<size_t>(p.num_splits) * rows * (p.head_dim + 2);
}

void launch_paged_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.num_q_heads > 0 && p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0,
               kInvalidArgument, "attention: ", p.num_q_heads, " query heads is not a multiple of ",
               p.num_kv_heads, " KV heads");
  CUDA_REQUIRE(p.block_size > 0 && p.num_seqs >= 0 && p.num_tokens >= 0, kInvalidArgument,
               "attention: bad sizes block_size=", p.block_size, " seqs=", p.num_seqs,
               " tokens=", p.num_tokens);
  CUDA_REQUIRE(p.num_splits >= 1 && p.kv_chunk > 0 && p.kv_chunk % kAttentionKvTile == 0, kInternal,
               "attention: plan_paged_attention() was not called");
  CUDA_REQUIRE(p.num_splits <= kMaxSplits, kInternal, "attention: ", p.num_splits, " splits > ",
               kMaxSplits);
  CUDA_REQUIRE(p.num_splits == 1 || p.cluster_merge || (p.partial_o && p.partial_ml), kInternal,
               "attention: ", p.num_splits, " splits need a workspace");
  CUDA_REQUIRE(static_cast<int64_t>(p.num_splits) * p.kv_chunk >= p.max_kv_len, kInternal,
               "attention: splits cover ", p.num_splits * p.kv_chunk, " of ", p.max_kv_len,
               " KV positions");
  const bool decode = p.max_query_len == 1 &&
                     decode_attention_supported(p.head_dim, p.num_q_heads / p.num_kv_heads);
  CUDA_REQUIRE(p.qkv == nullptr || (decode && p.positions && p.cos_sin && p.slots && p.k_cache_w &&
                                    p.v_cache_w && p.max_pos > 0 && p.num_slots > 0),
               kInternal, "attention: fused q/k/v preparation needs the decode kernel and its "
               "inputs (max_query_len ", p.max_query_len, ", head_dim ", p.head_dim, ")");
  if (p.num_seqs == 0 || p.num_tokens == 0) return;
  if (p.cluster_merge && !(decode && p.num_splits <= kDecodeMaxClusterSplits &&
                           p.split_counters == nullptr)) {
    // A plan changed after plan_paged_attention (more splits, in-kernel merge): no clusters.
    CUDA_REQUIRE(p.partial_o && p.partial_ml, kInternal, "attention: ", p.num_splits,
                 " splits need a workspace");
    PagedAttentionParams plain = p;
    plain.cluster_merge = false;
    launch_paged_attention(plain, stream);
    return;
  }
  if (decode) {
    launch_decode_attention(p, stream);
  } else if (use_prefill_kernel(p)) {
    launch_prefill_attention(p, stream);
  } else {
    launch_general(p, stream);
  }
  if (p.num_splits > 1 && !p.cluster_merge && !(decode && p.split_counters != nullptr)) {
    const int64_t rows = static_cast<int64_t>(p.num_tokens) * p.num_q_heads;
    launch_pdl(combine_splits_kernel, dim3(static_cast<unsigned>(rows)), dim3(kCombineThreads), 0,
               stream, p.partial_o, p.partial_ml, p.out, p.num_splits, rows, p.head_dim);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace hardkv::cuda
