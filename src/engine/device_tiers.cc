// DeviceTiers (see device_tiers.h): page pools, observation ring, per-step metadata and the event
// work through the Backend ops and the HARD-KV CUDA kernels when hardkv is built with CUDA.
#include "engine/device_tiers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#ifdef HARDKV_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/hkv_copy_rows.h"
#include "kernels/cuda/hkv_rewrite.h"
#include "kernels/cuda/hkv_score.h"
#include "kernels/cuda/tiered_attention.h"
#endif

namespace hardkv {
namespace {

// Host I32 words -> the first count_i32 words of device tensor t (U64 words travel as pairs).
void upload(Backend& be, const Tensor& t, const void* data, int64_t count_i32) {
  if (count_i32 == 0) return;
  Tensor host = Tensor::view(const_cast<void*>(data), DType::kI32, {count_i32}, Device::kCPU);
  Tensor dst = Tensor::view(t.data(), DType::kI32, {count_i32}, t.device());
  be.copy_from_host(dst, host);
}

template <typename T>
int64_t words(const std::vector<T>& v) {
  static_assert(sizeof(T) % 4 == 0);
  return static_cast<int64_t>(v.size() * sizeof(T) / 4);
}

// Host vector -> device scratch tensor.
template <typename T>
Tensor to_device(Backend& be, const std::vector<T>& v) {
  Tensor t = be.scratch(DType::kI32, {std::max<int64_t>(words(v), 1)});
  upload(be, t, v.data(), words(v));
  return t;
}

// Host vector -> a persistent device buffer (grown by half again when too small); returns the
// view of the used prefix.
template <typename T>
Tensor to_persistent(Backend& be, Tensor& buffer, const std::vector<T>& v) {
  const int64_t n = words(v);
  if (!buffer.data() || buffer.numel() < n) {
    buffer = be.alloc(DType::kI32, {std::max<int64_t>(n + n / 2, 64)});
  }
  upload(be, buffer, v.data(), n);
  return Tensor::view(buffer.data(), DType::kI32, {std::max<int64_t>(n, 1)}, buffer.device());
}

#ifdef HARDKV_WITH_CUDA
const int32_t* i32(const Tensor& t) { return t.data_as<const int32_t>(); }
cuda::CudaBackend& cuda_of(Backend* be) {
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(be);
  HARDKV_CHECK(cuda != nullptr, kInternal, "device HARD-KV needs the CUDA backend");
  return *cuda;
}
using bf16 = __nv_bfloat16;
template <typename T>
T* bf(const Tensor& t) {
  return static_cast<T*>(t.data());
}
// dst rows <- src rows (null row lists = identity).
void copy_rows(cuda::CudaBackend& be, const Tensor& src, Tensor& dst, const int32_t* src_rows,
               const int32_t* dst_rows, int num_rows, int row_elems) {
  cuda::HkvCopyRowsParams p;
  p.src = bf<const bf16>(src);
  p.dst = bf<bf16>(dst);
  p.src_rows = src_rows;
  p.dst_rows = dst_rows;
  p.num_rows = num_rows;
  p.row_elems = row_elems;
  cuda::launch_hkv_copy_rows(p, be.stream());
}
#endif

[[noreturn]] void no_cuda() {
  HARDKV_THROW(kUnsupported, "device HARD-KV needs hardkv built with CUDA");
}

}  // namespace

DeviceTiers::DeviceTiers(Backend& backend, const kv::HeadwiseKVConfig& config, int max_seqs)
    : be_(&backend), config_(config), max_seqs_(max_seqs) {
  HARDKV_CHECK(max_seqs >= 1, kInvalidArgument, "device HARD-KV needs max_seqs >= 1, got {}",
               max_seqs);
  const Shape shape{config.num_pages, config.page_size, 1, config.head_dim};
  const Shape ring{int64_t{max_seqs} * config.obs_window,
                   int64_t{config.num_q_heads} * config.head_dim};
  for (int l = 0; l < config.num_layers; ++l) {
    page_k_.push_back(be_->alloc(be_->act_dtype(), shape));
    page_v_.push_back(be_->alloc(be_->act_dtype(), shape));
    ring_.push_back(be_->alloc(be_->act_dtype(), ring));
  }
  for (int s = max_seqs - 1; s >= 0; --s) free_slots_.push_back(s);
}

int64_t DeviceTiers::ring_bytes(const ModelConfig& model, int obs_window, int max_seqs, DType act) {
  return int64_t{model.num_layers} * max_seqs * obs_window * model.num_heads * model.head_dim *
         static_cast<int64_t>(dtype_size(act));
}

void DeviceTiers::release_sequence(int64_t seq_id) {
  const auto it = slot_of_.find(seq_id);
  if (it == slot_of_.end()) return;
  free_slots_.push_back(it->second);
  slot_of_.erase(it);
}

void DeviceTiers::begin_step(const kv::HeadwiseKV& kv, std::span<const int64_t> seq_ids,
                             std::span<const int32_t> query_indptr,
                             const kv::TieredAttentionMeta& m, bool reuse_condensed) {
  meta_ = &m;
  query_indptr_ = to_device(*be_, m.query_indptr);
  dense_block_indptr_ = to_device(*be_, m.dense_block_indptr);
  dense_block_indices_ = to_device(*be_, m.dense_block_indices);
  dense_start_ = to_device(*be_, m.dense_start);
  dense_len_ = to_device(*be_, m.dense_len);
  if (!reuse_condensed) {
    cond_buffers_.resize(5);
    page_indptr_ = to_persistent(*be_, cond_buffers_[0], m.page_indptr);
    page_indices_ = to_persistent(*be_, cond_buffers_[1], m.page_indices);
    cond_len_ = to_persistent(*be_, cond_buffers_[2], m.cond_len);
    mask_indptr_ = to_persistent(*be_, cond_buffers_[3], m.mask_indptr);
    mask_words_ = to_persistent(*be_, cond_buffers_[4], m.mask_words);
    max_cond_len_ = m.max_cond_len;
    has_condensed_ = true;
  }
  HARDKV_CHECK(has_condensed_, kInternal, "device HARD-KV: no condensed metadata to reuse");
  // Ring rows: of each sequence's new tokens, those among its last obs_window positions.
  const int W = config_.obs_window;
  std::vector<int32_t> src, dst;
  for (size_t i = 0; i < seq_ids.size(); ++i) {
    auto it = slot_of_.find(seq_ids[i]);
    if (it == slot_of_.end()) {
      HARDKV_CHECK(!free_slots_.empty(), kOutOfMemory,
                   "sequence {}: all {} observation-ring slots are taken (max_num_seqs)",
                   seq_ids[i], max_seqs_);
      it = slot_of_.emplace(seq_ids[i], free_slots_.back()).first;
      free_slots_.pop_back();
    }
    const int n = kv.sequence(seq_ids[i]).num_tokens;
    const int q_len = query_indptr[i + 1] - query_indptr[i];
    for (int j = std::max(0, q_len - W); j < q_len; ++j) {
      const int pos = n - q_len + j;
      src.push_back(query_indptr[i] + j);
      dst.push_back(it->second * W + pos % W);
    }
  }
  ring_rows_ = static_cast<int>(src.size());
  ring_src_ = to_device(*be_, src);
  ring_dst_ = to_device(*be_, dst);
}

void DeviceTiers::record_queries(int layer_idx, const Tensor& q) {
#ifdef HARDKV_WITH_CUDA
  copy_rows(cuda_of(be_), q, ring_[layer_idx], i32(ring_src_), i32(ring_dst_), ring_rows_,
            config_.num_q_heads * config_.head_dim);
#else
  (void)layer_idx, (void)q;
  no_cuda();
#endif
}

void DeviceTiers::attend(int layer_idx, const Tensor& q, const Tensor& k_cache,
                         const Tensor& v_cache, float scale, Tensor& out) {
#ifdef HARDKV_WITH_CUDA
  cuda::CudaBackend* cuda = &cuda_of(be_);
  HARDKV_CHECK(meta_ != nullptr, kInternal, "device HARD-KV attention before begin_step()");
  const kv::TieredAttentionMeta& m = *meta_;
  const int seg0 = m.segment(layer_idx, 0, 0);
  cuda::TieredAttentionParams p;
  p.q = static_cast<const __nv_bfloat16*>(q.data());
  p.out = static_cast<__nv_bfloat16*>(out.data());
  p.page_k = static_cast<const __nv_bfloat16*>(page_k_[layer_idx].data());
  p.page_v = static_cast<const __nv_bfloat16*>(page_v_[layer_idx].data());
  p.dense_k = static_cast<const __nv_bfloat16*>(k_cache.data());
  p.dense_v = static_cast<const __nv_bfloat16*>(v_cache.data());
  p.query_indptr = query_indptr_.data_as<const int32_t>();
  p.dense_block_indptr = dense_block_indptr_.data_as<const int32_t>();
  p.dense_block_indices = dense_block_indices_.data_as<const int32_t>();
  p.dense_start = dense_start_.data_as<const int32_t>();
  p.dense_len = dense_len_.data_as<const int32_t>();
  p.page_indptr = page_indptr_.data_as<const int32_t>() + seg0;
  p.page_indices = page_indices_.data_as<const int32_t>();
  p.cond_len = cond_len_.data_as<const int32_t>() + seg0;
  p.mask_indptr = mask_indptr_.data_as<const int32_t>() + seg0;
  p.mask_words = reinterpret_cast<const uint64_t*>(mask_words_.data());
  p.num_seqs = m.num_seqs;
  p.num_tokens = m.num_tokens;
  p.num_q_heads = config_.num_q_heads;
  p.num_kv_heads = config_.num_kv_heads;
  p.head_dim = config_.head_dim;
  p.page_size = config_.page_size;
  p.dense_block_size = m.dense_block_size;
  p.max_query_len = m.max_query_len;
  p.max_cond_len = max_cond_len_;
  p.max_dense_len = m.max_dense_len;
  p.scale = scale;
  const size_t ws = cuda::plan_tiered_attention(p, cuda->num_sms());
  if (ws > 0) {
    Tensor w = be_->scratch(DType::kF32, {static_cast<int64_t>(ws)});
    p.partial_o = w.data_as<float>();
    p.partial_ml =
        p.partial_o + static_cast<size_t>(p.num_splits) * p.num_tokens * p.num_q_heads * p.head_dim;
  }
  cuda::launch_tiered_attention(p, cuda->stream());
#else
  (void)layer_idx, (void)q, (void)k_cache, (void)v_cache, (void)scale, (void)out;
  no_cuda();
#endif
}

std::vector<kv::PrecomputedScores> DeviceTiers::score_events(const kv::HeadwiseKV& kv,
                                                             std::span<const int64_t> seq_ids,
                                                             const KVCache& cache, int sinks,
                                                             int window, bool with_keys) {
  const int S = static_cast<int>(seq_ids.size());
  const int L = config_.num_layers, H = config_.num_kv_heads, D = config_.head_dim;
  const int P = config_.page_size, W = config_.obs_window;
  std::vector<kv::PrecomputedScores> out(S);
  std::vector<kv::EventCandidates> cands;
  for (int s = 0; s < S; ++s) {
    cands.push_back(kv::event_candidates(kv, seq_ids[s], sinks, window));
    out[s].attn.resize(static_cast<size_t>(L) * H);
    if (with_keys) out[s].keys.resize(static_cast<size_t>(L) * H);
  }
#ifdef HARDKV_WITH_CUDA
  cuda::CudaBackend& cuda = cuda_of(be_);
  for (int l = 0; l < L; ++l) {
    // Host metadata of the layer: segment g = s * H + h.
    std::vector<int32_t> obs_indptr{0}, obs_rows, page_indptr{0}, page_indices, cond_begin,
        cond_end, dense_block_indptr{0}, dense_block_indices, dense_cand_start, dense_cand_len,
        score_indptr{0};
    int max_obs = 0, max_cand = 0;
    for (int s = 0; s < S; ++s) {
      const kv::SequenceKV& seq = kv.sequence(seq_ids[s]);
      const int count = seq.obs.count(l);
      const int slot = slot_of_.at(seq_ids[s]);
      for (int pos = seq.num_tokens - count; pos < seq.num_tokens; ++pos) {
        obs_rows.push_back(slot * W + pos % W);
      }
      obs_indptr.push_back(static_cast<int32_t>(obs_rows.size()));
      max_obs = std::max(max_obs, count);
      dense_block_indices.insert(dense_block_indices.end(), seq.dense_blocks.begin(),
                                 seq.dense_blocks.end());
      dense_block_indptr.push_back(static_cast<int32_t>(dense_block_indices.size()));
      const kv::EventCandidates& c = cands[s];
      dense_cand_start.push_back(c.dense_from - seq.dense_base);
      dense_cand_len.push_back(c.dense_to - c.dense_from);
      for (int h = 0; h < H; ++h) {
        const kv::HeadPages& hp = kv.head(seq_ids[s], l, h);
        page_indices.insert(page_indices.end(), hp.pages.begin(), hp.pages.end());
        page_indptr.push_back(static_cast<int32_t>(page_indices.size()));
        cond_begin.push_back(c.cond_begin[l * H + h]);
        cond_end.push_back(hp.num_stored());
        const int n = c.num_candidates(hp, l * H + h);
        score_indptr.push_back(score_indptr.back() + n);
        max_cand = std::max(max_cand, n);
      }
    }
    const int total = score_indptr.back();
    if (total == 0) continue;
    const int total_obs = obs_indptr.back();
    Tensor q_obs = be_->scratch(be_->act_dtype(), {std::max(total_obs, 1), config_.num_q_heads, D});
    const Tensor obs_rows_d = to_device(*be_, obs_rows);
    copy_rows(cuda, ring_[l], q_obs, i32(obs_rows_d), nullptr, total_obs, config_.num_q_heads * D);
    const Tensor obs_indptr_d = to_device(*be_, obs_indptr),
                 page_indptr_d = to_device(*be_, page_indptr),
                 page_indices_d = to_device(*be_, page_indices),
                 cond_begin_d = to_device(*be_, cond_begin), cond_end_d = to_device(*be_, cond_end),
                 dense_block_indptr_d = to_device(*be_, dense_block_indptr),
                 dense_block_indices_d = to_device(*be_, dense_block_indices),
                 dense_cand_start_d = to_device(*be_, dense_cand_start),
                 dense_cand_len_d = to_device(*be_, dense_cand_len),
                 score_indptr_d = to_device(*be_, score_indptr);
    cuda::HkvScoreParams p;
    p.q_obs = bf<const bf16>(q_obs);
    p.obs_indptr = i32(obs_indptr_d);
    p.page_k = bf<const bf16>(page_k_[l]);
    p.dense_k = bf<const bf16>(cache.k[l]);
    p.page_indptr = i32(page_indptr_d);
    p.page_indices = i32(page_indices_d);
    p.cond_begin = i32(cond_begin_d);
    p.cond_end = i32(cond_end_d);
    p.dense_block_indptr = i32(dense_block_indptr_d);
    p.dense_block_indices = i32(dense_block_indices_d);
    p.dense_cand_start = i32(dense_cand_start_d);
    p.dense_cand_len = i32(dense_cand_len_d);
    p.score_indptr = i32(score_indptr_d);
    Tensor scores = be_->scratch(DType::kF32, {total});
    p.scores = scores.data_as<float>();
    p.num_seqs = S;
    p.num_q_heads = config_.num_q_heads;
    p.num_kv_heads = H;
    p.head_dim = D;
    p.page_size = P;
    p.dense_block_size = cache.block_size;
    p.max_obs = max_obs;
    p.max_candidates = max_cand;
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));
    Tensor stats = be_->scratch(
        DType::kF32, {static_cast<int64_t>(std::max<size_t>(cuda::hkv_score_workspace(p), 1))});
    p.row_stats = stats.data_as<float>();
    cuda::launch_hkv_score(p, cuda.stream());
    // Keys in the same order (strategies that need them): stored rows from the pool, dense rows
    // from the cache.
    Tensor keys;
    if (with_keys) {
      std::vector<int32_t> pool_src, pool_dst, dense_src, dense_dst;
      for (int s = 0; s < S; ++s) {
        const kv::EventCandidates& c = cands[s];
        for (int h = 0; h < H; ++h) {
          const int g = s * H + h;
          const kv::HeadPages& hp = kv.head(seq_ids[s], l, h);
          int dst = score_indptr[g];
          for (int i = cond_begin[g]; i < hp.num_stored(); ++i) {
            pool_src.push_back(hp.pages[i / P] * P + i % P);
            pool_dst.push_back(dst++);
          }
          for (int pos = c.dense_from; pos < c.dense_to; ++pos) {
            dense_src.push_back(kv.dense_slot(seq_ids[s], pos) * H + h);
            dense_dst.push_back(dst++);
          }
        }
      }
      keys = be_->scratch(be_->act_dtype(), {total, D});
      const Tensor ps = to_device(*be_, pool_src), pd = to_device(*be_, pool_dst),
                   ds = to_device(*be_, dense_src), dd = to_device(*be_, dense_dst);
      copy_rows(cuda, page_k_[l], keys, i32(ps), i32(pd), static_cast<int>(pool_src.size()), D);
      copy_rows(cuda, cache.k[l], keys, i32(ds), i32(dd), static_cast<int>(dense_src.size()), D);
    }
    const Tensor host = be_->download(scores);
    std::vector<float> key_f;
    if (with_keys) {
      const Tensor hk = be_->download(keys);
      key_f.resize(static_cast<size_t>(total) * D);
      convert_to_f32(hk.data(), hk.dtype(), key_f.data(), key_f.size());
    }
    const float* a = host.data_as<const float>();
    for (int s = 0; s < S; ++s) {
      for (int h = 0; h < H; ++h) {
        const int g = s * H + h;
        out[s].attn[l * H + h].assign(a + score_indptr[g], a + score_indptr[g + 1]);
        if (with_keys) {
          out[s].keys[l * H + h].assign(key_f.begin() + int64_t{score_indptr[g]} * D,
                                        key_f.begin() + int64_t{score_indptr[g + 1]} * D);
        }
      }
    }
    be_->release_scratch();
  }
#else
  (void)cache, (void)P, (void)W, (void)D;
  if (!seq_ids.empty()) no_cuda();
#endif
  return out;
}

void DeviceTiers::apply_moves(const std::vector<kv::LayerMoves>& moves, const KVCache& cache) {
#ifdef HARDKV_WITH_CUDA
  cuda::CudaBackend& cuda = cuda_of(be_);
  const int H = config_.num_kv_heads, D = config_.head_dim;
  // Every layer's index lists in one host array and one upload; offsets[l] locates layer l's.
  struct LayerLists {
    int64_t page_indptr, page_indices, move_indptr, move_src, move_dst, append_src, append_dst;
  };
  std::vector<int32_t> all;
  std::vector<LayerLists> at(moves.size());
  auto begin = [&]() { return static_cast<int64_t>(all.size()); };
  for (size_t l = 0; l < moves.size(); ++l) {
    const kv::LayerMoves& m = moves[l];
    LayerLists& o = at[l];
    o.page_indptr = begin();
    all.push_back(0);
    int32_t pages = 0;
    for (const kv::HeadRewriteMoves& r : m.rewrites) {
      pages += static_cast<int32_t>(r.pages.size());
      all.push_back(pages);
    }
    o.page_indices = begin();
    for (const kv::HeadRewriteMoves& r : m.rewrites) {
      all.insert(all.end(), r.pages.begin(), r.pages.end());
    }
    o.move_indptr = begin();
    all.push_back(0);
    int32_t rows = 0;
    for (const kv::HeadRewriteMoves& r : m.rewrites) {
      rows += static_cast<int32_t>(r.src.size());
      all.push_back(rows);
    }
    o.move_src = begin();
    for (const kv::HeadRewriteMoves& r : m.rewrites) all.insert(all.end(), r.src.begin(), r.src.end());
    o.move_dst = begin();
    for (const kv::HeadRewriteMoves& r : m.rewrites) all.insert(all.end(), r.dst.begin(), r.dst.end());
    o.append_src = begin();
    for (const kv::AppendRow& a : m.appends) all.push_back(a.dense_slot * H + a.kv_head);
    o.append_dst = begin();
    for (const kv::AppendRow& a : m.appends) all.push_back(a.pool_row);
  }
  const Tensor lists = to_device(*be_, all);
  const int32_t* base = i32(lists);
  for (size_t l = 0; l < moves.size(); ++l) {
    const kv::LayerMoves& m = moves[l];
    const LayerLists& o = at[l];
    if (!m.rewrites.empty()) {  // first: in place, within each head's pages
      cuda::HkvRewriteParams p;
      p.page_k = bf<bf16>(page_k_[l]);
      p.page_v = bf<bf16>(page_v_[l]);
      p.page_indptr = base + o.page_indptr;
      p.page_indices = base + o.page_indices;
      p.move_indptr = base + o.move_indptr;
      p.move_src = base + o.move_src;
      p.move_dst = base + o.move_dst;
      p.num_segments = static_cast<int>(m.rewrites.size());
      p.page_size = config_.page_size;
      p.head_dim = D;
      cuda::launch_hkv_rewrite(p, cuda.stream());
    }
    if (!m.appends.empty()) {  // then: dense-tier tokens into their pool rows
      const int n = static_cast<int>(m.appends.size());
      copy_rows(cuda, cache.k[l], page_k_[l], base + o.append_src, base + o.append_dst, n, D);
      copy_rows(cuda, cache.v[l], page_v_[l], base + o.append_src, base + o.append_dst, n, D);
    }
  }
  be_->release_scratch();  // stream-ordered: the launches above read their lists first
#else
  (void)cache;
  for (const kv::LayerMoves& m : moves) {
    if (!m.rewrites.empty() || !m.appends.empty()) no_cuda();
  }
#endif
}

}  // namespace hardkv
