// Internal helpers of DeviceTiers' translation units (device_tiers.cc, device_tiers_score.cc):
// host int32 lists to device buffers, and on CUDA builds the backend cast and row copies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#ifdef HARDKV_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/hkv_copy_rows.h"
#endif

namespace hardkv::device_tiers {

// Host I32 words -> the first count_i32 words of device tensor t (U64 words travel as pairs).
inline void upload(Backend& be, const Tensor& t, const void* data, int64_t count_i32) {
  if (count_i32 == 0) return;
  Tensor host = Tensor::view(const_cast<void*>(data), DType::kI32, {count_i32}, Device::kCPU);
  Tensor dst = Tensor::view(t.data(), DType::kI32, {count_i32}, t.device());
  be.copy_from_host(dst, host);
}

template <typename T>
int64_t words(const std::vector<T>& v) {
  static_assert(sizeof(T) % 4 == 0);
  return static_cast<int64_t>(v.size() * sizeof(T) / 4);
}

// Host vector -> device scratch tensor.
template <typename T>
Tensor to_device(Backend& be, const std::vector<T>& v) {
  Tensor t = be.scratch(DType::kI32, {std::max<int64_t>(words(v), 1)});
  upload(be, t, v.data(), words(v));
  return t;
}

#ifdef HARDKV_WITH_CUDA
inline const int32_t* i32(const Tensor& t) { return t.data_as<const int32_t>(); }
inline cuda::CudaBackend& cuda_of(Backend* be) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(be);
  HARDKV_CHECK(cuda != nullptr, kInternal, "device HARD-KV needs the CUDA backend");
  return *cuda;
}
using bf16 = __nv_bfloat16;
template <typename T>
T* bf(const Tensor& t) {
  return static_cast<T*>(t.data());
}
// dst rows <- src rows (null row lists = identity; a negative row index skips the row).
inline void copy_rows(cuda::CudaBackend& be, const Tensor& src, Tensor& dst,
                      const int32_t* src_rows, const int32_t* dst_rows, int num_rows,
                      int row_elems) {
  cuda::HkvCopyRowsParams p;
  p.src = bf<const bf16>(src);
  p.dst = bf<bf16>(dst);
  p.src_rows = src_rows;
  p.dst_rows = dst_rows;
  p.num_rows = num_rows;
  p.row_elems = row_elems;
  cuda::launch_hkv_copy_rows(p, be.stream());
}
#endif

[[noreturn]] inline void no_cuda() {
  HARDKV_THROW(kUnsupported, "device HARD-KV needs hardkv built with CUDA");
}

}  // namespace hardkv::device_tiers
