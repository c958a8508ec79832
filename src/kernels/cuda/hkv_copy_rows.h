// HARD-KV row copies on the GPU: dst row dst_rows[i] = src row src_rows[i] for bf16 rows of
// row_elems elements. Moves observation queries into the device ring and out of it, dense-tier
// tokens into head-pages, and candidate keys out for host scoring.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

struct HkvCopyRowsParams {
  const __nv_bfloat16* src = nullptr;  // [>= max src row + 1, row_elems]
  __nv_bfloat16* dst = nullptr;        // [>= max dst row + 1, row_elems]
  const int32_t* src_rows = nullptr;   // [num_rows] or null = 0, 1, ...; < 0 skips the row
  const int32_t* dst_rows = nullptr;   // [num_rows] or null = 0, 1, ...; < 0 skips the row
  int num_rows = 0;
  int row_elems = 0;  // a multiple of 8
};

// A negative source or destination row index skips the row. Rows must not overlap between src and dst (no in-place moves: that is hkv_rewrite). No host
// sync; graph-capturable.
void launch_hkv_copy_rows(const HkvCopyRowsParams& p, cudaStream_t stream);

}  // namespace hardkv::cuda
