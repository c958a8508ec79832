// The decoder: one implementation for Llama, Qwen2 and Qwen3 over the Backend ops.
// Step: embed -> L x (norm + fused qkv projection, qkv_prepare [q/k norm, RoPE, K/V store], paged
// attention, o-proj, norm + gate_up, silu*mul + down) -> final norm on the wanted rows -> lm_head.
// "norm + linear" and "silu*mul + linear" are single Backend ops that a backend may fuse.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/rope_table.h"
#include "model/weight_layout.h"

namespace hardkv {

struct Model::Layer {
  Tensor input_norm;  // [H]
  Tensor post_norm;   // [H]
  Tensor wqkv;        // [(Hq + 2 Hkv) * D, H]: q_proj rows, then k_proj, then v_proj
  Tensor bqkv;        // [(Hq + 2 Hkv) * D] (Qwen2, attention_bias) or undefined
  Tensor wo, bo;      // [H, Hq*D], [H] or undefined
  Tensor q_norm, k_norm;        // [D] (Qwen3) or undefined
  Tensor w_gate_up, b_gate_up;  // [2I, H] (gate rows then up rows), [2I] or undefined
  Tensor w_down, b_down;        // [H, I], [H] or undefined
};

namespace {

// Concatenates host tensors of one dtype along dim 0.
Tensor concat_rows(const Tensor& a, const Tensor& b) {
  HARDKV_ASSERT(a.dtype() == b.dtype() && a.numel() / a.dim(0) == b.numel() / b.dim(0));
  Shape shape = a.shape();
  shape[0] += b.dim(0);
  Tensor out = Tensor::empty(a.dtype(), shape);
  std::memcpy(out.data(), a.data(), a.nbytes());
  std::memcpy(static_cast<char*>(out.data()) + a.nbytes(), b.data(), b.nbytes());
  return out;
}

const Tensor* opt(const Tensor& t) { return t.defined() ? &t : nullptr; }

}  // namespace

Model::Model(ModelConfig config, Backend& backend)
    : config_(std::move(config)), backend_(&backend) {}

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& model_dir, Backend& backend) {
  ModelConfig config = load_model_config(model_dir);
  CheckpointReader reader = CheckpointReader::open(model_dir);
  std::map<std::string, Tensor> host;
  for (const WeightSpec& spec : hf_weight_specs(config)) {
    host[spec.name] = reader.get_checked(spec.name, spec.shape);
  }
  std::unique_ptr<Model> model(new Model(config, backend));
  const DType act = backend.act_dtype();
  auto up = [&](const std::string& name) { return backend.upload(host.at(name), act); };
  auto up_opt = [&](const std::string& name) {
    auto it = host.find(name);
    return it == host.end() ? Tensor() : backend.upload(it->second, act);
  };
  model->embed_tokens_ = up("model.embed_tokens.weight");
  model->final_norm_ = up("model.norm.weight");
  model->lm_head_ = config.tie_word_embeddings ? model->embed_tokens_ : up("lm_head.weight");
  model->layers_.resize(config.num_layers);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer& l = model->layers_[i];
    l.input_norm = up(p + "input_layernorm.weight");
    l.post_norm = up(p + "post_attention_layernorm.weight");
    const std::string a = p + "self_attn.";
    l.wqkv = backend.upload(concat_rows(concat_rows(host.at(a + "q_proj.weight"),
                                                    host.at(a + "k_proj.weight")),
                                        host.at(a + "v_proj.weight")),
                            act);
    if (host.count(a + "q_proj.bias") || host.count(a + "k_proj.bias") ||
        host.count(a + "v_proj.bias")) {
      auto bias_or_zeros = [&](const std::string& name, int64_t n) {
        auto it = host.find(name);
        if (it != host.end()) return it->second;
        Tensor z = Tensor::empty(DType::kF32, {n});
        std::memset(z.data(), 0, z.nbytes());
        return z;
      };
      const int64_t q_rows = config.num_heads * config.head_dim;
      const int64_t kv_rows = config.num_kv_heads * config.head_dim;
      Tensor bq = bias_or_zeros(a + "q_proj.bias", q_rows);
      Tensor bk = bias_or_zeros(a + "k_proj.bias", kv_rows);
      Tensor bv = bias_or_zeros(a + "v_proj.bias", kv_rows);
      auto f32 = [&](const Tensor& t) {  // concat needs one dtype
        if (t.dtype() == DType::kF32) return t;
        Tensor o = Tensor::empty(DType::kF32, t.shape());
        convert_to_f32(t.data(), t.dtype(), o.data_as<float>(), static_cast<size_t>(t.numel()));
        return o;
      };
      l.bqkv = backend.upload(concat_rows(concat_rows(f32(bq), f32(bk)), f32(bv)), act);
    }
    l.wo = up(p + "self_attn.o_proj.weight");
    l.bo = up_opt(p + "self_attn.o_proj.bias");
    l.q_norm = up_opt(p + "self_attn.q_norm.weight");
    l.k_norm = up_opt(p + "self_attn.k_norm.weight");
    l.w_gate_up = backend.upload(
        concat_rows(host.at(p + "mlp.gate_proj.weight"), host.at(p + "mlp.up_proj.weight")), act);
    if (config.mlp_bias) {
      l.b_gate_up = backend.upload(
          concat_rows(host.at(p + "mlp.gate_proj.bias"), host.at(p + "mlp.up_proj.bias")), act);
    }
    l.w_down = up(p + "mlp.down_proj.weight");
    l.b_down = up_opt(p + "mlp.down_proj.bias");
  }
  model->rope_cos_sin_ = backend.upload(
      rope_cos_sin_table(config.rope, config.head_dim, config.max_position_embeddings),
      DType::kF32);
  return model;
}

size_t Model::kv_bytes_per_block(int block_size) const {
  return 2 * static_cast<size_t>(config_.num_layers) * block_size * config_.num_kv_heads *
         config_.head_dim * dtype_size(backend_->act_dtype());
}

KVCache Model::allocate_kv_cache(int num_blocks, int block_size) const {
  HARDKV_CHECK(num_blocks > 0 && block_size > 0, kInvalidArgument,
               "KV cache needs num_blocks > 0 and block_size > 0 (got {}, {})", num_blocks,
               block_size);
  KVCache kv;
  kv.num_blocks = num_blocks;
  kv.block_size = block_size;
  const Shape shape{num_blocks, block_size, config_.num_kv_heads, config_.head_dim};
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    kv.k.push_back(backend_->alloc(backend_->act_dtype(), shape));
    kv.v.push_back(backend_->alloc(backend_->act_dtype(), shape));
  }
  return kv;
}

Tensor Model::forward(const ForwardBatch& b, KVCache& kv, AttentionHook* hook) {
  Backend& be = *backend_;
  const ModelConfig& c = config_;
  const int64_t num_tokens = static_cast<int64_t>(b.token_ids.size());
  const int64_t num_seqs = static_cast<int64_t>(b.kv_lens.size());
  HARDKV_CHECK(num_tokens > 0 && b.positions.size() == b.token_ids.size() &&
                   b.slot_mapping.size() == b.token_ids.size() &&
                   b.query_indptr.size() == static_cast<size_t>(num_seqs + 1) &&
                   b.block_indptr.size() == static_cast<size_t>(num_seqs + 1) &&
                   b.query_indptr.back() == num_tokens &&
                   b.block_indptr.back() == static_cast<int32_t>(b.block_indices.size()),
               kInternal, "inconsistent ForwardBatch: {} tokens, {} seqs", num_tokens, num_seqs);
  for (int32_t id : b.token_ids) {  // ids < 0: placeholders for sampled tokens (sample_async)
    HARDKV_CHECK(id < c.vocab_size, kInvalidArgument,
                 "token id {} is outside the model's vocabulary [0, {})", id, c.vocab_size);
  }
  for (int32_t pos : b.positions) {
    HARDKV_CHECK(pos >= 0 && pos < c.max_position_embeddings, kInvalidArgument,
                 "position {} is beyond the model's max_position_embeddings {}", pos,
                 c.max_position_embeddings);
  }
  // All step metadata goes up in one host-to-device copy (one copy node in a CUDA graph instead
  // of eight): the I32 arrays packed at 64-byte-aligned offsets, the block table last so it may
  // grow inside the copy's 256-byte slot under a captured graph.
  const std::vector<int32_t>* arrays[] = {&b.token_ids,   &b.positions,    &b.slot_mapping,
                                          &b.logits_indices, &b.query_indptr, &b.kv_lens,
                                          &b.block_indptr, &b.block_indices};
  constexpr int kArrays = sizeof(arrays) / sizeof(arrays[0]);
  int64_t offsets[kArrays + 1] = {0};
  for (int a = 0; a < kArrays; ++a) {
    offsets[a + 1] = offsets[a] + (static_cast<int64_t>(arrays[a]->size()) + 15) / 16 * 16;
  }
  std::vector<int32_t> packed(static_cast<size_t>(std::max<int64_t>(offsets[kArrays], 1)), 0);
  for (int a = 0; a < kArrays; ++a) {
    std::copy(arrays[a]->begin(), arrays[a]->end(), packed.begin() + offsets[a]);
  }
  Tensor packed_dev = be.scratch(DType::kI32, {static_cast<int64_t>(packed.size())});
  {
    Tensor host = Tensor::view(packed.data(), DType::kI32, {static_cast<int64_t>(packed.size())},
                               Device::kCPU);
    be.copy_from_host(packed_dev, host);
  }
  auto part = [&](int a) {
    return Tensor::view(packed_dev.data_as<int32_t>() + offsets[a], DType::kI32,
                        {static_cast<int64_t>(arrays[a]->size())}, packed_dev.device());
  };
  Tensor ids = part(0);
  Tensor positions = part(1);
  Tensor slots = part(2);
  Tensor logits_idx = part(3);
  AttentionMeta meta;
  meta.query_indptr = part(4);
  meta.kv_lens = part(5);
  meta.block_indptr = part(6);
  meta.block_indices = part(7);
  meta.num_seqs = static_cast<int>(num_seqs);
  meta.num_tokens = static_cast<int>(num_tokens);
  meta.block_size = kv.block_size;
  for (int64_t s = 0; s < num_seqs; ++s) {
    meta.max_query_len = std::max(meta.max_query_len, b.query_indptr[s + 1] - b.query_indptr[s]);
    meta.max_kv_len = std::max(meta.max_kv_len, b.kv_lens[s]);
  }

  // qkv_prepare_attention's precondition: each query token is stored at the slot of its own KV
  // position (kv_len - q_len + j), as the engine lays steps out; otherwise the separate ops run.
  // A padding row of a graph step (one query token, slot -1: nothing stored, its output unused)
  // does not count against it.
  bool slots_match_positions = true;
  for (int64_t s = 0; s < num_seqs && slots_match_positions; ++s) {
    const int32_t q_begin = b.query_indptr[s], q_len = b.query_indptr[s + 1] - q_begin;
    if (q_len == 1 && b.slot_mapping[q_begin] == -1) continue;
    for (int32_t j = 0; j < q_len; ++j) {
      const int64_t pos = b.kv_lens[s] - q_len + j;
      const int64_t blk = b.block_indptr[s] + pos / kv.block_size;
      if (pos < 0 || blk >= b.block_indptr[s + 1] ||
          b.slot_mapping[q_begin + j] !=
              static_cast<int64_t>(b.block_indices[blk]) * kv.block_size + pos % kv.block_size) {
        slots_match_positions = false;
        break;
      }
    }
  }

  const DType act = be.act_dtype();
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t hq = c.num_heads, hkv = c.num_kv_heads, inter = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  Tensor residual = be.scratch(act, {num_tokens, hidden});  // running residual stream
  Tensor h = be.scratch(act, {num_tokens, hidden});         // normed input of each sub-block
  Tensor qkv = be.scratch(act, {num_tokens, (hq + 2 * hkv) * hd});
  Tensor q = be.scratch(act, {num_tokens, hq, hd});
  Tensor attn = be.scratch(act, {num_tokens, hq, hd});
  Tensor gate_up = be.scratch(act, {num_tokens, 2 * inter});
  Tensor mlp_act = be.scratch(act, {num_tokens, inter});

  be.embedding(ids, embed_tokens_, residual);
  be.rms_norm(residual, layers_[0].input_norm, eps, h);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer& l = layers_[i];
    if (i == 0) {
      be.linear(h, l.wqkv, opt(l.bqkv), qkv);
    } else {  // h holds the last MLP output
      be.add_rms_norm_linear(h, residual, l.input_norm, eps, l.wqkv, opt(l.bqkv), qkv);
    }
    if (hook) {
      be.qkv_prepare(qkv, opt(l.q_norm), opt(l.k_norm), eps, positions, rope_cos_sin_, slots, q,
                     kv.k[i], kv.v[i]);
      hook->attend(static_cast<int>(i), q, kv.k[i], kv.v[i], meta, scale, attn);
    } else if (slots_match_positions) {
      be.qkv_prepare_attention(qkv, opt(l.q_norm), opt(l.k_norm), eps, positions, rope_cos_sin_,
                               slots, q, kv.k[i], kv.v[i], meta, scale, attn);
    } else {
      be.qkv_prepare(qkv, opt(l.q_norm), opt(l.k_norm), eps, positions, rope_cos_sin_, slots, q,
                     kv.k[i], kv.v[i]);
      be.attention(q, kv.k[i], kv.v[i], meta, scale, attn);
    }
    Tensor attn2 = attn.reshape({num_tokens, hq * hd});
    be.linear(attn2, l.wo, opt(l.bo), h);
    be.add_rms_norm_linear(h, residual, l.post_norm, eps, l.w_gate_up, opt(l.b_gate_up), gate_up);
    be.silu_mul_linear(gate_up, l.w_down, opt(l.b_down), mlp_act, h);
  }
  const int64_t num_logits = static_cast<int64_t>(b.logits_indices.size());
  Tensor logits = be.scratch(DType::kF32, {num_logits, c.vocab_size});
  be.add_rms_norm(h, residual, final_norm_, eps);
  // Every token a logits row, in order (a decode step): lm_head reads h itself, no gather.
  bool every_row = num_logits == num_tokens;
  for (int64_t i = 0; every_row && i < num_logits; ++i) every_row = b.logits_indices[i] == i;
  if (every_row) {
    be.linear(h, lm_head_, nullptr, logits);
  } else if (num_logits > 0) {
    Tensor last = be.scratch(act, {num_logits, hidden});
    be.gather_rows(h, logits_idx, last);
    be.linear(last, lm_head_, nullptr, logits);
  }
  return logits;
}

}  // namespace hardkv
