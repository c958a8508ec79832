// hf_weight_specs: the HuggingFace tensor names and shapes of a Llama / Qwen2 / Qwen3 checkpoint.
#include "model/weight_layout.h"

#include <fmt/format.h>

namespace hardkv {

std::vector<WeightSpec> hf_weight_specs(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size;               // H
  const int64_t q_dim = c.num_heads * c.head_dim;     // Hq * D
  const int64_t kv_dim = c.num_kv_heads * c.head_dim; // Hkv * D
  const int64_t inter = c.intermediate_size;          // I
  std::vector<WeightSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, hidden}, WeightKind::kEmbedding});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    specs.push_back({p + "input_layernorm.weight", {hidden}, WeightKind::kNorm});
    specs.push_back({p + "self_attn.q_proj.weight", {q_dim, hidden}, WeightKind::kMatrix});
    specs.push_back({p + "self_attn.k_proj.weight", {kv_dim, hidden}, WeightKind::kMatrix});
    specs.push_back({p + "self_attn.v_proj.weight", {kv_dim, hidden}, WeightKind::kMatrix});
    if (c.qkv_bias) {
      specs.push_back({p + "self_attn.q_proj.bias", {q_dim}, WeightKind::kBias});
      specs.push_back({p + "self_attn.k_proj.bias", {kv_dim}, WeightKind::kBias});
      specs.push_back({p + "self_attn.v_proj.bias", {kv_dim}, WeightKind::kBias});
    }
    specs.push_back({p + "self_attn.o_proj.weight", {hidden, q_dim}, WeightKind::kMatrix});
    if (c.o_bias) specs.push_back({p + "self_attn.o_proj.bias", {hidden}, WeightKind::kBias});
    if (c.qk_norm) {
      specs.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, WeightKind::kNorm});
      specs.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, WeightKind::kNorm});
    }
    specs.push_back({p + "post_attention_layernorm.weight", {hidden}, WeightKind::kNorm});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, hidden}, WeightKind::kMatrix});
    specs.push_back({p + "mlp.up_proj.weight", {inter, hidden}, WeightKind::kMatrix});
    specs.push_back({p + "mlp.down_proj.weight", {hidden, inter}, WeightKind::kMatrix});
    if (c.mlp_bias) {
      specs.push_back({p + "mlp.gate_proj.bias", {inter}, WeightKind::kBias});
      specs.push_back({p + "mlp.up_proj.bias", {inter}, WeightKind::kBias});
      specs.push_back({p + "mlp.down_proj.bias", {hidden}, WeightKind::kBias});
    }
  }
  specs.push_back({"model.norm.weight", {hidden}, WeightKind::kNorm});
  if (!c.tie_word_embeddings) {
    specs.push_back({"lm_head.weight", {c.vocab_size, hidden}, WeightKind::kMatrix});
  }
  return specs;
}

}  // namespace hardkv
