// CudaBackend::sample / sample_async / sample_wait: the rows' parameters go up as one small copy,
// the sampling kernel (sampling.cu) picks every row's token into a device buffer (which later
// steps' placeholders read) and stores the N tokens (+ N log-probabilities) into a mapped pinned
// slot per pending ticket itself (no copy op on the stream). Runs eagerly: it is not part of a
// captured decode step.
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/env_switch.h"
#include "kernels/cuda/sampling.h"

namespace hardkv::cuda {
namespace {

// HARDKV_SAMPLE_MAPPED=1 / 0: the kernel writes the results into the mapped slot itself, or they
// come down by copies on the stream.
bool mapped_results_enabled() {
  static const bool on = env_switch("HARDKV_SAMPLE_MAPPED", kSamplePathsDefaultOn);
  return on;
}

}  // namespace

SampleResult CudaBackend::sample(const Tensor& logits, const SampleRows& rows) {
  return sample_wait(sample_async(logits, rows));
}

int64_t CudaBackend::sample_async(const Tensor& logits, const SampleRows& rows) {
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
  HARDKV_CHECK(n <= kMaxSampleRows, kInvalidArgument,
               "cuda sample: {} rows is more than the {} one step may sample", n, kMaxSampleRows);
  const int64_t ticket = next_sample_ticket_;
  SampleSlot& slot = sample_slots_[ticket % kMaxPendingSamples];
  HARDKV_CHECK(slot.ticket < 0, kInternal,
               "cuda sample: {} samples are already waiting for sample_wait (ticket {} pending)",
               kMaxPendingSamples, slot.ticket);
  const int64_t vocab = logits.dim(1);
  if (n > 0) {
    std::vector<SampleRowParams> params(n);
    for (int i = 0; i < n; ++i) {
      HARDKV_CHECK(rows.forced[i] < vocab, kInvalidArgument,
                   "cuda sample: forced token {} outside a vocabulary of {}", rows.forced[i],
                   vocab);
      params[i].uniform = rows.uniform[i];
      params[i].temperature = rows.temperature[i];
      params[i].top_p = rows.top_p[i];
      params[i].min_p = rows.min_p[i];
      params[i].top_k = rows.top_k[i];
      params[i].forced = rows.forced[i];
    }
    // Params (32 bytes a row) with the launch up to kSampleInlineRows rows, else copied up; the
    // tokens go to the device buffer that later steps' embedding reads placeholders from.
    const SampleRowParams* params_dev = nullptr;
    if (n > kSampleInlineRows) {
      Tensor params_host = Tensor::view(params.data(), DType::kI32,
                                        {static_cast<int64_t>(n) * 8}, Device::kCPU);
      Tensor dev = scratch(DType::kI32, params_host.shape());
      copy_from_host(dev, params_host);
      params_dev = reinterpret_cast<const SampleRowParams*>(dev.data());
    }
    // Tokens I32 [n] then log-probabilities F32 [n]: into the mapped slot by the kernel itself,
    // or through the device and copies down.
    const bool mapped = mapped_results_enabled();
    Tensor logprobs;
    if (rows.logprobs && !mapped) logprobs = scratch(DType::kF32, {n});
    float* logprobs_out = !rows.logprobs ? nullptr
                          : mapped       ? reinterpret_cast<float*>(slot.dev + n)
                                         : logprobs.data_as<float>();
    launch_sample(logits.data_as<const float>(), n, vocab, params_dev, sampled_dev_, logprobs_out,
                  nullptr, stream(), 0, n > kSampleInlineRows ? nullptr : params.data(),
                  mapped ? slot.dev : nullptr);
    if (!mapped) {
      CUDA_CHECK(cudaMemcpyAsync(slot.host, sampled_dev_, n * sizeof(int32_t),
                                 cudaMemcpyDeviceToHost, stream()));
      if (rows.logprobs) {
        CUDA_CHECK(cudaMemcpyAsync(slot.host + n, logprobs.data(), n * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream()));
      }
    }
  }
  CUDA_CHECK(cudaEventRecord(slot.done, stream()));
  slot.ticket = ticket;
  slot.rows = n;
  slot.logprobs = rows.logprobs;
  return next_sample_ticket_++;
}

SampleResult CudaBackend::sample_wait(int64_t ticket) {
  SampleSlot& slot = sample_slots_[ticket % kMaxPendingSamples];
  HARDKV_CHECK(ticket >= 0 && slot.ticket == ticket, kInternal,
               "cuda sample_wait: ticket {} is not pending", ticket);
  CUDA_CHECK(cudaEventSynchronize(slot.done));
  SampleResult result;
  result.tokens.assign(slot.host, slot.host + slot.rows);
  if (slot.logprobs) {
    result.logprobs.resize(slot.rows);
    std::memcpy(result.logprobs.data(), slot.host + slot.rows, slot.rows * sizeof(float));
  }
  slot.ticket = -1;
  return result;
}

}  // namespace hardkv::cuda
