// Test helper: a device copy of a host vector (cudaMalloc + copy, freed on destruction) with a
// download back to the host, for the raw-pointer kernel tests.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <vector>

namespace hardkv::test {

template <typename T>
struct DeviceArray {
  T* ptr = nullptr;  // null when the allocation failed
  size_t size = 0;
  DeviceArray() = default;
  explicit DeviceArray(const std::vector<T>& host) : size(host.size()) {
    if (cudaMalloc(reinterpret_cast<void**>(&ptr), std::max<size_t>(1, size) * sizeof(T)) !=
        cudaSuccess) {
      ptr = nullptr;
    } else if (size > 0) {
      cudaMemcpy(ptr, host.data(), size * sizeof(T), cudaMemcpyHostToDevice);
    }
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(ptr); }
  std::vector<T> download() const {
    std::vector<T> h(size);
    cudaMemcpy(h.data(), ptr, size * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

}  // namespace hardkv::test
