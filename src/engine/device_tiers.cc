// DeviceTiers (see device_tiers.h): page pools, observation ring, per-step metadata and the event
// work through the Backend ops and the HARD-KV CUDA kernels when hardkv is built with CUDA.
#include "engine/device_tiers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "engine/device_tiers_ops.h"
#ifdef HARDKV_WITH_CUDA
#include "kernels/cuda/hkv_rewrite.h"
#include "kernels/cuda/tiered_attention.h"
#endif

namespace hardkv {

using namespace device_tiers;  // NOLINT(google-build-using-namespace): this file's helpers

namespace {

// Host vector -> a persistent device buffer, reallocated (at twice the size, and at least
// reserve_words) only when too small, since a new address makes graph steps re-capture; returns
// the view of the used prefix.
template <typename T>
Tensor to_persistent(Backend& be, Tensor& buffer, const std::vector<T>& v, int64_t reserve_words) {
  const int64_t n = words(v);
  if (!buffer.data() || buffer.numel() < n) {
    buffer = be.alloc(DType::kI32, {std::max<int64_t>({2 * n, reserve_words, 64})});
  }
  upload(be, buffer, v.data(), n);
  return Tensor::view(buffer.data(), DType::kI32, {std::max<int64_t>(n, 1)}, buffer.device());
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
                             const kv::TieredAttentionMeta& m, bool reuse_condensed,
                             int num_rows) {
  meta_ = &m;
  if (!reuse_condensed) {
    // First sizes: the per-segment lists for max_seqs sequences (graph batches round up to 8),
    // the page and mask lists for a quarter of every pool (capped at 16 MiB each).
    const int64_t segments =
        int64_t{config_.num_layers} * ((max_seqs_ + 7) / 8 * 8) * config_.num_kv_heads;
    const int64_t pages = std::min<int64_t>(int64_t{config_.num_layers} * config_.num_pages / 4,
                                            int64_t{4} << 20);
    const int64_t mask_words = std::min<int64_t>(
        2 * (pages * config_.page_size / 64 + segments), int64_t{4} << 20);
    cond_buffers_.resize(5);
    page_indptr_ = to_persistent(*be_, cond_buffers_[0], m.page_indptr, segments + 1);
    page_indices_ = to_persistent(*be_, cond_buffers_[1], m.page_indices, pages);
    cond_len_ = to_persistent(*be_, cond_buffers_[2], m.cond_len, segments);
    mask_indptr_ = to_persistent(*be_, cond_buffers_[3], m.mask_indptr, segments + 1);
    mask_words_ = to_persistent(*be_, cond_buffers_[4], m.mask_words, mask_words);
    max_cond_len_ = m.max_cond_len;
    has_condensed_ = true;
  }
  HARDKV_CHECK(has_condensed_, kInternal, "device HARD-KV: no condensed metadata to reuse");
  // Ring rows: of each sequence's new tokens, those among its last obs_window positions; rows
  // past the step's sequences (a graph step's padding) are skipped (-1).
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
  HARDKV_CHECK(num_rows >= query_indptr.back(), kInternal,
               "device HARD-KV: {} forward rows for {} query rows", num_rows, query_indptr.back());
  for (int r = query_indptr.back(); r < num_rows; ++r) {
    src.push_back(r);
    dst.push_back(-1);
  }
  ring_rows_ = static_cast<int>(src.size());
  // The step's lists in one upload into a persistent buffer: a graph step of the same shape finds
  // every list at the same address (the variable-length block table last).
  const std::vector<int32_t>* lists[] = {&m.query_indptr, &m.dense_block_indptr, &m.dense_start,
                                         &m.dense_len,    &src,
                                         &dst,            &m.dense_block_indices};
  constexpr int kLists = sizeof(lists) / sizeof(lists[0]);
  int64_t offsets[kLists + 1] = {0};
  for (int i = 0; i < kLists; ++i) {
    offsets[i + 1] = offsets[i] + (static_cast<int64_t>(lists[i]->size()) + 15) / 16 * 16;
  }
  std::vector<int32_t> packed(static_cast<size_t>(std::max<int64_t>(offsets[kLists], 1)), 0);
  for (int i = 0; i < kLists; ++i) {
    std::copy(lists[i]->begin(), lists[i]->end(), packed.begin() + offsets[i]);
  }
  // First size: 64 blocks of dense tier per sequence and some room for prefill rows.
  const Tensor all = to_persistent(*be_, step_buffer_, packed, int64_t{max_seqs_} * 128 + 4096);
  auto part = [&](int i) {
    return Tensor::view(all.data_as<int32_t>() + offsets[i], DType::kI32,
                        {std::max<int64_t>(static_cast<int64_t>(lists[i]->size()), 1)},
                        all.device());
  };
  query_indptr_ = part(0);
  dense_block_indptr_ = part(1);
  dense_start_ = part(2);
  dense_len_ = part(3);
  ring_src_ = part(4);
  ring_dst_ = part(5);
  dense_block_indices_ = part(6);
}

void DeviceTiers::record_queries(int layer_idx, const Tensor& q) {
#ifdef HARDKV_WITH_CUDA
  cuda::CudaBackend& cuda = cuda_of(be_);
  const int row = config_.num_q_heads * config_.head_dim;
  if (cuda.record_graph_op(kRecordQueriesOp,
                           {q.data(), ring_[layer_idx].data(), ring_src_.data(), ring_dst_.data()},
                           int64_t{ring_rows_} * row)) {
    return;  // a graph replay runs it
  }
  copy_rows(cuda, q, ring_[layer_idx], i32(ring_src_), i32(ring_dst_), ring_rows_, row);
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
  p.query_indptr = i32(query_indptr_);
  p.dense_block_indptr = i32(dense_block_indptr_);
  p.dense_block_indices = i32(dense_block_indices_);
  p.dense_start = i32(dense_start_);
  p.dense_len = i32(dense_len_);
  p.page_indptr = i32(page_indptr_) + seg0;
  p.page_indices = i32(page_indices_);
  p.cond_len = i32(cond_len_) + seg0;
  p.mask_indptr = i32(mask_indptr_) + seg0;
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
  if (const int bound = cuda->graph_kv_bound(); bound > 0) {
    // A graph step: planned (grid, splits) for every list of up to `bound` tokens, so that the
    // graph serves later steps whose lists are longer than this one's.
    HARDKV_CHECK(max_cond_len_ + m.max_dense_len <= bound, kInvalidArgument,
                 "device HARD-KV graph step: a head attends up to {} tokens, over the graph's "
                 "bound {}",
                 max_cond_len_ + m.max_dense_len, bound);
    p.max_cond_len = 0;
    p.max_dense_len = bound;
  }
  p.scale = scale;
  const size_t ws = cuda::plan_tiered_attention(p, cuda->num_sms());
  if (ws > 0) {
    Tensor w = be_->scratch(DType::kF32, {static_cast<int64_t>(ws)});
    p.partial_o = w.data_as<float>();
    p.partial_ml =
        p.partial_o + static_cast<size_t>(p.num_splits) * p.num_tokens * p.num_q_heads * p.head_dim;
  }
  if (cuda->record_graph_op(
          kTieredAttentionOp,
          {p.q, p.out, p.page_k, p.page_v, p.dense_k, p.dense_v, p.query_indptr,
           p.dense_block_indptr, p.dense_block_indices, p.dense_start, p.dense_len, p.page_indptr,
           p.page_indices, p.cond_len, p.mask_indptr, p.mask_words, p.partial_o},
          (static_cast<int64_t>(p.num_tokens) * 1000003 + p.num_seqs) * 1009 + p.num_splits)) {
    return;  // a graph replay runs it
  }
  cuda::launch_tiered_attention(p, cuda->stream());
#else
  (void)layer_idx, (void)q, (void)k_cache, (void)v_cache, (void)scale, (void)out;
  no_cuda();
#endif
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
