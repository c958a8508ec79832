// Host side of the skinny GEMM (gemm_skinny.h): support check, configuration choice, tensor maps,
// launch.
#include <cuda.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_skinny.h"
#include "kernels/cuda/gemm_skinny_kernel.cuh"

namespace hardkv::cuda {
namespace {

using skinny::kBK;
using skinny::Params;

// Dynamic shared memory a block may take (227 KB less the static mbarriers).
constexpr int64_t kSmemCap = 227 * 1024 - 2 * skinny::kMaxStages * 8;

// HARDKV_GEMM_SKINNY: 0 / unset -> 0 (off), 1 -> 1 (measured table), all -> 2.
int skinny_mode() {
  static const int mode = [] {
    const char* v = std::getenv("HARDKV_GEMM_SKINNY");
    if (v == nullptr || std::strcmp(v, "0") == 0) return 0;
    return std::strcmp(v, "all") == 0 ? 2 : 1;
  }();
  return mode;
}

// The largest row count per weight shape at which bench_gemm (H100, session 7, the configuration
// gemm_skinny_pick takes) beat cuBLASLt's first heuristic algorithm by more than ~1.4 us, the
// loss per GEMM seen in the model at batch 128 and 256 against bench_gemm's prediction.
struct DispatchRow {
  int64_t m, k, max_n;
};
constexpr DispatchRow kDispatch[] = {
    {4096, 1024, 224}, {1024, 2048, 224}, {6144, 1024, 192}, {1024, 3072, 80},   // Qwen3-0.6B
    {6144, 4096, 32},  {4096, 4096, 16},  {24576, 4096, 96}, {4096, 12288, 96},  // Qwen3-8B
};

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// x rows of a block's tile: n rounded up to a multiple of 8 (wgmma's N).
int nx_for(int64_t n) { return static_cast<int>(ceil_div(n, 8) * 8); }

// Ring stages: as many K steps as a split has, within shared memory, kMaxStages and
// cfg.max_stages; 0 when fewer than 2 fit (a single stage cannot overlap its refill).
int stages_for(const GemmSkinnyConfig& c, int64_t n, int64_t k) {
  const int steps = static_cast<int>(ceil_div(k / kBK, c.splits));
  const int64_t stage = skinny::stage_bytes(c.bm, nx_for(n));
  int s = static_cast<int>(
      std::min<int64_t>((kSmemCap - skinny::kAlignSlack) / stage, skinny::kMaxStages));
  s = std::min(s, steps);
  if (c.max_stages > 0) s = std::min(s, c.max_stages);
  if (s < std::min(2, steps)) return 0;
  if (skinny::smem_bytes(c.bm, nx_for(n), s) > kSmemCap) return 0;
  return s;
}

bool config_valid(const GemmSkinnyConfig& c, int64_t n, int64_t m, int64_t k) {
  if (c.bm != 64 && c.bm != 128) return false;
  if (c.splits != 1 && c.splits != 2 && c.splits != 4 && c.splits != 8) return false;
  if (m % c.bm != 0 || k / kBK < 2 * c.splits) return false;
  return stages_for(c, n, k) > 0;
}

using EncodeFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                              const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                              const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeFn encode_fn() {
  static const EncodeFn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                cudaEnableDefault, &q));
    CUDA_REQUIRE(f != nullptr && q == cudaDriverEntryPointSuccess, kUnsupported,
                 "gemm_skinny: cuTensorMapEncodeTiled is not available");
    return reinterpret_cast<EncodeFn>(f);
  }();
  return fn;
}

// A bf16 [rows, cols] row-major matrix (row stride `ld` elements) read in boxes of 64 columns x
// box_rows rows with the 128-byte swizzle; rows past `rows` read as zeros.
CUtensorMap make_map(const void* ptr, int64_t rows, int64_t cols, int64_t ld, int box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld * 2)};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(kBK), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem[2] = {1, 1};
  const CUresult r =
      encode_fn()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(ptr), dims, strides,
                  box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  CUDA_REQUIRE(r == CUDA_SUCCESS, kInternal, "gemm_skinny: cuTensorMapEncodeTiled failed (", r,
               ") for [", rows, ", ", cols, "] box ", box_rows);
  return map;
}

}  // namespace

bool gemm_skinny_supported(const void* x, const void* w, const void* bias, const void* out,
                           int64_t n, int64_t m, int64_t k) {
  if (n < 1 || n > kGemmSkinnyMaxRows || m < 64 || m % 64 != 0 || m > 32768 || k < 128 ||
      k % kBK != 0 || k > 65536 || !aligned16(x) || !aligned16(w) || !aligned16(out) ||
      (bias != nullptr && !aligned16(bias))) {
    return false;
  }
  return !gemm_skinny_configs(n, m, k).empty();
}

bool gemm_skinny_dispatch(int64_t n, int64_t m, int64_t k) {
  const int mode = skinny_mode();
  if (mode == 2) return true;
  if (mode == 0) return false;
  for (const DispatchRow& r : kDispatch) {
    if (r.m == m && r.k == k) return n <= r.max_n;
  }
  return false;
}

std::vector<GemmSkinnyConfig> gemm_skinny_configs(int64_t n, int64_t m, int64_t k) {
  std::vector<GemmSkinnyConfig> out;
  for (int bm : {64, 128}) {
    for (int s : {1, 2, 4, 8}) {
      GemmSkinnyConfig c;
      c.bm = bm;
      c.splits = s;
      if (config_valid(c, n, m, k)) out.push_back(c);
    }
  }
  return out;
}

std::string gemm_skinny_config_name(const GemmSkinnyConfig& c) {
  std::string s = "bm" + std::to_string(c.bm) + "s" + std::to_string(c.splits);
  if (c.max_stages > 0) s += "st" + std::to_string(c.max_stages);
  if (c.rotate) s += "r1";
  return s;
}

GemmSkinnyConfig gemm_skinny_pick(int64_t n, int64_t m, int64_t k, int num_sms) {
  // bench_gemm's sweep (H100): with 64-row blocks the fastest split count was the smallest that
  // gives 64 blocks (0.6B qkv s1, o s4, gate_up s1, down s4; 8B qkv s1, gate_up s1), doubled when
  // a split still has more than 32 K steps and the grid stays one wave (8B o and down: s2). Two
  // waves, 128-row blocks and more splits were slower (cluster reductions cost ~1-2 us).
  GemmSkinnyConfig c;
  c.bm = 64;
  if (m % 64 != 0) return {};
  const int64_t blocks = m / 64;
  c.splits = 1;
  while (c.splits < 8 && blocks * c.splits < 64) c.splits *= 2;
  if (k / kBK / c.splits > 32 && c.splits < 8 && blocks * c.splits * 2 <= num_sms) c.splits *= 2;
  while (c.splits > 1 && !config_valid(c, n, m, k)) c.splits /= 2;
  return config_valid(c, n, m, k) ? c : GemmSkinnyConfig{};
}

void launch_gemm_skinny(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias,
                        __nv_bfloat16* out, int64_t n, int64_t m, int64_t k, int num_sms,
                        cudaStream_t stream, GemmSkinnyConfig cfg) {
  CUDA_REQUIRE(n >= 1 && n <= kGemmSkinnyMaxRows && m % 64 == 0 && k % kBK == 0, kInvalidArgument,
               "gemm_skinny: n=", n, " m=", m, " k=", k, " is not supported");
  if (cfg.bm == 0) cfg = gemm_skinny_pick(n, m, k, num_sms);
  CUDA_REQUIRE(config_valid(cfg, n, m, k), kInvalidArgument, "gemm_skinny: configuration ",
               gemm_skinny_config_name(cfg), " is not valid for n=", n, " m=", m, " k=", k);
  const int nx = nx_for(n);
  const CUtensorMap w_map = make_map(w, m, k, k, cfg.bm);
  const CUtensorMap x_map = make_map(x, n, k, k, nx);
  Params p{};
  p.out = out;
  p.bias = bias;
  p.n = static_cast<int>(n);
  p.m = static_cast<int>(m);
  p.k = static_cast<int>(k);
  p.splits = cfg.splits;
  p.stages = stages_for(cfg, n, k);
  p.rotate = cfg.rotate;
  const unsigned grid = static_cast<unsigned>(m / cfg.bm * cfg.splits);
  const size_t smem = static_cast<size_t>(skinny::smem_bytes(cfg.bm, nx, p.stages));
  if (cfg.bm == 64) {
    (nx <= 128 ? skinny::launch_wg1_lo : skinny::launch_wg1_hi)(nx, w_map, x_map, p, grid, smem,
                                                                stream);
  } else {
    (nx <= 128 ? skinny::launch_wg2_lo : skinny::launch_wg2_hi)(nx, w_map, x_map, p, grid, smem,
                                                                stream);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
