// Tensor allocation and views.
#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace hardkv {

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    HARDKV_CHECK(d >= 0, kInvalidArgument, "negative dimension in shape {}", shape_str(shape));
  }
  size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  // 64-byte alignment for SIMD loads; at least one byte so data() is never null.
  size_t padded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded == 0 ? 64 : padded);
  HARDKV_CHECK(p != nullptr, kOutOfMemory, "cannot allocate {} bytes of host memory", bytes);
  std::memset(p, 0, padded == 0 ? 64 : padded);
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = Device::kCPU;
  t.shape_ = std::move(shape);
  t.data_ = p;
  t.owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  return t;
}

Tensor Tensor::view(void* data, DType dtype, Shape shape, Device device,
                    std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  HARDKV_CHECK(shape_numel(shape) == numel(), kInternal, "reshape {} -> {} changes element count",
               shape_str(shape_), shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  HARDKV_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], kInternal,
               "rows [{}, {}) out of range for shape {}", begin, end, shape_str(shape_));
  int64_t row = numel() / (shape_[0] == 0 ? 1 : shape_[0]);
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.data_ = static_cast<char*>(data_) + begin * row * static_cast<int64_t>(dtype_size(dtype_));
  return t;
}

}  // namespace hardkv
