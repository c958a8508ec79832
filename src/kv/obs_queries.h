// ObsQueries: one sequence's observation ring buffer — per layer, the last `capacity`
// (obs_window) post-RoPE query rows of all query heads, read by compression events. Without row
// storage (the rows live in a device ring) it only counts them.
#pragma once

#include <cstdint>
#include <vector>

namespace hardkv::kv {

class ObsQueries {
 public:
  ObsQueries(int num_layers, int capacity, int num_q_heads, int head_dim, bool store_rows = true);

  int capacity() const { return capacity_; }
  int count(int layer_idx) const { return count_[layer_idx]; }

  // Appends n rows q [n, num_q_heads, head_dim] fp32 (post-RoPE, in position order); only the last
  // `capacity` rows pushed to a layer are kept. q may be null without row storage (counts only).
  void push(int layer_idx, const float* q, int n);

  // out [count(layer), group_size, head_dim] fp32 (row storage only): the kept rows oldest first,
  // query heads
  // [kv_head * group_size, (kv_head + 1) * group_size).
  void gather_group(int layer_idx, int kv_head, int group_size, float* out) const;

  void clear();

 private:
  int num_layers_;
  int capacity_;
  int num_q_heads_;
  int head_dim_;
  std::vector<float> rows_;  // [num_layers, capacity, num_q_heads, head_dim]
  std::vector<int> next_;    // [num_layers] ring slot the next row goes to
  std::vector<int> count_;   // [num_layers] rows held (<= capacity)
};

}  // namespace hardkv::kv
