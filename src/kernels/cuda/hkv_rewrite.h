// HARD-KV rewrite on the GPU: compacts each head's kept (unmasked) condensed tokens to the front
// of its head-pages, in place, from per-head source -> destination stored-token index lists.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

// Segment g (one (sequence, kv-head) of one layer) stores token i at page
// page_indices[page_indptr[g] + i / page_size], offset i % page_size. Its moves are
// [move_indptr[g], move_indptr[g+1]): token move_src[k] is copied to token move_dst[k].
// Contract (what makes the in-place copy safe; the host builds it, the kernel cannot check):
// within a segment move_dst and move_src strictly increase and move_dst[k] <= move_src[k]
// (a compaction); segments use disjoint pages. Moves with src == dst may be left out.
struct HkvRewriteParams {
  __nv_bfloat16* page_k = nullptr;       // [num_pages, page_size, head_dim] the layer's pool
  __nv_bfloat16* page_v = nullptr;       // [num_pages, page_size, head_dim]
  const int32_t* page_indptr = nullptr;  // [num_segments + 1]
  const int32_t* page_indices = nullptr;
  const int32_t* move_indptr = nullptr;  // [num_segments + 1]
  const int32_t* move_src = nullptr;     // [move_indptr[num_segments]]
  const int32_t* move_dst = nullptr;     // [move_indptr[num_segments]]
  int num_segments = 0;
  int page_size = 0;
  int head_dim = 0;  // a multiple of 8, at most 512
};

// One block per segment, moves in chunks (all of a chunk's loads before any store). No host sync.
void launch_hkv_rewrite(const HkvRewriteParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
