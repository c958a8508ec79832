// Order-preserving integer keys of fp32 logits, shared by the sampling kernels (sampling.cu,
// sampling_greedy.cu): order_key for radix select and comparisons, pack_arg for an argmax that
// breaks ties by the lowest token id with one integer maximum.
#pragma once

#include <cstdint>

namespace hardkv::cuda {

// Larger float -> larger key; -0 and +0 share a key (they compare equal on the host).
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t b = __float_as_uint(x == 0.f ? 0.f : x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// (value desc, id asc) as one integer: the larger wins; 0 is below every logit.
__device__ __forceinline__ unsigned long long pack_arg(float x, int id) {
  return (static_cast<unsigned long long>(order_key(x)) << 32) |
         (0xffffffffu - static_cast<uint32_t>(id));
}
// The token id packed by pack_arg.
__device__ __forceinline__ int packed_id(unsigned long long packed) {
  return static_cast<int>(0xffffffffu - static_cast<uint32_t>(packed));
}

}  // namespace hardkv::cuda
