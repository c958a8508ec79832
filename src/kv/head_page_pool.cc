// HeadPagePool (see head_page_pool.h).
#include "kv/head_page_pool.h"

#include "core/error.h"

namespace hardkv::kv {

HeadPagePool::HeadPagePool(int num_pages, int page_size, int head_dim, bool store_data)
    : num_pages_(num_pages), page_size_(page_size), head_dim_(head_dim) {
  HARDKV_CHECK(num_pages >= 1 && page_size >= 1 && head_dim >= 1, kInvalidArgument,
               "head-page pool needs num_pages, page_size, head_dim >= 1 (got {}, {}, {})",
               num_pages, page_size, head_dim);
  const size_t n = static_cast<size_t>(num_pages) * page_size * head_dim;
  if (store_data) {
    k_.assign(n, 0.0f);
    v_.assign(n, 0.0f);
  }
  in_use_.assign(num_pages, false);
  for (int32_t p = num_pages - 1; p >= 0; --p) free_.push_back(p);
}

int32_t HeadPagePool::allocate_page() {
  HARDKV_CHECK(!free_.empty(), kOutOfMemory,
               "condensed-tier head-page pool is full ({} pages of {} tokens); raise the page "
               "count or lower the budget",
               num_pages_, page_size_);
  const int32_t p = free_.back();
  free_.pop_back();
  in_use_[p] = true;
  return p;
}

void HeadPagePool::free_page(int32_t page_id) {
  HARDKV_CHECK(page_id >= 0 && page_id < num_pages_ && in_use_[page_id], kInternal,
               "head-page {} is not allocated", page_id);
  in_use_[page_id] = false;
  free_.push_back(page_id);
}

}  // namespace hardkv::kv
