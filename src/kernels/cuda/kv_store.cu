// KV-store kernel: one block per new token copies its K and V rows (16-byte vectors when the
// row allows) into the token's cache slot.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/kv_store.h"

namespace hardkv::cuda {
namespace {

template <int kVec>
__global__ void kv_store_kernel(const bf16* __restrict__ k, const bf16* __restrict__ v,
                                const int32_t* __restrict__ slots, bf16* __restrict__ k_cache,
                                bf16* __restrict__ v_cache, int64_t row, int64_t num_slots) {
  const int64_t t = blockIdx.x;
  const int32_t slot = slots[t];
  if (slot < 0 || slot >= num_slots) return;
  const bf16* ks = k + t * row;
  const bf16* vs = v + t * row;
  bf16* kd = k_cache + static_cast<int64_t>(slot) * row;
  bf16* vd = v_cache + static_cast<int64_t>(slot) * row;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * kVec; i < row;
       i += static_cast<int64_t>(blockDim.x) * kVec) {
    if constexpr (kVec == 8) {
      *reinterpret_cast<Bf16x8*>(kd + i) = *reinterpret_cast<const Bf16x8*>(ks + i);
      *reinterpret_cast<Bf16x8*>(vd + i) = *reinterpret_cast<const Bf16x8*>(vs + i);
    } else {
      kd[i] = ks[i];
      vd[i] = vs[i];
    }
  }
}

}  // namespace

void launch_kv_store(const bf16* k, const bf16* v, const int32_t* slots, bf16* k_cache,
                     bf16* v_cache, int64_t num_tokens, int64_t row, int64_t num_slots,
                     cudaStream_t stream) {
  CUDA_REQUIRE(num_tokens >= 0 && row > 0 && num_slots > 0, kInvalidArgument,
               "kv_store: bad sizes tokens=", num_tokens, " row=", row, " slots=", num_slots);
  if (num_tokens == 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(k) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(v) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(k_cache) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(v_cache) % 16 == 0;
  if (row % 8 == 0 && aligned) {
    const int threads = static_cast<int>(std::clamp<int64_t>(ceil_div(row / 8, 32) * 32, 32, 256));
    kv_store_kernel<8>
        <<<num_tokens, threads, 0, stream>>>(k, v, slots, k_cache, v_cache, row, num_slots);
  } else {
    const int threads = static_cast<int>(std::clamp<int64_t>(ceil_div(row, 32) * 32, 32, 256));
    kv_store_kernel<1>
        <<<num_tokens, threads, 0, stream>>>(k, v, slots, k_cache, v_cache, row, num_slots);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
