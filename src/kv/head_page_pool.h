// HeadPagePool: one layer's condensed-tier storage. A head-page holds P tokens of ONE kv-head;
// K and V live in [num_pages, P, head_dim] arrays (fp32 on the CPU reference; none when the rows
// live on a device and the pool only hands out page ids), pages come from a free list so that
// memory is the sum over heads of what each head keeps.
#pragma once

#include <cstdint>
#include <vector>

namespace hardkv::kv {

class HeadPagePool {
 public:
  // store_data false: page ids only; the row accessors must not be called.
  HeadPagePool(int num_pages, int page_size, int head_dim, bool store_data = true);

  int num_pages() const { return num_pages_; }
  int page_size() const { return page_size_; }
  int head_dim() const { return head_dim_; }
  int num_free_pages() const { return static_cast<int>(free_.size()); }
  int num_used_pages() const { return num_pages_ - num_free_pages(); }
  bool stores_data() const { return !k_.empty(); }

  // Lowest free id first. Throws kOutOfMemory when no page is free (nothing changes then).
  int32_t allocate_page();
  void free_page(int32_t page_id);
  bool in_use(int32_t page_id) const { return in_use_[page_id]; }

  // Row of token `offset` (in [0, P)) of page `page_id`: [head_dim] fp32 (a pool that stores data).
  float* k_row(int32_t page_id, int offset) { return k_.data() + row_index(page_id, offset); }
  float* v_row(int32_t page_id, int offset) { return v_.data() + row_index(page_id, offset); }
  const float* k_row(int32_t page_id, int offset) const {
    return k_.data() + row_index(page_id, offset);
  }
  const float* v_row(int32_t page_id, int offset) const {
    return v_.data() + row_index(page_id, offset);
  }
  const float* k_data() const { return k_.data(); }  // [num_pages, P, head_dim]
  const float* v_data() const { return v_.data(); }  // [num_pages, P, head_dim]

 private:
  int64_t row_index(int32_t page_id, int offset) const {
    return (static_cast<int64_t>(page_id) * page_size_ + offset) * head_dim_;
  }

  int num_pages_;
  int page_size_;
  int head_dim_;
  std::vector<float> k_;       // [num_pages, P, head_dim]
  std::vector<float> v_;       // [num_pages, P, head_dim]
  std::vector<int32_t> free_;  // stack of free ids, lowest on top
  std::vector<bool> in_use_;   // [num_pages]
};

}  // namespace hardkv::kv
