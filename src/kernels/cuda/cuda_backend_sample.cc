// CudaBackend::sample: for now the host sampler over downloaded logits (Backend's default); the
// GPU sampling kernels replace this.
#include "kernels/cuda/cuda_backend.h"

namespace hardkv::cuda {

SampleResult CudaBackend::sample(const Tensor& logits, const SampleRows& rows) {
  return Backend::sample(logits, rows);
}

}  // namespace hardkv::cuda
