// ScratchArena: bump allocation over cudaMalloc'd chunks, merged on reset() after an overflow.
#include "kernels/cuda/scratch_arena.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"

namespace hardkv::cuda {

namespace {
constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

ScratchArena::~ScratchArena() {
  for (Chunk& c : chunks_) cudaFree(c.ptr);
}

void* ScratchArena::allocate(size_t bytes) {
  bytes = align_up(std::max<size_t>(bytes, 1));
  if (chunks_.empty() || chunks_.back().used + bytes > chunks_.back().size) {
    Chunk c;
    c.size = std::max(bytes, chunks_.empty() ? initial_bytes_ : chunks_.back().size);
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&c.ptr), c.size));
    chunks_.push_back(c);
  }
  Chunk& c = chunks_.back();
  void* p = c.ptr + c.used;
  c.used += bytes;
  return p;
}

void ScratchArena::reset() {
  if (chunks_.size() > 1) {
    // The last step overflowed: replace the chunks by one that holds the whole step. cudaFree
    // waits for work still using them.
    size_t total = 0;
    for (Chunk& c : chunks_) {
      total += c.used;
      CUDA_CHECK(cudaFree(c.ptr));
    }
    chunks_.clear();
    Chunk c;
    c.size = align_up(total + total / 4);
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&c.ptr), c.size));
    chunks_.push_back(c);
  }
  for (Chunk& c : chunks_) c.used = 0;
}

bool ScratchArena::contains(const void* p, size_t bytes) const {
  const char* c = static_cast<const char*>(p);
  for (const Chunk& k : chunks_) {
    if (c >= k.ptr && c + bytes <= k.ptr + k.used) return true;
  }
  return false;
}

size_t ScratchArena::capacity() const {
  size_t n = 0;
  for (const Chunk& c : chunks_) n += c.size;
  return n;
}

}  // namespace hardkv::cuda
