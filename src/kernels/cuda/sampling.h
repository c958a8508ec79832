// Sampling on the GPU: one thread-block cluster per row of fp32 logits picks the row's token
// (greedy, temperature, top-k, top-p, min-p) and its raw log-probability, so only N ints (+ N
// floats) leave the device. Same rules as the host sampler (src/sampling/sampler.cc), see
// sampling.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// One row's sampling parameters as the kernel reads them (a device array of N).
struct SampleRowParams {
  double uniform = 0.0;     // the row's one draw in [0, 1) (unused if greedy or forced)
  float temperature = 0.f;  // 0 => greedy (argmax, ties: lowest id)
  float top_p = 1.f;        // (0, 1]; >= 1 => off
  float min_p = 0.f;        // [0, 1); <= 0 => off
  int32_t top_k = 0;        // <= 0 or >= vocab => off
  int32_t forced = -1;      // >= 0 (< vocab): the row's token is this one (teacher forcing)
  int32_t unused = 0;       // keeps the struct 32 bytes
};
static_assert(sizeof(SampleRowParams) == 32);

// logits F32 [num_rows, vocab] (device; rows packed); params [num_rows] (device).
// out_tokens I32 [num_rows] (device). out_logprobs F32 [num_rows] or null: log_softmax(raw
// logits)[token]. out_kept I32 [num_rows] or null (a test hook): how many tokens the row could
// draw (nonzero probability after the filters; 1 for greedy, 0 for forced rows).
// cluster_size: thread blocks (SMs) per row, 1..16; 0 picks one that fills the GPU (many for few
// rows, 1 for hundreds). No host synchronisation; vocab < 2^31 - 2^14.
// host_params [num_rows <= kSampleInlineRows] (host memory) instead of params (then null): the
// parameters go with the launch, saving a copy to the device.
// Rows that are all greedy (temperature 0, not forced) with host_params, no log-probabilities,
// no kept counts and cluster_size 0 run the plain greedy kernel (sampling_greedy.h) instead.
// out_tokens_copy I32 [num_rows] or null: a second place for the tokens (e.g. mapped pinned host
// memory, so no copy down is queued); out_logprobs may be mapped host memory too.
inline constexpr int kSampleInlineRows = 64;
void launch_sample(const float* logits, int64_t num_rows, int64_t vocab,
                   const SampleRowParams* params, int32_t* out_tokens, float* out_logprobs,
                   int32_t* out_kept, cudaStream_t stream, int cluster_size = 0,
                   const SampleRowParams* host_params = nullptr,
                   int32_t* out_tokens_copy = nullptr);

}  // namespace hardkv::cuda
