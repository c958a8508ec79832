// ObsQueries (see obs_queries.h).
#include "kv/obs_queries.h"

#include <algorithm>

#include "core/error.h"

namespace hardkv::kv {

ObsQueries::ObsQueries(int num_layers, int capacity, int num_q_heads, int head_dim, bool store_rows)
    : num_layers_(num_layers), capacity_(capacity), num_q_heads_(num_q_heads), head_dim_(head_dim) {
  HARDKV_CHECK(num_layers >= 1 && capacity >= 1 && num_q_heads >= 1 && head_dim >= 1,
               kInvalidArgument,
               "observation buffer needs layers, obs_window, heads, head_dim >= 1 (got {}, {}, {}, "
               "{})",
               num_layers, capacity, num_q_heads, head_dim);
  if (store_rows) {
    rows_.assign(static_cast<size_t>(num_layers) * capacity * num_q_heads * head_dim, 0.0f);
  }
  next_.assign(num_layers, 0);
  count_.assign(num_layers, 0);
}

void ObsQueries::push(int layer_idx, const float* q, int n) {
  HARDKV_CHECK(layer_idx >= 0 && layer_idx < num_layers_ && n >= 0, kInvalidArgument,
               "observation push: layer {} of {}, {} rows", layer_idx, num_layers_, n);
  const int64_t row = static_cast<int64_t>(num_q_heads_) * head_dim_;
  const int first = std::max(0, n - capacity_);  // older rows would be overwritten anyway
  if (rows_.empty()) {                           // counts only
    next_[layer_idx] = (next_[layer_idx] + n - first) % capacity_;
    count_[layer_idx] = std::min(capacity_, count_[layer_idx] + (n - first));
    return;
  }
  HARDKV_CHECK(q != nullptr || n == 0, kInvalidArgument, "observation push of {} rows without data",
               n);
  float* base = rows_.data() + static_cast<int64_t>(layer_idx) * capacity_ * row;
  for (int r = first; r < n; ++r) {
    std::copy_n(q + r * row, row, base + static_cast<int64_t>(next_[layer_idx]) * row);
    next_[layer_idx] = (next_[layer_idx] + 1) % capacity_;
  }
  count_[layer_idx] = std::min(capacity_, count_[layer_idx] + (n - first));
}

void ObsQueries::gather_group(int layer_idx, int kv_head, int group_size, float* out) const {
  HARDKV_CHECK(layer_idx >= 0 && layer_idx < num_layers_ && group_size >= 1 && kv_head >= 0 &&
                   (kv_head + 1) * group_size <= num_q_heads_,
               kInvalidArgument, "observation gather: layer {}, kv-head {}, group {} of {} heads",
               layer_idx, kv_head, group_size, num_q_heads_);
  HARDKV_CHECK(!rows_.empty(), kInternal, "observation gather from a buffer that stores no rows");
  const int64_t row = static_cast<int64_t>(num_q_heads_) * head_dim_;
  const float* base = rows_.data() + static_cast<int64_t>(layer_idx) * capacity_ * row;
  const int n = count_[layer_idx];
  const int oldest = (next_[layer_idx] - n + capacity_) % capacity_;
  for (int r = 0; r < n; ++r) {
    const float* src = base + static_cast<int64_t>((oldest + r) % capacity_) * row +
                       static_cast<int64_t>(kv_head) * group_size * head_dim_;
    std::copy_n(src, static_cast<int64_t>(group_size) * head_dim_,
                out + static_cast<int64_t>(r) * group_size * head_dim_);
  }
}

void ObsQueries::clear() {
  std::fill(next_.begin(), next_.end(), 0);
  std::fill(count_.begin(), count_.end(), 0);
}

}  // namespace hardkv::kv
