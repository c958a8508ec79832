// CUDA_CHECK / CUBLAS_CHECK / CUDA_REQUIRE: turn CUDA runtime and cuBLAS status codes and failed
// launcher shape checks into hardkv::Error. Safe to include from .cu files: nvcc never sees fmt
// (its consteval format checks do not compile under nvcc); cuda_check.cc builds the errors.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <sstream>
#include <string>

namespace hardkv::cuda {

// The subset of hardkv::ErrorKind a launcher check reports.
enum class CheckKind { kInvalidArgument, kUnsupported, kInternal };

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);
[[noreturn]] void throw_check_failed(CheckKind kind, const std::string& message, const char* file,
                                     int line);

template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace hardkv::cuda

#define CUDA_CHECK(call)                                                             \
  do {                                                                               \
    cudaError_t hardkv_cuda_err_ = (call);                                           \
    if (hardkv_cuda_err_ != cudaSuccess) {                                           \
      ::hardkv::cuda::throw_cuda_error(hardkv_cuda_err_, #call, __FILE__, __LINE__); \
    }                                                                                \
  } while (0)

// After a kernel launch: catches bad launch configurations (faults inside the kernel surface at
// the next synchronising call).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(call)                                                              \
  do {                                                                                  \
    cublasStatus_t hardkv_cublas_st_ = (call);                                          \
    if (hardkv_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                                   \
      ::hardkv::cuda::throw_cublas_error(hardkv_cublas_st_, #call, __FILE__, __LINE__); \
    }                                                                                   \
  } while (0)

// CUDA_REQUIRE(cond, kInvalidArgument, "rope: head_dim ", d, " must be even")
#define CUDA_REQUIRE(cond, kind, ...)                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      ::hardkv::cuda::throw_check_failed(::hardkv::cuda::CheckKind::kind,                          \
                                         ::hardkv::cuda::concat(__VA_ARGS__), __FILE__, __LINE__); \
    }                                                                                              \
  } while (0)
