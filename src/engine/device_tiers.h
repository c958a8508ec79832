// DeviceTiers: HARD-KV on a device backend. The host HeadwiseKV stays the source of truth for
// the tiers' layout and selection (the CPU reference code); this class keeps a device copy of its
// condensed head-page pools (act dtype, re-uploading only pages written since the last sync),
// uploads each step's tiered-attention metadata, runs the device tiered attention per layer, and
// copies a sequence's dense blocks to the host for a compression event.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "kv/compression_event.h"
#include "kv/headwise_kv.h"
#include "model/model.h"

namespace hardkv {

class DeviceTiers {
 public:
  // Allocates [num_pages, page_size, 1, head_dim] K and V pools per layer on `backend`.
  DeviceTiers(Backend& backend, const kv::HeadwiseKVConfig& config);

  Backend& backend() const { return *be_; }
  // Uploads every page of `kv` written since the last sync (all layers).
  void sync_pages(kv::HeadwiseKV& kv);
  // The step's metadata into backend scratch (valid until the backend's release_scratch()).
  void begin_step(const kv::TieredAttentionMeta& meta);
  // One layer: q, out act [num_tokens, Hq, D] on the device; the layer's dense caches.
  void attend(int layer_idx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
              float scale, Tensor& out);

  // Host fp32 copies of a sequence's dense blocks, every layer, and the view over them.
  struct DenseCopy {
    std::vector<std::vector<float>> k, v;  // [num_layers][blocks, block_size, Hkv, D]
    kv::DenseKVView view;
  };
  DenseCopy copy_dense(const kv::SequenceKV& seq, const KVCache& cache);

 private:
  Backend* be_;
  kv::HeadwiseKVConfig config_;
  std::vector<Tensor> page_k_, page_v_;  // [num_layers] act [num_pages, P, 1, D]
  // The step's metadata on the device (scratch).
  const kv::TieredAttentionMeta* meta_ = nullptr;
  Tensor query_indptr_, dense_block_indptr_, dense_block_indices_, dense_start_, dense_len_;
  Tensor page_indptr_, page_indices_, cond_len_, mask_indptr_, mask_words_;
};

}  // namespace hardkv
