// Lean skinny GEMV for one row of x (batch-1 decode): one 8-warp block per multiprocessor holds
// its whole weight slice in registers, loaded before pdl_wait(). Its small register footprint
// (about half the register file) lets the next kernel's blocks become resident beside it and
// start their own weight loads while this one finishes. Used by launch_gemv and the fused
// prologue launchers in gemv.cu where it covers the shape.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hardkv::cuda {

enum class LeanPrologue { kNone, kAddRmsNorm, kSiluMul };

struct LeanGemvArgs {
  const __nv_bfloat16* x = nullptr;       // kNone/kAddRmsNorm: x [k]; kSiluMul: gate_up [2k]
  __nv_bfloat16* x_out = nullptr;         // kAddRmsNorm: x, overwritten with the normed row
  __nv_bfloat16* residual = nullptr;      // kAddRmsNorm: [k], += x
  const __nv_bfloat16* norm_w = nullptr;  // kAddRmsNorm: [k]
  float eps = 0.f;                        // kAddRmsNorm
  unsigned* counter = nullptr;          // kAddRmsNorm: blocks done reading (0 on entry, reset to 0)
  const __nv_bfloat16* w = nullptr;     // [m, k]
  const __nv_bfloat16* bias = nullptr;  // [m] or null
  __nv_bfloat16* out = nullptr;         // [m]
  int64_t m = 0, k = 0;
  LeanPrologue prologue = LeanPrologue::kNone;
  // The warp-staged form for kNone / kAddRmsNorm (each warp reads its x chunks from L2 itself: no
  // shared memory, no block barrier) where the registers allow (gemv_lean.cu: warp_form_fits).
  // -1: for the forms in HARDKV_GEMV_LEAN_WARP_X's mask (default: both); 1: where it fits;
  // 0: never (the shared-memory form).
  int warp_x = -1;
};

// True when the lean kernel covers out[1, m] = x[1, k] w^T: k one of 1024, 2048, 3072 and the
// rows fit one block per multiprocessor at <= 24 16-byte weight chunks per lane.
// HARDKV_GEMV_LEAN=0: false (the 16-warp kernels run).
bool gemv_lean_supported(int64_t n, int64_t m, int64_t k, int num_sms);

// Launches the lean kernel (gemv_lean_supported must hold; pointers 16-byte aligned).
void launch_gemv_lean(const LeanGemvArgs& a, int num_sms, cudaStream_t stream);

// HARDKV_PDL_EARLY=1: GEMV kernels allow the next kernel to launch before their own pdl_wait()
// (its blocks then load their weights while this kernel still waits and computes); otherwise
// right after it, except the lean forms in HARDKV_GEMV_LEAN_EARLY_MASK (default: the plain one,
// o_proj, and SiLU, down). Read once.
bool gemv_pdl_early_trigger();

}  // namespace hardkv::cuda
