// Builds hardkv::Error values for the CUDA_CHECK / CUBLAS_CHECK / CUDA_REQUIRE macros.
#include "kernels/cuda/cuda_check.h"

#include "core/error.h"

namespace hardkv::cuda {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  const ErrorKind kind =
      err == cudaErrorMemoryAllocation ? ErrorKind::kOutOfMemory : ErrorKind::kRuntime;
  throw Error(
      kind, fmt::format("{} failed: {} ({})", call, cudaGetErrorString(err), cudaGetErrorName(err)),
      file, line, "CUDA");
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(ErrorKind::kRuntime,
              fmt::format("{} failed: {}", call, cublasLtGetStatusString(status)), file, line,
              "cuBLAS");
}

void throw_check_failed(CheckKind kind, const std::string& message, const char* file, int line) {
  ErrorKind k = ErrorKind::kInternal;
  if (kind == CheckKind::kInvalidArgument) k = ErrorKind::kInvalidArgument;
  if (kind == CheckKind::kUnsupported) k = ErrorKind::kUnsupported;
  throw Error(k, message, file, line, "CUDA launcher");
}

}  // namespace hardkv::cuda
