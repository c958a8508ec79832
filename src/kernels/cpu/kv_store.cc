// CPU store of new K/V rows into the paged cache.
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void kv_store(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
              int64_t row, int64_t num_slots, float* k_cache, float* v_cache) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slots[t];
    if (slot < 0) continue;
    HARDKV_CHECK(slot < num_slots, kInternal, "KV slot {} outside the pool of {} slots", slot,
                 num_slots);
    std::memcpy(k_cache + slot * row, k + t * row, sizeof(float) * row);
    std::memcpy(v_cache + slot * row, v + t * row, sizeof(float) * row);
  }
}

}  // namespace hardkv::cpu
