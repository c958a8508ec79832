// Backend::sample's default: download the logits and run the host sampler row by row; the
// default sample_async / sample_wait (sample at once, keep the result) and placeholder tokens.
#include <span>

#include "core/error.h"
#include "kernels/backend.h"
#include "sampling/sampler.h"

namespace hardkv {

SampleResult Backend::sample(const Tensor& logits, const SampleRows& rows) {
  const int n = rows.size();
  HARDKV_CHECK(logits.dtype() == DType::kF32 && logits.ndim() == 2 && logits.dim(0) == n,
               kInvalidArgument, "sample: logits must be F32 [{}, vocab], got {} {}", n,
               dtype_name(logits.dtype()), shape_str(logits.shape()));
  HARDKV_CHECK(rows.top_k.size() == static_cast<size_t>(n) &&
                   rows.top_p.size() == static_cast<size_t>(n) &&
                   rows.min_p.size() == static_cast<size_t>(n) &&
                   rows.uniform.size() == static_cast<size_t>(n) &&
                   rows.forced.size() == static_cast<size_t>(n),
               kInvalidArgument, "sample: every SampleRows vector must have {} entries", n);
  SampleResult r;
  if (n == 0) return r;
  const Tensor host = logits.device() == Device::kCPU ? logits : download(logits);
  const size_t vocab = static_cast<size_t>(host.dim(1));
  const float* base = host.data_as<const float>();
  r.tokens.resize(n);
  if (rows.logprobs) r.logprobs.resize(n);
  for (int i = 0; i < n; ++i) {
    const std::span<const float> row(base + static_cast<size_t>(i) * vocab, vocab);
    if (rows.forced[i] >= 0) {
      r.tokens[i] = rows.forced[i];
    } else {
      SamplingParams p;
      p.temperature = rows.temperature[i];
      p.top_k = rows.top_k[i];
      p.top_p = rows.top_p[i];
      p.min_p = rows.min_p[i];
      r.tokens[i] = sample_token_with_uniform(row, p, rows.uniform[i]);
    }
    if (rows.logprobs) r.logprobs[i] = token_logprob(row, r.tokens[i]);
  }
  return r;
}

int64_t Backend::sample_async(const Tensor& logits, const SampleRows& rows) {
  HARDKV_CHECK(static_cast<int>(pending_samples_.size()) < kMaxPendingSamples, kInternal,
               "{}: {} samples are already waiting for sample_wait", name(),
               pending_samples_.size());
  SampleResult r = sample(logits, rows);
  last_sampled_ = r.tokens;
  pending_samples_.emplace_back(next_ticket_, std::move(r));
  return next_ticket_++;
}

SampleResult Backend::sample_wait(int64_t ticket) {
  HARDKV_CHECK(!pending_samples_.empty() && pending_samples_.front().first == ticket, kInternal,
               "{}: sample_wait({}) out of order or for an unknown ticket", name(), ticket);
  SampleResult r = std::move(pending_samples_.front().second);
  pending_samples_.erase(pending_samples_.begin());
  return r;
}

int32_t Backend::resolve_placeholder(int32_t id) const {
  const int64_t row = -static_cast<int64_t>(id) - 1;
  HARDKV_CHECK(id < 0 && row < static_cast<int64_t>(last_sampled_.size()), kInvalidArgument,
               "placeholder token id {} names sampled row {}, but the latest sample_async had {} "
               "rows",
               id, row, last_sampled_.size());
  return last_sampled_[row];
}

}  // namespace hardkv
