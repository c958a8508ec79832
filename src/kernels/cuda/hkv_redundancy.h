// rkv's redundancy on the GPU (docs/COMPRESSION.md, `rkv`): per segment (one (sequence, kv-head)
// of a layer) over its n candidate keys, the softmax over j of the column means of the key cosine
// matrix with R-KV's keep-most-recent rule; every segment of a layer in one launch sequence.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace hardkv::cuda {

// Segment g's candidates are rows indptr[g] .. indptr[g+1]-1 of keys, in candidate order. Per
// segment with unit keys u_i = k_i / (|k_i| + 1e-8) and S[i][j] = u_i . u_j (S[i][i] = 0): in every
// row i the entry of the largest j != i with S[i][j] > threshold is zeroed; then
// redundancy[j] = softmax_j(sum_i S[i][j] / n). The threshold decisions and the zeroed entries
// are taken in double precision exactly as a plain double loop would (an fp32 pass screens the
// pairs, a pair within 1e-3 of the threshold is recomputed in double); the column sums are double.
struct HkvRedundancyParams {
  const __nv_bfloat16* keys = nullptr;  // [indptr[num_segments], head_dim] post-RoPE
  const int32_t* indptr = nullptr;      // [num_segments + 1]
  float* redundancy = nullptr;          // [indptr[num_segments]] out; each segment sums to 1
  void* workspace = nullptr;            // hkv_redundancy_workspace_bytes(total rows) bytes
  int64_t total_rows = 0;               // indptr[num_segments], known on the host
  int num_segments = 0;
  int head_dim = 0;        // a multiple of 8, at most 256
  int max_candidates = 0;  // host-side bound on every segment's n: it sizes the grid
  double threshold = 0.5;  // rkv_threshold, in [-1, 1]
};

// Bytes of workspace a launch over total_rows candidate rows needs.
size_t hkv_redundancy_workspace_bytes(int64_t total_rows);

// Three kernels on `stream` (norms; per 64-row tile the keep-most-recent pair of every row,
// screened in fp32 tiles scanned from the most recent candidates back; per segment the column
// sums and the softmax) plus a memset of the workspace. No host sync: graph-capturable.
void launch_hkv_redundancy(const HkvRedundancyParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
