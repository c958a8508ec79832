// ScratchArena: step-scoped device memory handed out by bumping a pointer. reset() makes every
// byte reusable; the same sequence of requests then gets the same addresses (CUDA-graph replay).
#pragma once

#include <cstddef>
#include <vector>

namespace hardkv::cuda {

class ScratchArena {
 public:
  explicit ScratchArena(size_t initial_bytes = 64u << 20) : initial_bytes_(initial_bytes) {}
  ~ScratchArena();
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;

  // 256-byte aligned device memory valid until reset(). When the current chunk is full a new one
  // is allocated; the next reset() merges all chunks into one large enough for the whole step.
  void* allocate(size_t bytes);
  void reset();
  size_t capacity() const;
  // True when [p, p + bytes) lies inside a chunk's handed-out part (its 256-byte rounding
  // included).
  bool contains(const void* p, size_t bytes) const;

 private:
  struct Chunk {
    char* ptr = nullptr;  // device
    size_t size = 0;
    size_t used = 0;
  };
  size_t initial_bytes_;
  std::vector<Chunk> chunks_;
};

}  // namespace hardkv::cuda
