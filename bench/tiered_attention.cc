// HARD-KV kernel benchmark on Qwen3-8B attention shapes (32 q-heads, 8 kv-heads, head_dim 128,
// 36 layers): per-layer decode attention of (a) the dense paged kernel over the whole context and
// (b) tiered attention over condensed head-pages (a random count in [budget, upper] per head, ~5%
// masked) + a dense tail; and per-layer scoring + rewrite of a compression event. Median of CUDA
// event timings after warm-up, each beside its floor: bytes / measured copy bandwidth.
//   bench_tiered_attention [--seqs 32,64] [--ctx 16384] [--budget 1024] [--upper 2048]
//                          [--page-size 16] [--mask 0.05] [--tail 128] [--iters 50]
//                          [--blocks-per-sm 4,8] [--variants planned,reg,ring,reg8,mma2,mma3]
// Tiered variants: planned = plan_tiered_attention's choice (the tensor-core kernel, 2 stages,
// unless HARDKV_TIERED_MMA=0); CUDA-core kernel: reg = registers, ring = cp.async pipelined, reg8
// = 8 tokens in flight in registers; mma2 / mma3 = tensor cores with 2 / 3 cp.async stages. The
// first (blocks/SM, variant) is summarised.
#include "kernels/cuda/tiered_attention.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/hkv_rewrite.h"
#include "kernels/cuda/hkv_score.h"

namespace cuda = hardkv::cuda;

namespace {

constexpr int kQHeads = 32, kKvHeads = 8, kHeadDim = 128, kLayers = 36, kBlockSize = 16;
constexpr int kObs = 128, kWindow = 128, kInterval = 128, kSinks = 1;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// Device allocations freed at exit of main's scope.
struct Pool {
  std::vector<void*> ptrs;
  ~Pool() {
    for (void* p : ptrs) cudaFree(p);
  }
  template <typename T>
  T* alloc(size_t n) {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc");
    ptrs.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  T* upload(const std::vector<T>& h) {
    T* d = alloc<T>(h.size());
    check(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
    return d;
  }
};

// n bf16 values, N(0,1): a random 16 MB pattern replicated on the device.
__nv_bfloat16* random_bf16(Pool& pool, size_t n, std::mt19937& rng) {
  const size_t chunk = std::min<size_t>(n, size_t{8} << 20);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<__nv_bfloat16> h(chunk);
  for (auto& x : h) x = __float2bfloat16(normal(rng));
  __nv_bfloat16* d = pool.alloc<__nv_bfloat16>(n);
  check(cudaMemcpy(d, h.data(), chunk * 2, cudaMemcpyHostToDevice), "fill");
  for (size_t off = chunk; off < n; off += chunk) {
    check(cudaMemcpy(d + off, d, std::min(chunk, n - off) * 2, cudaMemcpyDeviceToDevice), "fill");
  }
  return d;
}

// Median milliseconds of fn over iters timed launches after 5 warm-ups.
template <typename Fn>
double time_ms(Fn&& fn, int iters) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int i = 0; i < 5; ++i) fn();
  check(cudaDeviceSynchronize(), "warm-up");
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(e0);
    fn();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  check(cudaGetLastError(), "timed launches");
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Device-to-device copy bandwidth in bytes/s, counting bytes read + written.
double measure_copy_bandwidth() {
  const size_t bytes = size_t{2} << 30;
  Pool pool;
  char* a = pool.alloc<char>(bytes);
  char* b = pool.alloc<char>(bytes);
  check(cudaMemset(a, 1, bytes), "cudaMemset");
  const double ms = time_ms([&] { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice); }, 20);
  return 2.0 * bytes / (ms * 1e-3);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoi(item));
  return v;
}

struct Options {
  std::vector<int> seqs{32, 64};
  int ctx = 16384, budget = 1024, upper = 2048, page_size = 16, tail = 128, iters = 50;
  double mask = 0.05;
  std::vector<int> blocks_per_sm{4};
  std::vector<std::string> variants{"planned"};
};

// Block table of `tokens` slots per sequence from a shuffled pool; returns the device cache size.
void dense_tables(int num_seqs, int tokens, std::mt19937& rng, std::vector<int32_t>& indptr,
                  std::vector<int32_t>& indices, int& num_blocks) {
  const int per_seq = (tokens + kBlockSize - 1) / kBlockSize;
  num_blocks = num_seqs * per_seq;
  std::vector<int32_t> ids(num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  indptr.assign(1, 0);
  indices = ids;
  for (int s = 0; s < num_seqs; ++s) indptr.push_back(indptr.back() + per_seq);
}

void run(const Options& o, int num_seqs, int num_sms, double bw) {
  std::mt19937 rng(1234 + num_seqs);
  Pool pool;
  const size_t token_bytes = 2ull * kHeadDim * 2;  // K + V of one token of one kv-head, bf16
  __nv_bfloat16* q = random_bf16(pool, static_cast<size_t>(num_seqs) * kQHeads * kHeadDim, rng);
  __nv_bfloat16* out =
      pool.alloc<__nv_bfloat16>(static_cast<size_t>(num_seqs) * kQHeads * kHeadDim);
  std::vector<int32_t> qptr(num_seqs + 1);
  std::iota(qptr.begin(), qptr.end(), 0);
  int32_t* d_qptr = pool.upload(qptr);

  // (a) Dense paged decode attention over ctx tokens.
  double dense_ms = 0, dense_bytes = 0;
  {
    Pool dp;
    std::vector<int32_t> indptr, indices;
    int nb = 0;
    dense_tables(num_seqs, o.ctx, rng, indptr, indices, nb);
    const size_t cache = static_cast<size_t>(nb) * kBlockSize * kKvHeads * kHeadDim;
    cuda::PagedAttentionParams p;
    p.q = q;
    p.k_cache = random_bf16(dp, cache, rng);
    p.v_cache = random_bf16(dp, cache, rng);
    p.out = out;
    p.query_indptr = d_qptr;
    p.kv_lens = dp.upload(std::vector<int32_t>(num_seqs, o.ctx));
    p.block_indptr = dp.upload(indptr);
    p.block_indices = dp.upload(indices);
    p.num_seqs = p.num_tokens = num_seqs;
    p.num_q_heads = kQHeads;
    p.num_kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.block_size = kBlockSize;
    p.max_query_len = 1;
    p.max_kv_len = o.ctx;
    p.scale = 0.088388f;
    const size_t ws = cuda::plan_paged_attention(p, num_sms);
    float* w = dp.alloc<float>(ws);
    p.partial_o = w;
    p.partial_ml = w + static_cast<size_t>(p.num_splits) * num_seqs * kQHeads * kHeadDim;
    dense_ms = time_ms([&] { cuda::launch_paged_attention(p, nullptr); }, o.iters);
    dense_bytes = static_cast<double>(num_seqs) * o.ctx * kKvHeads * token_bytes;
    std::printf("  (a) dense paged decode, %d tokens, %d splits: %.4f ms/layer (floor %.4f)\n",
                o.ctx, p.num_splits, dense_ms, dense_bytes / bw * 1e3);
  }

  // (b) Tiered decode attention.
  const int P = o.page_size, segs = num_seqs * kKvHeads;
  std::uniform_int_distribution<int> keep(o.budget, o.upper), tail(1, o.tail);
  std::bernoulli_distribution masked(o.mask);
  std::vector<int32_t> cond_len(segs), page_indptr{0}, mask_indptr{0};
  int total_pages = 0, max_cond = 0;
  for (int g = 0; g < segs; ++g) {
    cond_len[g] = keep(rng);
    max_cond = std::max(max_cond, cond_len[g]);
    total_pages += (cond_len[g] + P - 1) / P;
    page_indptr.push_back(total_pages);
  }
  std::vector<int32_t> page_ids(total_pages);
  std::iota(page_ids.begin(), page_ids.end(), 0);
  std::shuffle(page_ids.begin(), page_ids.end(), rng);
  std::vector<uint64_t> mask_words;
  int64_t kept_tokens = 0;
  for (int g = 0; g < segs; ++g) {
    const size_t w0 = mask_words.size();
    mask_words.resize(w0 + (cond_len[g] + 63) / 64, 0);
    for (int i = 0; i < cond_len[g]; ++i) {
      if (i >= kSinks && masked(rng)) {
        mask_words[w0 + i / 64] |= uint64_t{1} << (i % 64);
      } else {
        ++kept_tokens;
      }
    }
    mask_indptr.push_back(static_cast<int32_t>(mask_words.size()));
  }
  std::vector<int32_t> dense_len(num_seqs), dense_start(num_seqs), tail_indptr, tail_indices;
  int max_tail = 0, tail_blocks = 0;
  int64_t tail_tokens = 0;
  dense_tables(num_seqs, kWindow + kInterval + kBlockSize, rng, tail_indptr, tail_indices,
               tail_blocks);
  for (int s = 0; s < num_seqs; ++s) {
    dense_len[s] = tail(rng);
    dense_start[s] = static_cast<int>(rng() % kBlockSize);
    max_tail = std::max(max_tail, dense_len[s]);
    tail_tokens += dense_len[s];
  }
  const size_t pool_elems = static_cast<size_t>(total_pages) * P * kHeadDim;
  __nv_bfloat16* page_k = random_bf16(pool, pool_elems, rng);
  __nv_bfloat16* page_v = random_bf16(pool, pool_elems, rng);
  const size_t tail_elems = static_cast<size_t>(tail_blocks) * kBlockSize * kKvHeads * kHeadDim;
  __nv_bfloat16* tail_k = random_bf16(pool, tail_elems, rng);
  __nv_bfloat16* tail_v = random_bf16(pool, tail_elems, rng);
  int32_t* d_page_indptr = pool.upload(page_indptr);
  int32_t* d_page_ids = pool.upload(page_ids);
  int32_t* d_cond_len = pool.upload(cond_len);
  int32_t* d_tail_indptr = pool.upload(tail_indptr);
  int32_t* d_tail_indices = pool.upload(tail_indices);

  cuda::TieredAttentionParams t;
  t.q = q;
  t.out = out;
  t.page_k = page_k;
  t.page_v = page_v;
  t.dense_k = tail_k;
  t.dense_v = tail_v;
  t.query_indptr = d_qptr;
  t.dense_block_indptr = d_tail_indptr;
  t.dense_block_indices = d_tail_indices;
  t.dense_start = pool.upload(dense_start);
  t.dense_len = pool.upload(dense_len);
  t.page_indptr = d_page_indptr;
  t.page_indices = d_page_ids;
  t.cond_len = d_cond_len;
  t.mask_indptr = pool.upload(mask_indptr);
  t.mask_words = pool.upload(mask_words);
  t.num_seqs = t.num_tokens = num_seqs;
  t.num_q_heads = kQHeads;
  t.num_kv_heads = kKvHeads;
  t.head_dim = kHeadDim;
  t.page_size = P;
  t.dense_block_size = kBlockSize;
  t.max_query_len = 1;
  t.max_cond_len = max_cond;
  t.max_dense_len = max_tail;
  t.scale = 0.088388f;
  const int max_bps = *std::max_element(o.blocks_per_sm.begin(), o.blocks_per_sm.end());
  {
    cuda::TieredAttentionParams widest = t;
    float* tw = pool.alloc<float>(cuda::plan_tiered_attention(widest, num_sms, max_bps));
    t.partial_o = tw;
    t.partial_ml = tw + static_cast<size_t>(widest.num_splits) * num_seqs * kQHeads * kHeadDim;
  }
  const double tiered_bytes =
      static_cast<double>(kept_tokens) * token_bytes + tail_tokens * kKvHeads * token_bytes;
  std::printf(
      "  (b) tiered decode: %.0f kept + %.0f masked condensed tokens/head, %.0f dense "
      "tail/seq, P=%d; floor %.4f ms\n",
      static_cast<double>(kept_tokens) / segs,
      static_cast<double>(std::accumulate(cond_len.begin(), cond_len.end(), int64_t{0}) -
                          kept_tokens) /
          segs,
      static_cast<double>(tail_tokens) / num_seqs, P, tiered_bytes / bw * 1e3);
  double tiered_ms = 0;
  for (int bps : o.blocks_per_sm) {
    for (const std::string& variant : o.variants) {  // first pair: the summary's
      cuda::TieredAttentionParams tu = t;
      cuda::plan_tiered_attention(tu, num_sms, bps);
      if (variant == "reg") {
        tu.mma_stages = 0;
      } else if (variant == "ring") {
        tu.mma_stages = 0;
        tu.pipelined = 1;
        tu.tokens_in_flight = 4;
      } else if (variant == "reg8") {
        tu.mma_stages = 0;
        tu.tokens_in_flight = 8;
      } else if (variant == "mma2" || variant == "mma3") {
        tu.mma_stages = variant == "mma2" ? 2 : 3;
      } else if (variant != "planned") {
        std::fprintf(stderr, "unknown variant %s (planned, reg, ring, reg8, mma2, mma3)\n",
                     variant.c_str());
        std::exit(2);
      }
      const double ms = time_ms([&] { cuda::launch_tiered_attention(tu, nullptr); }, o.iters);
      if (tiered_ms == 0) tiered_ms = ms;
      std::printf(
          "      %-7s blocks/SM target %2d: %2d splits, %s: %.4f ms/layer (%.0f%% of copy "
          "bandwidth)\n",
          variant.c_str(), bps, tu.num_splits,
          tu.mma_stages > 0 ? ("tensor cores, " + std::to_string(tu.mma_stages) + " stages").c_str()
                            : (std::to_string(tu.rows_per_block) + " rows x " +
                               std::to_string(tu.tokens_in_flight) + " tokens" +
                               (tu.pipelined ? " (ring)" : ""))
                                  .c_str(),
          ms, 100.0 * tiered_bytes / bw * 1e3 / ms);
    }
  }

  // (c) Scoring of one compression event, one layer: 128 observation queries x (condensed
  // tokens past the sinks + 128 dense candidates).
  std::vector<int32_t> cond_begin(segs, kSinks), obs_indptr(num_seqs + 1), score_indptr{0};
  for (int s = 0; s <= num_seqs; ++s) obs_indptr[s] = s * kObs;
  int max_cands = 0;
  double score_flops = 0;
  for (int g = 0; g < segs; ++g) {
    const int n = cond_len[g] - kSinks + kInterval;
    max_cands = std::max(max_cands, n);
    score_indptr.push_back(score_indptr.back() + n);
    score_flops += 2.0 * 2.0 * kObs * (kQHeads / kKvHeads) * n * kHeadDim;  // two passes
  }
  cuda::HkvScoreParams sp;
  sp.q_obs = random_bf16(pool, static_cast<size_t>(num_seqs) * kObs * kQHeads * kHeadDim, rng);
  sp.obs_indptr = pool.upload(obs_indptr);
  sp.page_k = page_k;
  sp.dense_k = tail_k;
  sp.page_indptr = d_page_indptr;
  sp.page_indices = d_page_ids;
  sp.cond_begin = pool.upload(cond_begin);
  sp.cond_end = d_cond_len;
  sp.dense_block_indptr = d_tail_indptr;
  sp.dense_block_indices = d_tail_indices;
  sp.dense_cand_start = pool.upload(std::vector<int32_t>(num_seqs, 0));
  sp.dense_cand_len = pool.upload(std::vector<int32_t>(num_seqs, kInterval));
  sp.score_indptr = pool.upload(score_indptr);
  sp.scores = pool.alloc<float>(score_indptr.back());
  sp.num_seqs = num_seqs;
  sp.num_q_heads = kQHeads;
  sp.num_kv_heads = kKvHeads;
  sp.head_dim = kHeadDim;
  sp.page_size = P;
  sp.dense_block_size = kBlockSize;
  sp.max_obs = kObs;
  sp.max_candidates = max_cands;
  sp.scale = 0.088388f;
  sp.row_stats = pool.alloc<float>(cuda::hkv_score_workspace(sp));
  const double score_ms = time_ms([&] { cuda::launch_hkv_score(sp, nullptr); }, o.iters);
  std::printf("  (c) scoring, %d obs x %.0f candidates/head: %.4f ms/layer (%.1f TFLOP/s)\n", kObs,
              static_cast<double>(score_indptr.back()) / segs, score_ms,
              score_flops / (score_ms * 1e-3) / 1e12);

  // (d) Rewrite of one layer with half of every head's tokens masked (the default threshold).
  std::vector<int32_t> move_indptr{0}, move_src, move_dst;
  std::bernoulli_distribution half(0.5);
  for (int g = 0; g < segs; ++g) {
    int kept = 0;
    for (int i = 0; i < cond_len[g]; ++i) {
      if (i >= kSinks && half(rng)) continue;
      if (i != kept) move_src.push_back(i), move_dst.push_back(kept);
      ++kept;
    }
    move_indptr.push_back(static_cast<int32_t>(move_src.size()));
  }
  cuda::HkvRewriteParams rp;
  rp.page_k = page_k;
  rp.page_v = page_v;
  rp.page_indptr = d_page_indptr;
  rp.page_indices = d_page_ids;
  rp.move_indptr = pool.upload(move_indptr);
  rp.move_src = pool.upload(move_src);
  rp.move_dst = pool.upload(move_dst);
  rp.num_segments = segs;
  rp.page_size = P;
  rp.head_dim = kHeadDim;
  const double rewrite_ms = time_ms([&] { cuda::launch_hkv_rewrite(rp, nullptr); }, o.iters);
  const double rewrite_bytes = 2.0 * move_src.size() * token_bytes;
  std::printf("  (d) rewrite, %.0f moves/head: %.4f ms/layer (floor %.4f)\n",
              static_cast<double>(move_src.size()) / segs, rewrite_ms, rewrite_bytes / bw * 1e3);
  std::printf(
      "  summary seqs=%d: dense %.4f ms/layer, tiered %.4f ms/layer (%.1fx); per event "
      "(%d layers): scoring %.2f ms + rewrite %.2f ms\n",
      num_seqs, dense_ms, tiered_ms, dense_ms / tiered_ms, kLayers, score_ms * kLayers,
      rewrite_ms * kLayers);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--seqs") {
      o.seqs = parse_list(v);
    } else if (k == "--ctx") {
      o.ctx = std::stoi(v);
    } else if (k == "--budget") {
      o.budget = std::stoi(v);
    } else if (k == "--upper") {
      o.upper = std::stoi(v);
    } else if (k == "--page-size") {
      o.page_size = std::stoi(v);
    } else if (k == "--mask") {
      o.mask = std::stod(v);
    } else if (k == "--tail") {
      o.tail = std::stoi(v);
    } else if (k == "--blocks-per-sm") {
      o.blocks_per_sm = parse_list(v);
    } else if (k == "--variants") {
      o.variants.clear();
      std::stringstream ss(v);
      for (std::string item; std::getline(ss, item, ',');) o.variants.push_back(item);
    } else if (k == "--iters") {
      o.iters = std::stoi(v);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  int device = 0, num_sms = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, device), "attr");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "props");
  const double bw = measure_copy_bandwidth();
  std::printf("device %s, %d SMs, copy bandwidth %.0f GB/s (read + write)\n", prop.name, num_sms,
              bw / 1e9);
  std::printf(
      "Qwen3-8B attention: %d q-heads, %d kv-heads, head_dim %d, block %d; budget [%d, %d]"
      ", page %d, mask %.2f, tail 1..%d, median of %d\n",
      kQHeads, kKvHeads, kHeadDim, kBlockSize, o.budget, o.upper, o.page_size, o.mask, o.tail,
      o.iters);
  for (int s : o.seqs) {
    std::printf("seqs %d, ctx %d\n", s, o.ctx);
    run(o, s, num_sms, bw);
  }
  return 0;
}
