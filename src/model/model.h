// Model: the decoder (Llama / Qwen2 / Qwen3, written once) on a Backend, with its weights and a
// paged KV cache. forward() runs one engine step over a flat batch of sequences.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/model_config.h"

namespace hardkv {

// Paged KV cache: per layer, K and V pools of act dtype [num_blocks, block_size, Hkv, head_dim].
struct KVCache {
  int num_blocks = 0;
  int block_size = 0;
  std::vector<Tensor> k;  // [num_layers]
  std::vector<Tensor> v;  // [num_layers]
};

// Host-side description of one forward step (see AttentionMeta for the indexing contract).
// New tokens of all sequences are laid out sequence by sequence.
struct ForwardBatch {
  std::vector<int32_t> token_ids;       // [num_tokens]; < 0: placeholder (Backend::sample_async)
  std::vector<int32_t> positions;       // [num_tokens]
  std::vector<int32_t> slot_mapping;    // [num_tokens] cache slot of each new token's K/V
  std::vector<int32_t> query_indptr;    // [num_seqs + 1]
  std::vector<int32_t> kv_lens;         // [num_seqs] cached + new tokens after this step
  std::vector<int32_t> block_indptr;    // [num_seqs + 1]
  std::vector<int32_t> block_indices;   // [block_indptr[num_seqs]]
  std::vector<int32_t> logits_indices;  // [num_logits] rows of token_ids whose logits are wanted
};

// Replaces the paged attention of every layer (HARD-KV's tiered attention): called after RoPE and
// kv_store with the layer's post-RoPE queries q [num_tokens, Hq, head_dim], its paged cache and the
// step's metadata; writes out [num_tokens, Hq, head_dim]. Null in Model::forward = paged attention.
class AttentionHook {
 public:
  virtual ~AttentionHook() = default;
  virtual void attend(int layer_idx, const Tensor& q, Tensor& k_cache, Tensor& v_cache,
                      const AttentionMeta& meta, float scale, Tensor& out) = 0;
};

class Model {
 public:
  // Reads config.json + safetensors from `model_dir`, checks every tensor's name, shape and dtype
  // against the config, and uploads the weights to `backend` in its activation dtype.
  static std::unique_ptr<Model> load(const std::string& model_dir, Backend& backend);
  ~Model();

  const ModelConfig& config() const { return config_; }
  Backend& backend() const { return *backend_; }

  size_t kv_bytes_per_block(int block_size) const;  // K + V over all layers
  KVCache allocate_kv_cache(int num_blocks, int block_size) const;

  // One step; returns F32 logits [logits_indices.size(), vocab_size] on the backend (valid until
  // the backend's next release_scratch()). `hook`, when set, runs each layer's attention in place
  // of Backend::attention.
  Tensor forward(const ForwardBatch& batch, KVCache& kv, AttentionHook* hook = nullptr);

 private:
  struct Layer;
  Model(ModelConfig config, Backend& backend);
  ModelConfig config_;
  Backend* backend_;
  std::vector<Layer> layers_;
  Tensor embed_tokens_;  // act [V, H]
  Tensor final_norm_;    // act [H]
  Tensor lm_head_;       // act [V, H] (same storage as embed_tokens_ when tied)
  Tensor rope_cos_sin_;  // F32 [max_pos, head_dim]
};

}  // namespace hardkv
