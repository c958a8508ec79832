// CPU embedding lookup.
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void embedding(const int32_t* ids, int64_t num_tokens, const float* table, int64_t vocab,
               int64_t hidden, float* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    HARDKV_CHECK(ids[t] >= 0 && ids[t] < vocab, kInvalidArgument,
                 "token id {} at position {} is outside the vocabulary [0, {})", ids[t], t, vocab);
    std::memcpy(out + t * hidden, table + static_cast<int64_t>(ids[t]) * hidden,
                sizeof(float) * hidden);
  }
}

}  // namespace hardkv::cpu
