// rkv redundancy kernels (see hkv_redundancy.h). The n x n cosine matrix is never stored: a row's
// keep-most-recent pair is found by scanning 64 x 64 fp32 tiles from the most recent candidates
// back (a block stops once every row of its tile has found one), and the column sums come from
// sum_i S[i][j] = u_j . (sum_i u_i) - u_j . u_j minus the zeroed entries, in double.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/hkv_redundancy.h"

namespace hardkv::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kTile = 64;   // rows per block, candidates per scanned tile
constexpr int kChunk = 32;  // head dims per shared-memory stage of a tile
// fp32 screening: a tile entry is within about head_dim * 2^-23 (3e-5 at 256) of the double
// cosine, so a pair further than this from the threshold is decided by its fp32 value.
constexpr double kMargin = 1e-3;
// Zeroed entries are summed per column as 2^-40 fixed point (integer atomics: the sum does not
// depend on the order the rows arrive in).
constexpr double kFixedScale = 1099511627776.0;

struct Workspace {
  double* norm;                 // [total] |k_i| + 1e-8
  unsigned long long* removed;  // [total] sum of the zeroed S[i][j] of column j, fixed point
  double* column;               // [total] column mean
};

__host__ __device__ Workspace workspace_of(void* base, int64_t total) {
  Workspace w;
  w.norm = static_cast<double*>(base);
  w.removed = reinterpret_cast<unsigned long long*>(w.norm + total);
  w.column = reinterpret_cast<double*>(w.removed + total);
  return w;
}

// The double operations below are explicitly rounded (no fused multiply-add), in the order of a
// plain loop over dimensions, so the threshold decisions equal a host double loop's.
__device__ double unit_dot(const bf16* ki, double ni, const bf16* kj, double nj, int d) {
  double s = 0.0;
  for (int c = 0; c < d; ++c) {
    const double a = __ddiv_rn(static_cast<double>(__bfloat162float(ki[c])), ni);
    const double b = __ddiv_rn(static_cast<double>(__bfloat162float(kj[c])), nj);
    s = __dadd_rn(s, __dmul_rn(a, b));
  }
  return s;
}

__global__ void __launch_bounds__(kThreads)
    redundancy_norm_kernel(const HkvRedundancyParams p, double* norm) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= p.total_rows) return;
  const bf16* k = p.keys + i * p.head_dim;
  double s = 0.0;
  for (int c = 0; c < p.head_dim; ++c) {
    const double x = __bfloat162float(k[c]);
    s = __dadd_rn(s, __dmul_rn(x, x));
  }
  norm[i] = __dadd_rn(__dsqrt_rn(s), 1e-8);
}

// Per (64-row tile, segment): for every row i the largest j != i with S[i][j] > threshold, whose
// double S[i][j] is added to removed[j]. Thread t computes tile entries (4 * (t / 16) + x,
// 4 * (t % 16) + y), then decides row t / 4 over candidates 16 * (t % 4) .. + 15 of the tile.
__global__ void __launch_bounds__(kThreads)
    redundancy_rows_kernel(const HkvRedundancyParams p, const double* norm_all,
                           unsigned long long* removed) {
  // The tile's unit rows and unit candidates, transposed: [dim][row], [dim][candidate].
  __shared__ __align__(16) float a_s[kChunk][kTile];
  __shared__ __align__(16) float b_s[kChunk][kTile];
  __shared__ float s_s[kTile][kTile + 1];
  __shared__ float inv_a[kTile], inv_b[kTile];
  const int seg = blockIdx.y, row0 = blockIdx.x * kTile;
  const int base = p.indptr[seg], n = p.indptr[seg + 1] - base;
  if (row0 >= n) return;
  const int d = p.head_dim, t = threadIdx.x;
  const bf16* keys = p.keys + static_cast<int64_t>(base) * d;
  const double* norm = norm_all + base;
  if (t < kTile) inv_a[t] = row0 + t < n ? static_cast<float>(1.0 / norm[row0 + t]) : 0.f;
  const int r = t / 4, part = t % 4, i = row0 + r;
  const int ty = t / 16, tx = t % 16;
  const int load_row = t / 4, load_dim = (t % 4) * 8;
  bool done = i >= n;  // rows past the end look for nothing
  int latest = -1;
  for (int col0 = (n - 1) / kTile * kTile; col0 >= 0; col0 -= kTile) {
    __syncthreads();  // inv_a written; the previous tile's s_s and inv_b consumed
    if (t < kTile) inv_b[t] = col0 + t < n ? static_cast<float>(1.0 / norm[col0 + t]) : 0.f;
    float acc[4][4] = {};
    for (int c0 = 0; c0 < d; c0 += kChunk) {
      __syncthreads();  // inv_b written; the previous chunk consumed
      float fa[8] = {}, fb[8] = {};
      const int c = c0 + load_dim;
      if (c < d) {  // head_dim % 8 == 0: a group of 8 dims is wholly in or out
        if (row0 + load_row < n) load8(keys + static_cast<int64_t>(row0 + load_row) * d + c, fa);
        if (col0 + load_row < n) load8(keys + static_cast<int64_t>(col0 + load_row) * d + c, fb);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        a_s[load_dim + e][load_row] = fa[e] * inv_a[load_row];
        b_s[load_dim + e][load_row] = fb[e] * inv_b[load_row];
      }
      __syncthreads();
      const int kc = min(kChunk, d - c0);
      for (int k = 0; k < kc; ++k) {
        const float4 a = *reinterpret_cast<const float4*>(&a_s[k][ty * 4]);
        const float4 b = *reinterpret_cast<const float4*>(&b_s[k][tx * 4]);
        const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
        for (int x = 0; x < 4; ++x) {
#pragma unroll
          for (int y = 0; y < 4; ++y) acc[x][y] = fmaf(av[x], bv[y], acc[x][y]);
        }
      }
    }
#pragma unroll
    for (int x = 0; x < 4; ++x) {
#pragma unroll
      for (int y = 0; y < 4; ++y) s_s[ty * 4 + x][tx * 4 + y] = acc[x][y];
    }
    __syncthreads();
    int found = -1;
    if (!done) {
      for (int cc = 15; cc >= 0 && found < 0; --cc) {
        const int jl = part * 16 + cc, j = col0 + jl;
        if (j >= n || j == i) continue;
        const double s = s_s[r][jl];
        if (s > p.threshold + kMargin) {
          found = j;
        } else if (s > p.threshold - kMargin &&
                   unit_dot(keys + static_cast<int64_t>(i) * d, norm[i],
                            keys + static_cast<int64_t>(j) * d, norm[j], d) > p.threshold) {
          found = j;
        }
      }
    }
    // The row's four deciding lanes are adjacent: the largest of their finds.
    found = max(found, __shfl_xor_sync(0xffffffffu, found, 1));
    found = max(found, __shfl_xor_sync(0xffffffffu, found, 2));
    if (!done && found >= 0) {
      latest = found;
      done = true;
    }
    if (__syncthreads_and(done)) break;
  }
  if (part == 0 && latest >= 0) {
    const double s = unit_dot(keys + static_cast<int64_t>(i) * d, norm[i],
                              keys + static_cast<int64_t>(latest) * d, norm[latest], d);
    atomicAdd(removed + base + latest,
              static_cast<unsigned long long>(__double2ll_rn(s * kFixedScale)));
  }
}

// Block-wide reduction of a double (sum, or max with is_max); every thread gets the result.
__device__ double block_reduce(double v, bool is_max) {
  __shared__ double partial[kThreads / kWarpSize];
  for (int o = kWarpSize / 2; o > 0; o >>= 1) {
    const double w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmax(v, w) : v + w;
  }
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  __syncthreads();  // a previous call's partials consumed
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = partial[0];
  for (int w = 1; w < kThreads / kWarpSize; ++w) v = is_max ? fmax(v, partial[w]) : v + partial[w];
  return v;
}

// Per segment: the column means (one warp per column) and their softmax.
__global__ void __launch_bounds__(kThreads)
    redundancy_softmax_kernel(const HkvRedundancyParams p, Workspace w) {
  __shared__ double u_sum[256];  // sum over rows of the unit keys (head_dim <= 256)
  const int seg = blockIdx.x;
  const int base = p.indptr[seg], n = p.indptr[seg + 1] - base;
  if (n == 0) return;
  const int d = p.head_dim;
  const bf16* keys = p.keys + static_cast<int64_t>(base) * d;
  const double* norm = w.norm + base;
  double* column = w.column + base;
  for (int c = threadIdx.x; c < d; c += kThreads) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) {
      s += __bfloat162float(keys[static_cast<int64_t>(i) * d + c]) / norm[i];
    }
    u_sum[c] = s;
  }
  __syncthreads();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  double local_max = -INFINITY;
  for (int j = warp; j < n; j += kThreads / kWarpSize) {
    double dot = 0.0, self = 0.0;
    for (int c = lane; c < d; c += kWarpSize) {
      const double u = __bfloat162float(keys[static_cast<int64_t>(j) * d + c]) / norm[j];
      dot += u * u_sum[c];
      self += u * u;
    }
    for (int o = kWarpSize / 2; o > 0; o >>= 1) {
      dot += __shfl_xor_sync(0xffffffffu, dot, o);
      self += __shfl_xor_sync(0xffffffffu, self, o);
    }
    const double removed = static_cast<double>(static_cast<long long>(w.removed[base + j]));
    const double mean = (dot - self - removed / kFixedScale) / n;
    if (lane == 0) column[j] = mean;
    local_max = fmax(local_max, mean);
  }
  const double m = block_reduce(local_max, true);  // its barrier also publishes column[]
  double local_sum = 0.0;
  for (int j = threadIdx.x; j < n; j += kThreads) local_sum += exp(column[j] - m);
  const double denom = block_reduce(local_sum, false);
  for (int j = threadIdx.x; j < n; j += kThreads) {
    p.redundancy[base + j] = static_cast<float>(exp(column[j] - m) / denom);
  }
}

}  // namespace

size_t hkv_redundancy_workspace_bytes(int64_t total_rows) {
  return static_cast<size_t>(total_rows) * (sizeof(double) * 2 + sizeof(unsigned long long));
}

void launch_hkv_redundancy(const HkvRedundancyParams& p, cudaStream_t stream) {
  CUDA_REQUIRE(p.head_dim > 0 && p.head_dim % 8 == 0 && p.head_dim <= 256, kUnsupported,
               "hkv redundancy: head_dim ", p.head_dim, " is not a multiple of 8 up to 256");
  CUDA_REQUIRE(p.num_segments >= 0 && p.max_candidates >= 0 && p.total_rows >= 0, kInvalidArgument,
               "hkv redundancy: bad sizes num_segments=", p.num_segments,
               " max_candidates=", p.max_candidates, " total_rows=", p.total_rows);
  CUDA_REQUIRE(p.threshold >= -1.0 && p.threshold <= 1.0, kInvalidArgument,
               "hkv redundancy: threshold ", p.threshold, " is outside [-1, 1]");
  if (p.num_segments == 0 || p.total_rows == 0 || p.max_candidates == 0) return;
  CUDA_REQUIRE(p.keys && p.indptr && p.redundancy && p.workspace, kInvalidArgument,
               "hkv redundancy: a required pointer is null");
  const Workspace w = workspace_of(p.workspace, p.total_rows);
  CUDA_CHECK(cudaMemsetAsync(w.removed, 0, sizeof(unsigned long long) * p.total_rows, stream));
  redundancy_norm_kernel<<<static_cast<unsigned>(ceil_div(p.total_rows, kThreads)), kThreads, 0,
                           stream>>>(p, w.norm);
  CUDA_CHECK_LAUNCH();
  const dim3 row_grid(static_cast<unsigned>(ceil_div(p.max_candidates, kTile)),
                      static_cast<unsigned>(p.num_segments));
  redundancy_rows_kernel<<<row_grid, kThreads, 0, stream>>>(p, w.norm, w.removed);
  CUDA_CHECK_LAUNCH();
  redundancy_softmax_kernel<<<static_cast<unsigned>(p.num_segments), kThreads, 0, stream>>>(p, w);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
