// GPU sampling, one thread block per row of logits. The kept set of top-k / top-p / min-p is a
// prefix of the tokens sorted by (logit desc, id asc); it is found by exact radix select on 32-bit
// order-preserving keys (three counting passes per filter) instead of a sort, then the token is
// drawn by inverse CDF in token-id order over the kept set (a block-wide prefix scan). Weights are
// exp((x - max) / T) in double, as the host sampler computes them, so draws match it bit-for-bit
// except where summation order moves a CDF boundary by a few ulps.
#include <cfloat>
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.h"

namespace hardkv::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxBins = 2048;
constexpr int kLevels = 3;  // key bits [31:21], [20:10], [9:0]
__constant__ int kShift[kLevels] = {21, 10, 0};
__constant__ int kBins[kLevels] = {2048, 2048, 1024};
// Token weights w in [0, 1] as fixed point for the top-p histograms: integer sums are exact and
// order-independent; 2^18 tokens * 2^44 < 2^63.
constexpr double kMassScale = 17592186044416.0;  // 2^44
constexpr uint32_t kAllTies = 0xffffffffu;
constexpr int kScanItems = 4;  // consecutive tokens per thread in the id-order scan

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

// Larger float -> larger key; -0 and +0 share a key (they compare equal on the host).
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t b = __float_as_uint(x == 0.f ? 0.f : x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
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

struct Shared {
  u64 hist[kMaxBins];
  alignas(8) char red[kWarps * 8];  // one value per warp for block reductions and scans
  float red_f[kWarps];
  int red_i[kWarps];
  uint32_t digit;
  u64 above;
  int found;
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

template <typename T, typename Op>
__device__ T block_reduce(T v, Shared& sh, Op op) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  T* red = reinterpret_cast<T*>(sh.red);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFull, v, o));
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  T r = red[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, red[w]);
  return r;
}

// Calls f(x, id, valid) for every token of the row; all 32 lanes of a warp call together (valid
// is false for padding lanes), so f may use full-warp intrinsics. 16-byte loads when the row is
// 16-byte aligned and the vocabulary a multiple of 4, two in flight per thread.
template <typename F>
__device__ __forceinline__ void for_each_logit(const float* __restrict__ row, int vocab, F&& f) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int scalar_from = 0;
  if ((reinterpret_cast<uintptr_t>(row) & 15) == 0) {
    const int n4 = vocab >> 2;
    const float4* row4 = reinterpret_cast<const float4*>(row);
    for (int base = warp * 32; base < n4; base += 2 * kThreads) {
      const int i0 = base + lane, i1 = base + kThreads + lane;
      const bool v0 = i0 < n4, v1 = i1 < n4;
      const float4 a = v0 ? __ldg(row4 + i0) : make_float4(0.f, 0.f, 0.f, 0.f);
      const float4 b = v1 ? __ldg(row4 + i1) : make_float4(0.f, 0.f, 0.f, 0.f);
      f(a.x, 4 * i0, v0);
      f(a.y, 4 * i0 + 1, v0);
      f(a.z, 4 * i0 + 2, v0);
      f(a.w, 4 * i0 + 3, v0);
      if (base + kThreads < n4) {  // warp-uniform
        f(b.x, 4 * i1, v1);
        f(b.y, 4 * i1 + 1, v1);
        f(b.z, 4 * i1 + 2, v1);
        f(b.w, 4 * i1 + 3, v1);
      }
    }
    scalar_from = 4 * n4;
  }
  for (int base = scalar_from + warp * 32; base < vocab; base += kThreads) {
    const int i = base + lane;
    const bool v = i < vocab;
    f(v ? __ldg(row + i) : 0.f, i, v);
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
__device__ __forceinline__ RowStats row_stats(const float* row, int vocab, bool want_z, Shared& sh) {
  float m = -INFINITY;
  int id = INT_MAX;
  double z = 0.0;  // relative to m
  for_each_logit(row, vocab, [&](float x, int i, bool valid) {
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
  // Block argmax (value desc, id asc).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float bm = m;
  int bi = id;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(kFull, bm, o);
    const int oi = __shfl_xor_sync(kFull, bi, o);
    if (om > bm || (om == bm && oi < bi)) bm = om, bi = oi;
  }
  __syncthreads();
  if (lane == 0) sh.red_f[warp] = bm, sh.red_i[warp] = bi;
  __syncthreads();
  RowStats s{sh.red_f[0], sh.red_i[0], 0.0};
  for (int w = 1; w < kWarps; ++w) {
    if (sh.red_f[w] > s.max || (sh.red_f[w] == s.max && sh.red_i[w] < s.argmax)) {
      s.max = sh.red_f[w];
      s.argmax = sh.red_i[w];
    }
  }
  if (want_z) {
    const double mine = m > -INFINITY ? z * exp(static_cast<double>(m) - s.max) : 0.0;
    s.z_raw = block_reduce(mine, sh, [](double a, double b) { return a + b; });
  }
  return s;
}

// The shortest prefix, in (key desc, id asc) order, of the tokens inside `within` whose measure
// reaches the target. Count mode (mass == false): measure 1 per token, target `k`. Mass mode:
// measure w(x) (fixed point), target ceil(top_p * mass of `within`). Radix select, most
// significant digit first: each level histograms the tokens that share the digits chosen so far
// and picks the digit where the running measure crosses the target; ties of the final key take
// the fewest needed, lowest ids first (the draw applies that order).
__device__ __forceinline__ Prefix select_prefix(const float* row, int vocab, bool mass, uint32_t k, float top_p,
                                Prefix within, Weights w, Shared& sh) {
  // Ties of within.key are cut by id: they are left out of the scan and added as need copies.
  const bool cut_ties = within.need != kAllTies;
  const u64 tie_measure = mass && cut_ties ? to_fixed(w(key_value(within.key))) : 1ull;
  uint32_t hi = 0, hi_mask = 0;
  u64 above = 0, target = k;
  for (int level = 0; level < kLevels; ++level) {
    const int shift = kShift[level], nb = kBins[level];
    for (int b = threadIdx.x; b < nb; b += kThreads) sh.hist[b] = 0;
    __syncthreads();
    for_each_logit(row, vocab, [&](float x, int, bool valid) {
      const uint32_t key = order_key(x);
      bool add = valid && (key & hi_mask) == hi && key >= within.key &&
                 !(cut_ties && key == within.key);
      u64 amount = 1;
      if (mass && add) {
        amount = to_fixed(w(x));
        add = amount != 0;
      }
      warp_hist_add(sh.hist, add, (key >> shift) & (nb - 1), mass, amount);
    });
    if (threadIdx.x == 0 && cut_ties && (within.key & hi_mask) == hi) {
      atomicAdd(&sh.hist[(within.key >> shift) & (nb - 1)], within.need * tie_measure);
    }
    __syncthreads();
    // Each thread owns nb / kThreads consecutive bins, from the top bin down.
    const int per = nb / kThreads;
    u64 mine = 0;
    for (int j = 0; j < per; ++j) mine += sh.hist[nb - 1 - (threadIdx.x * per + j)];
    u64 total;
    u64 run = above + block_excl_scan(mine, sh, total);
    if (level == 0 && mass) {
      const double t = ceil(static_cast<double>(top_p) * static_cast<double>(total));
      target = t < 1.0 ? 1ull : static_cast<u64>(t);
      if (target > total) target = total;
    }
    for (int j = 0; j < per; ++j) {
      const int b = nb - 1 - (threadIdx.x * per + j);
      const u64 h = sh.hist[b];
      if (run < target && run + h >= target) {
        sh.digit = b;
        sh.above = run;
      }
      run += h;
    }
    __syncthreads();
    hi |= sh.digit << shift;
    hi_mask |= static_cast<uint32_t>(nb - 1) << shift;
    above = sh.above;
    __syncthreads();  // sh.digit, sh.hist read before the next level rewrites them
  }
  const u64 unit = mass ? to_fixed(w(key_value(hi))) : 1ull;  // > 0: the crossing bin had mass
  const u64 need = (target - above + unit - 1) / unit;
  return {hi, static_cast<uint32_t>(need < kAllTies ? need : kAllTies - 1)};
}

// Min-p keeps w(x) >= min_p (w(max) = 1): every token at or above the smallest such key.
__device__ __forceinline__ Prefix min_p_prefix(const float* row, int vocab, float min_p, Weights w, Shared& sh) {
  uint32_t lo = 0xffffffffu;
  for_each_logit(row, vocab, [&](float x, int, bool valid) {
    const uint32_t key = order_key(x);
    if (valid && key < lo && w(x) >= static_cast<double>(min_p)) lo = key;
  });
  lo = block_reduce(lo, sh, [](uint32_t a, uint32_t b) { return a < b ? a : b; });
  return {lo, kAllTies};
}

// Sum of w over the kept tokens, and how many of them have w > 0.
__device__ __forceinline__ void kept_mass(const float* row, int vocab, Prefix kept, Weights w, Shared& sh,
                          double& total, int& count) {
  double s = 0.0;
  int c = 0, ties = 0;
  for_each_logit(row, vocab, [&](float x, int, bool valid) {
    if (!valid) return;
    const uint32_t key = order_key(x);
    if (key > kept.key) {
      const double wx = w(x);
      s += wx;
      c += wx > 0.0;
    } else if (key == kept.key) {
      ++ties;
    }
  });
  s = block_reduce(s, sh, [](double a, double b) { return a + b; });
  c = block_reduce(c, sh, [](int a, int b) { return a + b; });
  ties = block_reduce(ties, sh, [](int a, int b) { return a + b; });
  const uint32_t n_ties = min(static_cast<uint32_t>(ties), kept.need);
  total = s;
  count = c;
  if (n_ties > 0) {
    const double w_tie = w(key_value(kept.key));
    total += n_ties * w_tie;
    count += w_tie > 0.0 ? static_cast<int>(n_ties) : 0;
  }
}

// Inverse CDF in token-id order over the kept tokens: the first kept token whose inclusive
// cumulative weight exceeds target (= uniform * kept mass). If rounding leaves target beyond the
// last cumulative sum, the last kept token of nonzero weight (as the host does).
__device__ __forceinline__ int draw(const float* row, int vocab, Prefix kept, Weights w, double target,
                    Shared& sh) {
  const bool cut_ties = kept.need != kAllTies;
  const bool vec = (reinterpret_cast<uintptr_t>(row) & 15) == 0;
  if (threadIdx.x == 0) sh.found = INT_MAX;
  double carry = 0.0;
  uint32_t ties_before = 0;
  int last = -1;
  for (int base = 0; base < vocab; base += kThreads * kScanItems) {
    const int i0 = base + threadIdx.x * kScanItems;
    float x[kScanItems];
    if (vec && i0 + kScanItems <= vocab) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(row + i0));
      x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
    } else {
#pragma unroll
      for (int j = 0; j < kScanItems; ++j) x[j] = i0 + j < vocab ? __ldg(row + i0 + j) : 0.f;
    }
    uint32_t rank = 0;
    if (cut_ties) {
      uint32_t mine = 0;
#pragma unroll
      for (int j = 0; j < kScanItems; ++j) mine += i0 + j < vocab && order_key(x[j]) == kept.key;
      uint32_t chunk_ties;
      rank = ties_before + block_excl_scan(mine, sh, chunk_ties);
      ties_before += chunk_ties;
    }
    double wj[kScanItems], s = 0.0;
#pragma unroll
    for (int j = 0; j < kScanItems; ++j) {
      const uint32_t key = order_key(x[j]);
      bool keep = i0 + j < vocab && key >= kept.key;
      if (keep && key == kept.key && cut_ties) keep = rank++ < kept.need;
      wj[j] = keep ? w(x[j]) : 0.0;
      s += wj[j];
    }
    double chunk_sum;
    double cum = carry + block_excl_scan(s, sh, chunk_sum);
    int cand = INT_MAX;
#pragma unroll
    for (int j = 0; j < kScanItems; ++j) {
      cum += wj[j];
      if (wj[j] > 0.0) {
        last = i0 + j;
        if (cum > target && cand == INT_MAX) cand = i0 + j;
      }
    }
    if (cand != INT_MAX) atomicMin(&sh.found, cand);
    carry += chunk_sum;
    __syncthreads();
    if (sh.found != INT_MAX) return sh.found;
  }
  return block_reduce(last, sh, [](int a, int b) { return a > b ? a : b; });
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int vocab,
                  const SampleRowParams* __restrict__ params, int32_t* __restrict__ out_tokens,
                  float* __restrict__ out_logprobs, int32_t* __restrict__ out_kept) {
  __shared__ Shared sh;
  const int64_t r = blockIdx.x;
  const float* row = logits + r * vocab;
  const SampleRowParams p = params[r];
  const bool forced = p.forced >= 0;
  const bool want_logprob = out_logprobs != nullptr;
  RowStats st{0.f, 0, 0.0};
  if (!forced || want_logprob) st = row_stats(row, vocab, want_logprob, sh);
  int token, kept_count;
  if (forced) {
    token = p.forced;
    kept_count = 0;
  } else if (p.temperature == 0.f) {
    token = st.argmax;
    kept_count = 1;
  } else {
    const Weights w{static_cast<double>(st.max), 1.0 / static_cast<double>(p.temperature)};
    Prefix kept = kEveryToken;
    if (p.top_k > 0 && p.top_k < vocab) {
      kept = select_prefix(row, vocab, false, p.top_k, 1.f, kEveryToken, w, sh);
    }
    if (p.top_p < 1.f) kept = select_prefix(row, vocab, true, 0, p.top_p, kept, w, sh);
    if (p.min_p > 0.f) {
      const Prefix m = min_p_prefix(row, vocab, p.min_p, w, sh);
      if (shorter(m, kept)) kept = m;
    }
    double total;
    kept_mass(row, vocab, kept, w, sh, total, kept_count);
    token = draw(row, vocab, kept, w, p.uniform * total, sh);
    if (token < 0) token = st.argmax;  // nothing of nonzero weight (every logit -inf)
  }
  if (threadIdx.x == 0) {
    out_tokens[r] = token;
    if (want_logprob) {
      out_logprobs[r] =
          static_cast<float>(static_cast<double>(row[token]) - st.max - log(st.z_raw));
    }
    if (out_kept) out_kept[r] = kept_count;
  }
}

}  // namespace

void launch_sample(const float* logits, int64_t num_rows, int64_t vocab,
                   const SampleRowParams* params, int32_t* out_tokens, float* out_logprobs,
                   int32_t* out_kept, cudaStream_t stream) {
  CUDA_REQUIRE(vocab > 0 && vocab <= INT_MAX - 2 * kThreads * 4, kInvalidArgument,
               "sample: vocabulary of ", vocab, " tokens (1 .. 2^31 - 4097 supported)");
  CUDA_REQUIRE(num_rows >= 0 && num_rows <= INT_MAX, kInvalidArgument, "sample: ",
               num_rows, " rows");
  if (num_rows == 0) return;
  sample_kernel<<<static_cast<unsigned>(num_rows), kThreads, 0, stream>>>(
      logits, static_cast<int>(vocab), params, out_tokens, out_logprobs, out_kept);
  CUDA_CHECK_LAUNCH();
}

}  // namespace hardkv::cuda
