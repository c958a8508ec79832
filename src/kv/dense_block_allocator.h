// DenseBlockAllocator: the narrow interface through which the HeadwiseKV manager takes and returns
// dense-mode KV block ids (the engine's BlockManager pool in production), plus DenseBlockPool, a
// plain free-list implementation for tests and standalone use.
#pragma once

#include <cstdint>
#include <vector>

namespace hardkv::kv {

// Contract: block ids are in [0, num_blocks()); a block handed out by allocate_block() is owned by
// the caller until it returns it with free_block(). allocate_block() throws kOutOfMemory when
// num_free_blocks() == 0 and changes nothing then. Block contents are not cleared.
class DenseBlockAllocator {
 public:
  virtual ~DenseBlockAllocator() = default;
  virtual int block_size() const = 0;  // tokens per dense block
  virtual int num_blocks() const = 0;
  virtual int num_free_blocks() const = 0;
  virtual int32_t allocate_block() = 0;
  virtual void free_block(int32_t block_id) = 0;
};

// Free list over [0, num_blocks); lowest ids are handed out first (deterministic).
class DenseBlockPool : public DenseBlockAllocator {
 public:
  DenseBlockPool(int num_blocks, int block_size);

  int block_size() const override { return block_size_; }
  int num_blocks() const override { return static_cast<int>(in_use_.size()); }
  int num_free_blocks() const override { return static_cast<int>(free_.size()); }
  int32_t allocate_block() override;
  void free_block(int32_t block_id) override;

 private:
  int block_size_;
  std::vector<int32_t> free_;  // stack of free ids, lowest id on top
  std::vector<bool> in_use_;   // [num_blocks]
};

}  // namespace hardkv::kv
