// Greedy sampling (argmax, ties: lowest id) of up to kGreedyMaxRows rows of fp32 logits with a
// plain grid of blocks per row and atomics instead of a thread-block cluster: what a decode step
// of a few greedy rows needs, at less launch and synchronisation cost than launch_sample's
// cluster kernel (sampling.cu). Same tokens as launch_sample for temperature-0 rows.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

inline constexpr int kGreedyMaxRows = 64;

// logits F32 [num_rows, vocab] (device); out_tokens I32 [num_rows] (device); out_tokens_copy
// I32 [num_rows] or null (e.g. mapped pinned host memory). One stream at a time: the rows'
// running maxima live in one device buffer that each launch leaves zeroed.
void launch_sample_greedy(const float* logits, int64_t num_rows, int64_t vocab,
                          int32_t* out_tokens, int32_t* out_tokens_copy, int num_sms,
                          cudaStream_t stream);

}  // namespace hardkv::cuda
