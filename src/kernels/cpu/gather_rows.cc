// CPU row gather (hidden states of the tokens whose logits are wanted).
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void gather_rows(const float* x, int64_t rows, int64_t cols, const int32_t* idx, int64_t n,
                 float* out) {
  for (int64_t i = 0; i < n; ++i) {
    HARDKV_CHECK(idx[i] >= 0 && idx[i] < rows, kInternal, "gather index {} outside [0, {})",
                 idx[i], rows);
    std::memcpy(out + i * cols, x + static_cast<int64_t>(idx[i]) * cols, sizeof(float) * cols);
  }
}

}  // namespace hardkv::cpu
