// Greedy sampling of a few rows without a thread-block cluster: every block reduces a slice of a
// row to its best (logit desc, id asc) and folds it into the row's 64-bit maximum with one atomic;
// the row's last block (by an atomic count) writes the token and clears both for the next launch.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/sampling_greedy.h"
#include "kernels/cuda/sampling_keys.cuh"

namespace hardkv::cuda {
namespace {

using u64 = unsigned long long;
constexpr int kThreads = 256;
constexpr int kMinSlice = 2048;  // tokens per block at least (8 per thread)

// Per row: the running maximum and how many of the row's blocks are done; zero between launches.
struct RowState {
  u64 best;
  unsigned done;
  unsigned pad;
};

__global__ void __launch_bounds__(kThreads)
    greedy_kernel(const float* __restrict__ logits, int vocab, int slice, RowState* state,
                  int32_t* __restrict__ out_tokens, int32_t* __restrict__ out_tokens_copy) {
  const int row = blockIdx.y;
  const int begin = blockIdx.x * slice;
  const int end = min(vocab, begin + slice);
  const float* p = logits + static_cast<int64_t>(row) * vocab;
  u64 best = 0;  // below every logit (pack_arg)
  if ((reinterpret_cast<uintptr_t>(p + begin) & 15) == 0) {
    const int n4 = (end - begin) >> 2;
    const float4* p4 = reinterpret_cast<const float4*>(p + begin);
    for (int i = threadIdx.x; i < n4; i += kThreads) {
      const float4 v = __ldg(p4 + i);
      const int id = begin + 4 * i;
      best = max(best, pack_arg(v.x, id));
      best = max(best, pack_arg(v.y, id + 1));
      best = max(best, pack_arg(v.z, id + 2));
      best = max(best, pack_arg(v.w, id + 3));
    }
    for (int i = begin + 4 * n4 + threadIdx.x; i < end; i += kThreads) {
      best = max(best, pack_arg(__ldg(p + i), i));
    }
  } else {
    for (int i = begin + threadIdx.x; i < end; i += kThreads) {
      best = max(best, pack_arg(__ldg(p + i), i));
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) best = max(best, __shfl_xor_sync(0xffffffffu, best, o));
  __shared__ u64 warp_best[kThreads / 32];
  if ((threadIdx.x & 31) == 0) warp_best[threadIdx.x >> 5] = best;
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int w = 1; w < kThreads / 32; ++w) best = max(best, warp_best[w]);
  RowState& s = state[row];
  atomicMax(&s.best, best);
  __threadfence();  // the maximum lands before the count that may make another block the last
  if (atomicAdd(&s.done, 1u) != gridDim.x - 1) return;
  const u64 row_best = atomicExch(&s.best, 0ull);  // every block's maximum is in; clear it
  s.done = 0;
  const int32_t token = packed_id(row_best);
  out_tokens[row] = token;
  if (out_tokens_copy) out_tokens_copy[row] = token;
}

}  // namespace

void launch_sample_greedy(const float* logits, int64_t num_rows, int64_t vocab,
                          int32_t* out_tokens, int32_t* out_tokens_copy, int num_sms,
                          cudaStream_t stream) {
  CUDA_REQUIRE(num_rows >= 0 && num_rows <= kGreedyMaxRows && vocab > 0 && vocab < INT_MAX / 2,
               kInvalidArgument, "sample_greedy: ", num_rows, " rows of ", vocab,
               " logits (at most ", kGreedyMaxRows, " rows)");
  if (num_rows == 0) return;
  // Zeroed once; every launch leaves it zeroed (the last block of each row clears its state).
  static RowState* state = [] {
    RowState* s = nullptr;
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s), kGreedyMaxRows * sizeof(RowState)));
    CUDA_CHECK(cudaMemset(s, 0, kGreedyMaxRows * sizeof(RowState)));
    return s;
  }();
  // About two blocks per SM over all rows, each at least kMinSlice tokens (a multiple of 4, so
  // slices stay 16-byte aligned when rows are).
  const int64_t by_size = (vocab + kMinSlice - 1) / kMinSlice;
  const int64_t by_sms = std::max<int64_t>(1, 2 * num_sms / num_rows);
  const int64_t blocks = std::max<int64_t>(1, std::min(by_size, by_sms));
  const int slice = static_cast<int>(((vocab + blocks - 1) / blocks + 3) / 4 * 4);
  const int grid_x = static_cast<int>((vocab + slice - 1) / slice);
  greedy_kernel<<<dim3(grid_x, static_cast<unsigned>(num_rows)), kThreads, 0, stream>>>(
      logits, static_cast<int>(vocab), slice, state, out_tokens, out_tokens_copy);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
