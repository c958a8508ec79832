// DenseBlockPool: a free-list block allocator (see dense_block_allocator.h).
#include <algorithm>

#include "core/error.h"
#include "kv/dense_block_allocator.h"

namespace hardkv::kv {

DenseBlockPool::DenseBlockPool(int num_blocks, int block_size)
    : block_size_(block_size), in_use_(static_cast<size_t>(std::max(num_blocks, 0)), false) {
  HARDKV_CHECK(num_blocks >= 1 && block_size >= 1, kInvalidArgument,
               "dense block pool needs num_blocks >= 1 and block_size >= 1 (got {}, {})",
               num_blocks, block_size);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t DenseBlockPool::allocate_block() {
  HARDKV_CHECK(!free_.empty(), kOutOfMemory, "dense KV pool is full ({} blocks of {} tokens)",
               num_blocks(), block_size_);
  const int32_t b = free_.back();
  free_.pop_back();
  in_use_[b] = true;
  return b;
}

void DenseBlockPool::free_block(int32_t block_id) {
  HARDKV_CHECK(block_id >= 0 && block_id < num_blocks() && in_use_[block_id], kInternal,
               "dense block {} is not allocated", block_id);
  in_use_[block_id] = false;
  free_.push_back(block_id);
}

}  // namespace hardkv::kv
