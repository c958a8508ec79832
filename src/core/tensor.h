// Tensor: a typed, shaped, contiguous (row-major) view of memory on one device, optionally owning
// it through a shared handle. No math lives here; ops live in backends (src/kernels/*).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace hardkv {

enum class Device { kCPU, kCUDA };

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-initialised host memory.
  static Tensor empty(DType dtype, Shape shape);
  // Wraps memory owned elsewhere; `owner` (may be null) keeps it alive.
  static Tensor view(void* data, DType dtype, Shape shape, Device device,
                     std::shared_ptr<void> owner = nullptr);

  bool defined() const { return data_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  void* data() const { return data_; }
  template <typename T>
  T* data_as() const { return static_cast<T*>(data_); }

  // Same memory, new shape with the same element count.
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) along dim 0, sharing memory.
  Tensor rows(int64_t begin, int64_t end) const;

 private:
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCPU;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
};

}  // namespace hardkv
