// GPU sampling, one thread-block cluster per row of logits (each block a contiguous slice of the
// row; cluster-wide sums through distributed shared memory), so a few rows still use many SMs.
// The kept set of top-k / top-p / min-p is a prefix of the tokens sorted by (logit desc, id asc);
// it is found by exact radix select on 32-bit order-preserving keys (three counting passes per
// filter) instead of a sort. The token is then drawn by inverse CDF in token-id order over the
// kept set: one pass sums each thread's contiguous segment, a scan over threads and blocks finds
// the segment where the CDF crosses the row's uniform, and its thread walks it. Weights are
// exp((x - max) / T) in double, as the host sampler computes them, so draws match it except
// where summation order moves a CDF boundary by a few ulps. Rows with a temperature and no filter
// can take a one-pass form of the draw (draw_temperature, HARDKV_SAMPLE_ONE_PASS); all-greedy
// launches of few rows can take a kernel without clusters (sampling_greedy.cu).
#include <cooperative_groups.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/env_switch.h"
#include "kernels/cuda/sampling.h"
#include "kernels/cuda/sampling_greedy.h"
#include "kernels/cuda/sampling_keys.cuh"

namespace hardkv::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxCluster = 16;
constexpr int kMinSlice = 4096;  // tokens per block at least, before a row gets more blocks
constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxBins = 2048;
constexpr int kLevels = 3;  // key bits [31:21], [20:10], [9:0]
__constant__ int kShift[kLevels] = {21, 10, 0};
__constant__ int kBins[kLevels] = {2048, 2048, 1024};
// Token weights w in [0, 1] as fixed point for the top-p histograms: integer sums are exact and
// order-independent; 2^18 tokens * 2^44 < 2^63.
constexpr double kMassScale = 17592186044416.0;  // 2^44
constexpr uint32_t kAllTies = 0xffffffffu;

using u64 = unsigned long long;

// Tokens kept: key > key, or key == key and rank among those ties (in id order) < need.
struct Prefix {
  uint32_t key;
  uint32_t need;
};
constexpr Prefix kEveryToken = {0, kAllTies};

__device__ __forceinline__ bool shorter(Prefix a, Prefix b) {
  return a.key > b.key || (a.key == b.key && a.need < b.need);
}

// Per-row weight w(x) = exp((x - max) * inv_t), the host sampler's arithmetic (double).
struct Weights {
  double max;
  double inv_t;
  __device__ __forceinline__ double operator()(float x) const {
    return exp((static_cast<double>(x) - max) * inv_t);
  }
};
__device__ __forceinline__ u64 to_fixed(double w) { return __double2ull_rn(w * kMassScale); }

// Temperature-only rows (no filter) in one pass: each warp walks a contiguous chunk of its
// block's slice in rounds of 128 tokens (4 per lane) and keeps, per round, the round's maximum
// and its weight sum relative to that maximum; see draw_temperature().
constexpr int kRoundTokens = 128;
constexpr int kMaxRounds = 80;  // per warp: slices up to 16 * 80 * 128 = 163,840 tokens
constexpr int kRoundsPerLane = (kMaxRounds + 31) / 32;
struct Rounds {
  double sum[kWarps][kMaxRounds];  // sum of exp((x - max_r) / T) over round r
  float max[kWarps][kMaxRounds];   // max_r (-inf: the round has no finite logit)
};

struct Shared {
  union {
    u64 hist[kMaxBins];  // this block's histogram (read by the whole cluster)
    Rounds rounds;       // draw_temperature's per-round sums
  };
  alignas(8) char red[kWarps * 8];  // one value per warp for block reductions and scans
  alignas(8) char slot[8];          // this block's value for cluster reductions and scans
  uint32_t digit;
  u64 above, bin_total;
  int found;
  double round_start;  // draw_temperature: the CDF before the chosen round
};
static_assert(sizeof(Rounds) <= sizeof(u64) * kMaxBins);

// The row's cluster and this block's slice [begin, end) of the row.
struct Ctx {
  cg::cluster_group cluster;
  int rank, size, begin, end;
  __device__ void sync() {
    if (size == 1) {
      __syncthreads();
    } else {
      cluster.sync();
    }
  }
  template <typename T>
  __device__ T* remote(T* p, int r) {
    return size == 1 ? p : cluster.map_shared_rank(p, r);
  }
};

template <typename T>
__device__ __forceinline__ T warp_incl_scan(T v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const T n = __shfl_up_sync(kFull, v, o);
    if (lane >= o) v += n;
  }
  return v;
}

// Exclusive prefix sum over the block in thread order; `total` gets the block's sum.
template <typename T>
__device__ T block_excl_scan(T v, Shared& sh, T& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  T* red = reinterpret_cast<T*>(sh.red);
  const T incl = warp_incl_scan(v);
  T excl = __shfl_up_sync(kFull, incl, 1);
  if (lane == 0) excl = T(0);
  __syncthreads();  // red[] may still be read by the previous call
  if (lane == 31) red[warp] = incl;
  __syncthreads();
  T base = T(0), sum = T(0);
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) base = sum;
    sum += red[w];
  }
  total = sum;
  return base + excl;
}

// op over the warp's 32 values, on every lane.
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

template <typename T, typename Op>
__device__ T block_reduce(T v, Shared& sh, Op op) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  T* red = reinterpret_cast<T*>(sh.red);
  v = warp_reduce(v, op);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  T r = red[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, red[w]);
  return r;
}

// Cluster-wide exclusive scan (in rank order) of a block-uniform value; `total` gets the sum.
// Every block adds in the same order, so all get bit-identical totals.
template <typename T>
__device__ T cluster_excl_scan(T v, Shared& sh, Ctx& c, T& total) {
  if (c.size == 1) {
    total = v;
    return T(0);
  }
  T* slot = reinterpret_cast<T*>(sh.slot);
  if (threadIdx.x == 0) *slot = v;
  c.sync();
  T excl = T(0), sum = T(0);
  for (int r = 0; r < c.size; ++r) {
    if (r == c.rank) excl = sum;
    sum += *c.remote(slot, r);
  }
  c.sync();  // slots read before they are rewritten
  total = sum;
  return excl;
}

template <typename T, typename Op>
__device__ T cluster_reduce(T v, Shared& sh, Ctx& c, Op op) {
  v = block_reduce(v, sh, op);
  if (c.size == 1) return v;
  T* slot = reinterpret_cast<T*>(sh.slot);
  if (threadIdx.x == 0) *slot = v;
  c.sync();
  T r = *c.remote(slot, 0);
  for (int k = 1; k < c.size; ++k) r = op(r, *c.remote(slot, k));
  c.sync();
  return r;
}

template <typename T>
__device__ T cluster_sum(T v, Shared& sh, Ctx& c) {
  return cluster_reduce(v, sh, c, [](T a, T b) { return a + b; });
}

// Calls f(x, id, valid) for every token of the block's slice; all 32 lanes of a warp call
// together (valid is false for padding lanes), so f may use full-warp intrinsics. 16-byte loads
// when the slice is 16-byte aligned, four in flight per thread (latency, not bandwidth, limits
// one SM).
template <typename F>
__device__ __forceinline__ void for_each_logit(const float* __restrict__ row, const Ctx& c, F&& f) {
  constexpr int kUnroll = 4;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* slice = row + c.begin;
  const int len = c.end - c.begin;
  int scalar_from = 0;
  if ((reinterpret_cast<uintptr_t>(slice) & 15) == 0) {
    const int n4 = len >> 2;
    const float4* s4 = reinterpret_cast<const float4*>(slice);
    for (int base = warp * 32; base < n4; base += kUnroll * kThreads) {
      float4 v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = base + u * kThreads + lane;
        v[u] = i < n4 ? __ldg(s4 + i) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (base + u * kThreads >= n4) break;  // warp-uniform
        const int i = base + u * kThreads + lane;
        const bool valid = i < n4;
        const int id = c.begin + 4 * i;
        f(v[u].x, id, valid);
        f(v[u].y, id + 1, valid);
        f(v[u].z, id + 2, valid);
        f(v[u].w, id + 3, valid);
      }
    }
    scalar_from = 4 * n4;
  }
  for (int base = scalar_from + warp * 32; base < len; base += kThreads) {
    const int i = base + lane;
    const bool valid = i < len;
    f(valid ? __ldg(slice + i) : 0.f, c.begin + i, valid);
  }
}

// Adds `amount` (1 unless `mass`) to hist[bin] for every lane with add set; lanes of one warp that
// hit the same bin are summed first (logits crowd into few bins: unaggregated shared atomics on
// one address would serialise).
__device__ __forceinline__ void warp_hist_add(u64* hist, bool add, uint32_t bin, bool mass,
                                              u64 amount) {
  if (!__any_sync(kFull, add)) return;  // most warps, past the first digit
  const unsigned peers = __match_any_sync(kFull, add ? bin : 0xffffffffu);
  if (!add) return;
  const int lane = threadIdx.x & 31;
  u64 sum = __popc(peers);
  if (mass) {
    sum = 0;
    for (unsigned m = peers; m; m &= m - 1) sum += __shfl_sync(peers, amount, __ffs(m) - 1);
  }
  if (lane == __ffs(peers) - 1) atomicAdd(&hist[bin], sum);
}

struct RowStats {
  float max;
  int argmax;    // lowest id among the maxima
  double z_raw;  // sum exp(x - max) (only when asked)
};

// One pass: the maximum, its lowest id, and (online) the softmax normaliser of the raw logits.
__device__ __forceinline__ RowStats row_stats(const float* row, Ctx& c, bool want_z, Shared& sh) {
  float m = -INFINITY;
  int id = INT_MAX;
  double z = 0.0;  // relative to m
  for_each_logit(row, c, [&](float x, int i, bool valid) {
    if (!valid) return;
    if (x > m) {
      if (want_z) z = z * exp(static_cast<double>(m) - x) + 1.0;
      m = x;
      id = i;
    } else {
      if (x == m && i < id) id = i;
      if (want_z && x > -INFINITY) z += exp(static_cast<double>(x) - m);
    }
  });
  const u64 best =
      cluster_reduce(pack_arg(m, id), sh, c, [](u64 a, u64 b) { return a > b ? a : b; });
  RowStats s{key_value(static_cast<uint32_t>(best >> 32)), packed_id(best), 0.0};
  if (want_z) {
    const double mine = m > -INFINITY ? z * exp(static_cast<double>(m) - s.max) : 0.0;
    s.z_raw = cluster_sum(mine, sh, c);
  }
  return s;
}

// The shortest prefix, in (key desc, id asc) order, of the tokens inside `within` whose measure
// reaches the target. Count mode (mass == false): measure 1 per token, target `k`. Mass mode:
// measure w(x) (fixed point), target ceil(top_p * mass of `within`). Radix select, most
// significant digit first: each level histograms the tokens that share the digits chosen so far
// (every block its slice, then every block sums the cluster's histograms: integer sums, so all
// blocks pick the same digit) and picks the digit where the running measure crosses the target.
// Ties of the final key take the fewest needed, lowest ids first (the draw applies that order).
__device__ __forceinline__ Prefix select_prefix(const float* row, Ctx& c, bool mass, uint32_t k,
                                                float top_p, Prefix within, Weights w, Shared& sh) {
  // Ties of within.key are cut by id: they are left out of the scan and added as need copies.
  const bool cut_ties = within.need != kAllTies;
  const u64 tie_measure = mass && cut_ties ? to_fixed(w(key_value(within.key))) : 1ull;
  uint32_t hi = 0, hi_mask = 0;
  u64 above = 0, target = k, bin_total = 0;
  for (int level = 0; level < kLevels; ++level) {
    const int shift = kShift[level], nb = kBins[level];
    for (int b = threadIdx.x; b < nb; b += kThreads) sh.hist[b] = 0;
    __syncthreads();
    for_each_logit(row, c, [&](float x, int, bool valid) {
      const uint32_t key = order_key(x);
      bool add =
          valid && (key & hi_mask) == hi && key >= within.key && !(cut_ties && key == within.key);
      u64 amount = 1;
      if (mass && add) {
        amount = to_fixed(w(x));
        add = amount != 0;
      }
      warp_hist_add(sh.hist, add, (key >> shift) & (nb - 1), mass, amount);
    });
    if (threadIdx.x == 0 && c.rank == 0 && cut_ties && (within.key & hi_mask) == hi) {
      atomicAdd(&sh.hist[(within.key >> shift) & (nb - 1)], within.need * tie_measure);
    }
    c.sync();  // every block's histogram complete
    // Each thread owns nb / kThreads consecutive bins, from the top bin down.
    const int per = nb / kThreads;
    u64 h[kMaxBins / kThreads];
    u64 mine = 0;
    for (int j = 0; j < per; ++j) {
      const int b = nb - 1 - (threadIdx.x * per + j);
      h[j] = 0;
      for (int r = 0; r < c.size; ++r) h[j] += c.remote(sh.hist, r)[b];
      mine += h[j];
    }
    u64 total;
    u64 run = above + block_excl_scan(mine, sh, total);
    if (level == 0 && mass) {
      const double t = ceil(static_cast<double>(top_p) * static_cast<double>(total));
      target = t < 1.0 ? 1ull : static_cast<u64>(t);
      if (target > total) target = total;
    }
    for (int j = 0; j < per; ++j) {
      if (run < target && run + h[j] >= target) {
        sh.digit = nb - 1 - (threadIdx.x * per + j);
        sh.above = run;
        sh.bin_total = h[j];
      }
      run += h[j];
    }
    c.sync();  // sh.digit written; every block done reading the others' histograms
    hi |= sh.digit << shift;
    hi_mask |= static_cast<uint32_t>(nb - 1) << shift;
    above = sh.above;
    bin_total = sh.bin_total;
    __syncthreads();  // sh.digit read before the next level rewrites it
  }
  const u64 unit = mass ? to_fixed(w(key_value(hi))) : 1ull;  // > 0: the crossing bin had mass
  const u64 need = (target - above + unit - 1) / unit;
  // All ties of the final key kept (the common case): the draw need not rank them.
  if (need >= bin_total / unit && !(cut_ties && hi == within.key)) return {hi, kAllTies};
  return {hi, static_cast<uint32_t>(need < kAllTies ? need : kAllTies - 1)};
}

// Min-p keeps w(x) >= min_p (w(max) = 1): every token at or above the smallest such key.
__device__ __forceinline__ Prefix min_p_prefix(const float* row, Ctx& c, float min_p, Weights w,
                                               Shared& sh) {
  uint32_t lo = 0xffffffffu;
  for_each_logit(row, c, [&](float x, int, bool valid) {
    const uint32_t key = order_key(x);
    if (valid && key < lo && w(x) >= static_cast<double>(min_p)) lo = key;
  });
  lo = cluster_reduce(lo, sh, c, [](uint32_t a, uint32_t b) { return a < b ? a : b; });
  return {lo, kAllTies};
}

// This thread's contiguous segment [begin, end) of the block's slice (the draw's id order).
struct Segment {
  int begin, end;
};
__device__ __forceinline__ Segment thread_segment(const Ctx& c) {
  const int len = c.end - c.begin;
  const int seg = (len + kThreads - 1) / kThreads + 3 & ~3;  // a multiple of 4: aligned float4s
  const int b = min(c.end, c.begin + static_cast<int>(threadIdx.x) * seg);
  return {b, min(c.end, b + seg)};
}

// Calls f(x, id) over a segment in id order (float4 loads when aligned).
template <typename F>
__device__ __forceinline__ void walk_segment(const float* row, Segment s, F&& f) {
  int i = s.begin;
  if ((reinterpret_cast<uintptr_t>(row + i) & 15) == 0) {
    for (; i + 8 <= s.end; i += 8) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(row + i));
      const float4 b = __ldg(reinterpret_cast<const float4*>(row + i + 4));
      if (!f(a.x, i) || !f(a.y, i + 1) || !f(a.z, i + 2) || !f(a.w, i + 3) || !f(b.x, i + 4) ||
          !f(b.y, i + 5) || !f(b.z, i + 6) || !f(b.w, i + 7)) {
        return;
      }
    }
  }
  for (; i < s.end; ++i) {
    if (!f(__ldg(row + i), i)) return;
  }
}

// Decides, token by token in id order, whether it is kept (ties of kept.key by rank).
struct KeepRule {
  Prefix kept;
  uint32_t rank;  // ties of kept.key before the current token
  __device__ __forceinline__ bool operator()(float x) {
    const uint32_t key = order_key(x);
    if (key != kept.key) return key > kept.key;
    return kept.need == kAllTies || rank++ < kept.need;
  }
};

struct Draw {
  int token;  // -1 on every thread but the one that drew it
  int kept_count;
};

// Inverse CDF in token-id order over the kept tokens: the first kept token whose inclusive
// cumulative weight exceeds uniform * (kept mass). If rounding leaves that beyond the last sum,
// the last kept token of nonzero weight (as the host does).
__device__ __forceinline__ Draw draw(const float* row, Ctx& c, Prefix kept, Weights w,
                                     double uniform, Shared& sh) {
  const Segment seg = thread_segment(c);
  // Ranks of cut ties: count them per segment first (rare: a threshold inside a tie group).
  uint32_t tie_base = 0;
  if (kept.need != kAllTies) {
    uint32_t n = 0;
    walk_segment(row, seg, [&](float x, int) {
      n += order_key(x) == kept.key;
      return true;
    });
    uint32_t block_ties, all_ties;
    tie_base = block_excl_scan(n, sh, block_ties);
    tie_base += cluster_excl_scan(block_ties, sh, c, all_ties);
  }
  // Pass 1: each thread's kept mass.
  double s = 0.0;
  int count = 0, last = -1;
  KeepRule keep{kept, tie_base};
  walk_segment(row, seg, [&](float x, int id) {
    if (keep(x)) {
      const double wx = w(x);
      s += wx;
      if (wx > 0.0) ++count, last = id;
    }
    return true;
  });
  double block_mass, total;
  const double thread_pre = block_excl_scan(s, sh, block_mass);
  const double start = cluster_excl_scan(block_mass, sh, c, total) + thread_pre;
  const int kept_count = cluster_sum(count, sh, c);
  const double target = uniform * total;
  // The first segment (in id order) whose inclusive sum passes the target.
  const int me = c.rank * kThreads + static_cast<int>(threadIdx.x);
  const int mine = s > 0.0 && start + s > target ? me : INT_MAX;
  const int first = cluster_reduce(mine, sh, c, [](int a, int b) { return a < b ? a : b; });
  Draw d{-1, kept_count};
  if (first == INT_MAX) {  // rounding: the last kept token of nonzero weight
    const int lst = cluster_reduce(last, sh, c, [](int a, int b) { return a > b ? a : b; });
    if (c.rank == 0 && threadIdx.x == 0) d.token = lst;
    return d;
  }
  if (first == me) {  // walk the segment again, now with the running sum
    double cum = start;
    int tok = last;
    KeepRule keep2{kept, tie_base};
    walk_segment(row, seg, [&](float x, int id) {
      if (!keep2(x)) return true;
      const double wx = w(x);
      cum += wx;
      if (wx > 0.0 && cum > target) {
        tok = id;
        return false;
      }
      return true;
    });
    d.token = tok;
  }
  return d;
}

// The round count per warp that draw_temperature needs for slices of `slice` tokens.
__host__ __device__ constexpr int rounds_per_warp(int slice) {
  return ((slice + kRoundTokens - 1) / kRoundTokens + kWarps - 1) / kWarps;
}

// One round's 4 logits of this lane (-inf past the slice's end).
__device__ __forceinline__ float4 round_logits(const float* slice, int len, bool aligned, int t) {
  if (aligned && t + 4 <= len) return __ldg(reinterpret_cast<const float4*>(slice + t));
  float v[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) v[j] = t + j < len ? __ldg(slice + t + j) : -INFINITY;
  return make_float4(v[0], v[1], v[2], v[3]);
}

// Inverse CDF in token-id order over every token with weight exp((x - max) / T), as draw() with
// no filter, but reading the row once: pass 1 stores per round (128 tokens) the round's maximum
// m_r and sum s_r of exp((x - m_r) / T); once the row's maximum M is known, round r weighs
// s_r * exp((m_r - M) / T). Scans over rounds, warps and the cluster's blocks find the round
// where the CDF crosses uniform * total; its warp reads those 128 tokens again and scans their
// weights exp((x - M) / T). Rounding can differ from the host's left-to-right sum by a few ulps,
// as in draw(). Needs rounds_per_warp(slice) <= kMaxRounds. kept_count is counted (one more
// pass) only when want_kept. token: set on one thread of the cluster (-1 elsewhere); -2 on every
// thread if every weight is zero (every logit -inf), where the caller takes the argmax.
__device__ __noinline__ Draw draw_temperature(const float* row, Ctx& c, double inv_t,
                                              double uniform, bool want_kept, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* slice = row + c.begin;
  const int len = c.end - c.begin;
  const bool aligned = (reinterpret_cast<uintptr_t>(slice) & 15) == 0;
  const int per_warp = rounds_per_warp(len);
  const int r0 = warp * per_warp;  // this warp's first round (block-relative)
  const int r_end = min(r0 + per_warp, (len + kRoundTokens - 1) / kRoundTokens);
  // Pass 1, kBatch rounds' loads in flight per warp.
  constexpr int kBatch = 4;
  float warp_max = -INFINITY;
  for (int rb = r0; rb < r_end; rb += kBatch) {
    float4 v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      v[u] = rb + u < r_end ? round_logits(slice, len, aligned, (rb + u) * kRoundTokens + 4 * lane)
                            : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      if (rb + u >= r_end) break;  // warp-uniform
      const float m = warp_reduce(fmaxf(fmaxf(v[u].x, v[u].y), fmaxf(v[u].z, v[u].w)),
                                  [](float a, float b) { return fmaxf(a, b); });
      double ls = 0.0;
      if (m > -INFINITY) {
        const double md = m;
        ls = exp((static_cast<double>(v[u].x) - md) * inv_t) +
             exp((static_cast<double>(v[u].y) - md) * inv_t) +
             exp((static_cast<double>(v[u].z) - md) * inv_t) +
             exp((static_cast<double>(v[u].w) - md) * inv_t);
      }
      const double sr = warp_reduce(ls, [](double a, double b) { return a + b; });
      if (lane == 0) {
        sh.rounds.max[warp][rb + u - r0] = m;
        sh.rounds.sum[warp][rb + u - r0] = sr;
      }
      warp_max = fmaxf(warp_max, m);
    }
  }
  const float row_max = cluster_reduce(warp_max, sh, c, [](float a, float b) { return fmaxf(a, b); });
  // (cluster_reduce's barriers also publish the rounds to the whole block.)
  // Each lane: kRoundsPerLane consecutive rounds of its warp, weighed against the row's maximum.
  const int my_first = lane * kRoundsPerLane;
  double wr[kRoundsPerLane];
  double lane_sum = 0.0;
#pragma unroll
  for (int j = 0; j < kRoundsPerLane; ++j) {
    const int r = my_first + j;
    wr[j] = 0.0;
    if (r0 + r < r_end && row_max > -INFINITY) {
      const float m = sh.rounds.max[warp][r];
      if (m > -INFINITY) {
        wr[j] = sh.rounds.sum[warp][r] *
                exp((static_cast<double>(m) - static_cast<double>(row_max)) * inv_t);
      }
    }
    lane_sum += wr[j];
  }
  double block_mass, total;
  const double lane_pre = block_excl_scan(lane_sum, sh, block_mass);  // thread order = id order
  const double start = cluster_excl_scan(block_mass, sh, c, total) + lane_pre;
  Draw d{-1, 0};
  if (want_kept) {
    const Weights w{static_cast<double>(row_max), inv_t};
    int count = 0;
    for_each_logit(row, c, [&](float x, int, bool valid) { count += valid && w(x) > 0.0; });
    d.kept_count = cluster_sum(count, sh, c);
  }
  if (!(total > 0.0)) {  // every logit -inf
    d.token = -2;
    return d;
  }
  const double target = uniform * total;
  // The first round (in id order) whose inclusive CDF passes the target; if rounding leaves the
  // target at or past the total, the last round of nonzero weight.
  const int base = (c.rank * kWarps + warp) * kMaxRounds + my_first;
  int first = INT_MAX, last = -1;
  double cum = start;
#pragma unroll
  for (int j = 0; j < kRoundsPerLane; ++j) {
    if (wr[j] > 0.0) {
      if (first == INT_MAX && cum + wr[j] > target) first = base + j;
      last = base + j;
    }
    cum += wr[j];
  }
  int pick = cluster_reduce(first, sh, c, [](int a, int b) { return a < b ? a : b; });
  const bool crossed = pick != INT_MAX;
  if (!crossed) pick = cluster_reduce(last, sh, c, [](int a, int b) { return a > b ? a : b; });
  const int pick_block = pick / (kWarps * kMaxRounds);
  const int pick_warp = pick / kMaxRounds % kWarps;
  const int pick_round = pick % kMaxRounds;  // in the warp's chunk
  // The lane that holds the round knows the CDF before it.
  if (pick_block == c.rank && pick_warp == warp && pick_round / kRoundsPerLane == lane) {
    double before = start;
#pragma unroll
    for (int j = 0; j < kRoundsPerLane; ++j) {
      if (j < pick_round - my_first) before += wr[j];
    }
    sh.round_start = before;
  }
  __syncthreads();
  if (pick_block != c.rank || pick_warp != warp) return d;
  // The round again: exact weights exp((x - M) / T), a warp scan, then the crossing lane's 4.
  const Weights w{static_cast<double>(row_max), inv_t};
  const int t0 = (r0 + pick_round) * kRoundTokens + 4 * lane;
  const float4 v = round_logits(slice, len, aligned, t0);
  const float x[4] = {v.x, v.y, v.z, v.w};
  double wx[4], q = 0.0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    wx[j] = t0 + j < len ? w(x[j]) : 0.0;
    q += wx[j];
  }
  const double incl = warp_incl_scan(q);
  const double before = sh.round_start;
  const double tgt = crossed ? target : INFINITY;
  const unsigned hit = __ballot_sync(kFull, q > 0.0 && before + incl > tgt);
  const unsigned positive = __ballot_sync(kFull, q > 0.0);
  // No lane crosses (the exact weights summed a little below the round's stored sum): the round's
  // last token of nonzero weight, as draw() falls back to the last kept token.
  const int owner = hit ? __ffs(hit) - 1 : 31 - __clz(positive);
  if (lane == owner) {
    double run = before + incl - q;
    int tok = -1;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (wx[j] > 0.0) {
        run += wx[j];
        tok = c.begin + t0 + j;
        if (hit && run > tgt) break;
      }
    }
    d.token = tok;
  }
  return d;
}

// Up to kSampleInlineRows rows' parameters travel as a kernel argument (no copy to the device).
struct InlineParams {
  SampleRowParams rows[kSampleInlineRows];
  int num_rows = 0;  // > 0: read these instead of `params`
};

// kOnePass: temperature-only rows take draw_temperature (a separate instantiation, so that the
// kernel without it compiles as it did before that path existed).
template <bool kOnePass>
__global__ void __launch_bounds__(kThreads, 2)
    sample_kernel(const float* __restrict__ logits, int vocab,
                  const SampleRowParams* __restrict__ params,
                  const __grid_constant__ InlineParams inline_params,
                  int32_t* __restrict__ out_tokens, float* __restrict__ out_logprobs,
                  int32_t* __restrict__ out_kept, int32_t* __restrict__ out_tokens_copy) {
  __shared__ Shared sh;
  Ctx c{cg::this_cluster(), 0, 1, 0, 0};
  c.size = static_cast<int>(c.cluster.num_blocks());
  c.rank = static_cast<int>(c.cluster.block_rank());
  const int64_t r = blockIdx.x / c.size;
  const int slice = ((vocab + c.size - 1) / c.size + 3) & ~3;
  c.begin = min(vocab, c.rank * slice);
  c.end = min(vocab, c.begin + slice);
  const float* row = logits + r * vocab;
  const SampleRowParams p = inline_params.num_rows > 0 ? inline_params.rows[r] : params[r];
  const bool forced = p.forced >= 0;
  const bool want_logprob = out_logprobs != nullptr;
  // Temperature alone (no filter): one pass over the row (draw_temperature), no row_stats.
  const bool filtered = (p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.f || p.min_p > 0.f;
  const bool temperature_only = !forced && p.temperature != 0.f && !filtered &&
                                kOnePass && rounds_per_warp(slice) <= kMaxRounds;
  RowStats st{0.f, 0, 0.0};
  if ((!forced && !temperature_only) || want_logprob) st = row_stats(row, c, want_logprob, sh);
  const bool leader = c.rank == 0 && threadIdx.x == 0;
  int token = -1;  // set on the thread that writes the row's token
  int kept_count;
  if (forced) {
    if (leader) token = p.forced;
    kept_count = 0;
  } else if (p.temperature == 0.f) {
    if (leader) token = st.argmax;
    kept_count = 1;
  } else if (temperature_only) {
    const Draw d = draw_temperature(row, c, 1.0 / static_cast<double>(p.temperature), p.uniform,
                                    out_kept != nullptr, sh);
    token = d.token;
    kept_count = d.kept_count;
    if (d.token == -2) {  // every logit -inf: the argmax, as below
      token = -1;
      if (!want_logprob) st = row_stats(row, c, false, sh);
      if (leader) token = st.argmax;
    }
  } else {
    const Weights w{static_cast<double>(st.max), 1.0 / static_cast<double>(p.temperature)};
    Prefix kept = kEveryToken;
    if (p.top_k > 0 && p.top_k < vocab) {
      kept = select_prefix(row, c, false, p.top_k, 1.f, kEveryToken, w, sh);
    }
    if (p.top_p < 1.f) kept = select_prefix(row, c, true, 0, p.top_p, kept, w, sh);
    if (p.min_p > 0.f) {
      const Prefix m = min_p_prefix(row, c, p.min_p, w, sh);
      if (shorter(m, kept)) kept = m;
    }
    const Draw d = draw(row, c, kept, w, p.uniform, sh);
    token = d.token;
    kept_count = d.kept_count;
    if (leader && token < 0 && d.kept_count == 0) token = st.argmax;  // every logit -inf
  }
  if (token >= 0) {
    out_tokens[r] = token;
    if (out_tokens_copy) out_tokens_copy[r] = token;
    if (want_logprob) {
      out_logprobs[r] =
          static_cast<float>(static_cast<double>(row[token]) - st.max - log(st.z_raw));
    }
  }
  if (leader && out_kept) out_kept[r] = kept_count;
  c.sync();  // no block exits while the cluster may still read its shared memory
}

// HARDKV_SAMPLE_ONE_PASS=1 / 0: temperature-only rows in one pass (draw_temperature), or the
// general path (row_stats, then draw()).
bool one_pass_enabled() {
  static const bool on = env_switch("HARDKV_SAMPLE_ONE_PASS", kSamplePathsDefaultOn);
  return on;
}

int device_sms() {
  static const int num_sms = [] {
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return sms;
  }();
  return num_sms;
}

// HARDKV_SAMPLE_GREEDY_LEAN=1 / 0: the plain greedy kernel where it applies, or always the
// cluster kernel.
bool greedy_lean_enabled() {
  static const bool on = env_switch("HARDKV_SAMPLE_GREEDY_LEAN", kSamplePathsDefaultOn);
  return on;
}

// Blocks per row: the most (a power of two, <= the largest cluster this GPU runs) that keep
// rows * blocks within two waves of the SMs, and at least kMinSlice tokens per block.
int pick_cluster_size(int64_t num_rows, int64_t vocab, int requested) {
  static const int max_cluster = [] {
    if (cudaFuncSetAttribute(sample_kernel<false>, cudaFuncAttributeNonPortableClusterSizeAllowed,
                             1) != cudaSuccess ||
        cudaFuncSetAttribute(sample_kernel<true>, cudaFuncAttributeNonPortableClusterSizeAllowed,
                             1) != cudaSuccess) {
      cudaGetLastError();
      return 8;
    }
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = kMaxCluster;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.gridDim = dim3(kMaxCluster);
    cfg.blockDim = dim3(kThreads);
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    int clusters_one_pass = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, sample_kernel<false>, &cfg) != cudaSuccess ||
        cudaOccupancyMaxActiveClusters(&clusters_one_pass, sample_kernel<true>, &cfg) !=
            cudaSuccess ||
        clusters < 1 || clusters_one_pass < 1) {
      cudaGetLastError();
      return 8;
    }
    return kMaxCluster;
  }();
  const int num_sms = device_sms();
  if (requested > 0) return min(requested, max_cluster);
  int size = 1;
  while (size * 2 <= max_cluster && num_rows * size * 2 <= 2 * num_sms &&
         vocab / (size * 2) >= kMinSlice) {
    size *= 2;
  }
  return size;
}

}  // namespace

void launch_sample(const float* logits, int64_t num_rows, int64_t vocab,
                   const SampleRowParams* params, int32_t* out_tokens, float* out_logprobs,
                   int32_t* out_kept, cudaStream_t stream, int cluster_size,
                   const SampleRowParams* host_params, int32_t* out_tokens_copy) {
  CUDA_REQUIRE(vocab > 0 && vocab < INT_MAX - (1 << 14), kInvalidArgument, "sample: vocabulary of ",
               vocab, " tokens (1 .. 2^31 - 2^14 supported)");
  CUDA_REQUIRE(cluster_size >= 0 && cluster_size <= kMaxCluster, kInvalidArgument,
               "sample: cluster size ", cluster_size, " (0 = auto, at most ", kMaxCluster, ")");
  const int size = pick_cluster_size(num_rows, vocab, cluster_size);
  CUDA_REQUIRE(num_rows >= 0 && num_rows * size <= INT_MAX, kInvalidArgument, "sample: ", num_rows,
               " rows");
  if (num_rows == 0) return;
  // Only greedy rows, parameters known here, nothing but tokens asked for: the plain kernel.
  if (host_params != nullptr && out_logprobs == nullptr && out_kept == nullptr &&
      cluster_size == 0 && num_rows <= kGreedyMaxRows && greedy_lean_enabled() &&
      std::all_of(host_params, host_params + num_rows, [](const SampleRowParams& p) {
        return p.temperature == 0.f && p.forced < 0;
      })) {
    launch_sample_greedy(logits, num_rows, vocab, out_tokens, out_tokens_copy, device_sms(),
                         stream);
    return;
  }
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = size;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cfg.gridDim = dim3(static_cast<unsigned>(num_rows * size));
  cfg.blockDim = dim3(kThreads);
  cfg.stream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  InlineParams inline_params;
  if (host_params != nullptr) {
    CUDA_REQUIRE(num_rows <= kSampleInlineRows, kInvalidArgument, "sample: ", num_rows,
                 " rows of host parameters (at most ", kSampleInlineRows, ")");
    std::copy(host_params, host_params + num_rows, inline_params.rows);
    inline_params.num_rows = static_cast<int>(num_rows);
  }
  const auto kernel = one_pass_enabled() ? sample_kernel<true> : sample_kernel<false>;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, logits, static_cast<int>(vocab), params,
                                inline_params, out_tokens, out_logprobs, out_kept,
                                out_tokens_copy));
}

}  // namespace hardkv::cuda
