// make_backend: picks the CPU reference or the CUDA backend by name.
#include "core/error.h"
#include "kernels/backend.h"

namespace hardkv {

#ifndef HARDKV_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(int) {
  HARDKV_THROW(kUnsupported, "this hardkv build has no CUDA backend (nvcc was not found at build "
                             "time); use --backend cpu");
}
bool cuda_device_available() { return false; }
#else
bool cuda_device_available();  // defined by the CUDA backend
#endif

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "cuda") return make_cuda_backend(0);
  if (name == "auto") return cuda_device_available() ? make_cuda_backend(0) : make_cpu_backend();
  HARDKV_THROW(kInvalidArgument, "unknown backend '{}': expected cpu, cuda or auto", name);
}

}  // namespace hardkv
