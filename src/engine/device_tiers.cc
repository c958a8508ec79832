// DeviceTiers (see device_tiers.h): page sync and metadata through the Backend ops, the tiered
// attention launch through the CUDA kernel when hardkv is built with CUDA.
#include "engine/device_tiers.h"

#include <cstring>

#include "core/error.h"
#ifdef HARDKV_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/tiered_attention.h"
#endif

namespace hardkv {
namespace {

// Host vector -> device scratch tensor (I32; U64 words travel as pairs of I32).
Tensor to_device(Backend& be, const void* data, int64_t count_i32) {
  Tensor t = be.scratch(DType::kI32, {std::max<int64_t>(count_i32, 1)});
  if (count_i32 > 0) {
    Tensor host = Tensor::view(const_cast<void*>(data), DType::kI32, {count_i32}, Device::kCPU);
    Tensor dst = Tensor::view(t.data(), DType::kI32, {count_i32}, t.device());
    be.copy_from_host(dst, host);
  }
  return t;
}

template <typename T>
Tensor to_device(Backend& be, const std::vector<T>& v) {
  static_assert(sizeof(T) % 4 == 0);
  return to_device(be, v.data(), static_cast<int64_t>(v.size() * sizeof(T) / 4));
}

}  // namespace

DeviceTiers::DeviceTiers(Backend& backend, const kv::HeadwiseKVConfig& config)
    : be_(&backend), config_(config) {
  const Shape shape{config.num_pages, config.page_size, 1, config.head_dim};
  for (int l = 0; l < config.num_layers; ++l) {
    page_k_.push_back(be_->alloc(be_->act_dtype(), shape));
    page_v_.push_back(be_->alloc(be_->act_dtype(), shape));
  }
}

void DeviceTiers::sync_pages(kv::HeadwiseKV& kv) {
  const int64_t P = config_.page_size, D = config_.head_dim;
  const DType act = be_->act_dtype();
  const size_t elem = dtype_size(act);
  for (int l = 0; l < config_.num_layers; ++l) {
    kv::HeadPagePool& pool = kv.page_pool(l);
    const std::vector<int32_t> pages = pool.take_dirty_pages();
    if (pages.empty()) continue;
    const int64_t rows = static_cast<int64_t>(pages.size()) * P;
    Tensor hk = Tensor::empty(act, {rows, 1, D}), hv = Tensor::empty(act, {rows, 1, D});
    Tensor hslots = Tensor::empty(DType::kI32, {rows});
    for (size_t i = 0; i < pages.size(); ++i) {
      const kv::HeadPagePool& cpool = pool;  // const rows: reading must not re-mark the page
      for (int64_t o = 0; o < P; ++o) {
        const int64_t r = static_cast<int64_t>(i) * P + o;
        convert_from_f32(cpool.k_row(pages[i], static_cast<int>(o)),
                         static_cast<char*>(hk.data()) + r * D * elem, act, D);
        convert_from_f32(cpool.v_row(pages[i], static_cast<int>(o)),
                         static_cast<char*>(hv.data()) + r * D * elem, act, D);
        hslots.data_as<int32_t>()[r] = static_cast<int32_t>(pages[i] * P + o);
      }
    }
    Tensor dk = be_->scratch(act, {rows, 1, D}), dv = be_->scratch(act, {rows, 1, D});
    Tensor dslots = be_->scratch(DType::kI32, {rows});
    be_->copy_from_host(dk, hk);
    be_->copy_from_host(dv, hv);
    be_->copy_from_host(dslots, hslots);
    // copy_from_host has taken the host bytes (staged or copied), so hk/hv/hslots may go now.
    be_->kv_store(dk, dv, dslots, page_k_[l], page_v_[l]);  // scatter rows into the pool
  }
}

void DeviceTiers::begin_step(const kv::TieredAttentionMeta& m) {
  meta_ = &m;
  query_indptr_ = to_device(*be_, m.query_indptr);
  dense_block_indptr_ = to_device(*be_, m.dense_block_indptr);
  dense_block_indices_ = to_device(*be_, m.dense_block_indices);
  dense_start_ = to_device(*be_, m.dense_start);
  dense_len_ = to_device(*be_, m.dense_len);
  page_indptr_ = to_device(*be_, m.page_indptr);
  page_indices_ = to_device(*be_, m.page_indices);
  cond_len_ = to_device(*be_, m.cond_len);
  mask_indptr_ = to_device(*be_, m.mask_indptr);
  mask_words_ = to_device(*be_, m.mask_words);
}

void DeviceTiers::attend(int layer_idx, const Tensor& q, const Tensor& k_cache,
                         const Tensor& v_cache, float scale, Tensor& out) {
#ifdef HARDKV_WITH_CUDA
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(be_);
  HARDKV_CHECK(cuda != nullptr && meta_ != nullptr, kInternal,
               "device HARD-KV attention needs the CUDA backend and begin_step()");
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
  p.max_cond_len = m.max_cond_len;
  p.max_dense_len = m.max_dense_len;
  p.scale = scale;
  const size_t ws = cuda::plan_tiered_attention(p, cuda->num_sms());
  if (ws > 0) {
    Tensor w = be_->scratch(DType::kF32, {static_cast<int64_t>(ws)});
    p.partial_o = w.data_as<float>();
    p.partial_ml = p.partial_o + static_cast<size_t>(p.num_splits) * p.num_tokens *
                                     p.num_q_heads * p.head_dim;
  }
  cuda::launch_tiered_attention(p, cuda->stream());
#else
  (void)layer_idx, (void)q, (void)k_cache, (void)v_cache, (void)scale, (void)out;
  HARDKV_THROW(kUnsupported, "device HARD-KV attention needs hardkv built with CUDA");
#endif
}

DeviceTiers::DenseCopy DeviceTiers::copy_dense(const kv::SequenceKV& seq, const KVCache& cache) {
  DenseCopy c;
  const int64_t nb = static_cast<int64_t>(seq.dense_blocks.size());
  const int64_t row = static_cast<int64_t>(cache.block_size) * config_.num_kv_heads *
                      config_.head_dim;  // one block
  c.view.block_size = cache.block_size;
  c.view.block_remap.assign(cache.num_blocks, -1);
  for (int64_t i = 0; i < nb; ++i) c.view.block_remap[seq.dense_blocks[i]] = static_cast<int32_t>(i);
  c.k.resize(config_.num_layers);
  c.v.resize(config_.num_layers);
  if (nb == 0) {
    for (int l = 0; l < config_.num_layers; ++l) {
      c.view.k.push_back(nullptr);
      c.view.v.push_back(nullptr);
    }
    return c;
  }
  Tensor idx = to_device(*be_, seq.dense_blocks);
  Tensor idx_n = Tensor::view(idx.data(), DType::kI32, {nb}, idx.device());
  Tensor rows = be_->scratch(be_->act_dtype(), {nb, row});
  for (int l = 0; l < config_.num_layers; ++l) {
    for (int kv_i = 0; kv_i < 2; ++kv_i) {
      const Tensor& src = kv_i == 0 ? cache.k[l] : cache.v[l];
      be_->gather_rows(src.reshape({cache.num_blocks, row}), idx_n, rows);
      const Tensor host = be_->download(rows);
      std::vector<float>& dst = kv_i == 0 ? c.k[l] : c.v[l];
      dst.resize(static_cast<size_t>(nb * row));
      convert_to_f32(host.data(), host.dtype(), dst.data(), dst.size());
    }
    c.view.k.push_back(c.k[l].data());
    c.view.v.push_back(c.v[l].data());
  }
  be_->release_scratch();
  return c;
}

}  // namespace hardkv
