// CPU qkv_prepare: split the fused projection, then the same rms_norm / rope / kv_store loops the
// unfused ops run.
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace hardkv::cpu {

void qkv_prepare(const QkvPrepareArgs& a) {
  const int64_t t_n = a.num_tokens, hq = a.num_heads, hkv = a.num_kv_heads, d = a.head_dim;
  const int64_t width = (hq + 2 * hkv) * d;
  std::vector<float> k(static_cast<size_t>(t_n * hkv * d)), v(k.size());
  for (int64_t t = 0; t < t_n; ++t) {
    const float* row = a.qkv + t * width;
    std::memcpy(a.q_out + t * hq * d, row, sizeof(float) * hq * d);
    std::memcpy(k.data() + t * hkv * d, row + hq * d, sizeof(float) * hkv * d);
    std::memcpy(v.data() + t * hkv * d, row + (hq + hkv) * d, sizeof(float) * hkv * d);
  }
  if (a.q_norm) rms_norm(a.q_out, a.q_norm, t_n * hq, d, a.eps, a.q_out);
  if (a.k_norm) rms_norm(k.data(), a.k_norm, t_n * hkv, d, a.eps, k.data());
  rope(a.q_out, t_n, hq, d, a.positions, a.cos_sin, a.max_pos);
  rope(k.data(), t_n, hkv, d, a.positions, a.cos_sin, a.max_pos);
  kv_store(k.data(), v.data(), a.slots, t_n, hkv * d, a.num_slots, a.k_cache, a.v_cache);
}

}  // namespace hardkv::cpu
