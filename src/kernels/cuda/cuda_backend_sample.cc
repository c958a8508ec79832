// CudaBackend::sample: the rows' parameters go up as one small copy, the sampling kernel
// (sampling.cu) picks every row's token on the device, and only N tokens (+ N log-probabilities)
// come back. Runs eagerly: it is not part of a captured decode step.
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.h"

namespace hardkv::cuda {

SampleResult CudaBackend::sample(const Tensor& logits, const SampleRows& rows) {
  const int n = rows.size();
  HARDKV_CHECK(logits.dtype() == DType::kF32 && logits.ndim() == 2 && logits.dim(0) == n,
               kInvalidArgument, "cuda sample: logits must be F32 [{}, vocab], got {} {}", n,
               dtype_name(logits.dtype()), shape_str(logits.shape()));
  HARDKV_CHECK(logits.device() == Device::kCUDA, kInvalidArgument,
               "cuda sample: logits are not on the CUDA device");
  HARDKV_CHECK(rows.top_k.size() == static_cast<size_t>(n) &&
                   rows.top_p.size() == static_cast<size_t>(n) &&
                   rows.min_p.size() == static_cast<size_t>(n) &&
                   rows.uniform.size() == static_cast<size_t>(n) &&
                   rows.forced.size() == static_cast<size_t>(n),
               kInvalidArgument, "cuda sample: every SampleRows vector must have {} entries", n);
  SampleResult result;
  if (n == 0) return result;
  const int64_t vocab = logits.dim(1);
  std::vector<SampleRowParams> params(n);
  for (int i = 0; i < n; ++i) {
    HARDKV_CHECK(rows.forced[i] < vocab, kInvalidArgument,
                 "cuda sample: forced token {} outside a vocabulary of {}", rows.forced[i], vocab);
    params[i].uniform = rows.uniform[i];
    params[i].temperature = rows.temperature[i];
    params[i].top_p = rows.top_p[i];
    params[i].min_p = rows.min_p[i];
    params[i].top_k = rows.top_k[i];
    params[i].forced = rows.forced[i];
  }
  // Params (32 bytes a row) up; tokens I32 [n] then log-probabilities F32 [n] down in one copy.
  Tensor params_host = Tensor::empty(DType::kI32, {static_cast<int64_t>(n) * 8});
  std::memcpy(params_host.data(), params.data(), params.size() * sizeof(SampleRowParams));
  Tensor params_dev = scratch(DType::kI32, params_host.shape());
  copy_from_host(params_dev, params_host);
  Tensor out = scratch(DType::kI32, {rows.logprobs ? 2 * n : n});
  auto* tokens_dev = out.data_as<int32_t>();
  auto* logprobs_dev = rows.logprobs ? reinterpret_cast<float*>(tokens_dev + n) : nullptr;
  launch_sample(logits.data_as<const float>(), n, vocab,
                reinterpret_cast<const SampleRowParams*>(params_dev.data()), tokens_dev,
                logprobs_dev, nullptr, stream());
  const Tensor host = download(out);
  const int32_t* h = host.data_as<const int32_t>();
  result.tokens.assign(h, h + n);
  if (rows.logprobs) {
    result.logprobs.resize(n);
    std::memcpy(result.logprobs.data(), h + n, n * sizeof(float));
  }
  return result;
}

}  // namespace hardkv::cuda
