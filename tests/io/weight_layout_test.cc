// hf_weight_specs for the four feature combinations: Qwen3 (q/k norm, tied), Qwen2 (qkv bias,
// untied), Llama (plain, untied) and Llama with attention_bias + mlp_bias. Expected names and
// shapes are written out by hand from the HF modeling code's module layout.
#include "model/weight_layout.h"

#include <gtest/gtest.h>

#include <map>

namespace hardkv {
namespace {

ModelConfig dims(ModelFamily family) {
  ModelConfig c;
  c.family = family;
  c.vocab_size = 50;
  c.hidden_size = 12;
  c.intermediate_size = 20;
  c.num_layers = 2;
  c.num_heads = 3;
  c.num_kv_heads = 1;
  c.head_dim = 8;  // != hidden / heads
  return c;
}

std::map<std::string, Shape> by_name(const std::vector<WeightSpec>& specs) {
  std::map<std::string, Shape> m;
  for (const WeightSpec& s : specs) EXPECT_TRUE(m.emplace(s.name, s.shape).second) << s.name;
  return m;
}

// The layer tensors every family has, with Hq*D = 24, Hkv*D = 8, H = 12, I = 20.
std::map<std::string, Shape> common_layer(int i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  return {{p + "input_layernorm.weight", {12}},
          {p + "self_attn.q_proj.weight", {24, 12}},
          {p + "self_attn.k_proj.weight", {8, 12}},
          {p + "self_attn.v_proj.weight", {8, 12}},
          {p + "self_attn.o_proj.weight", {12, 24}},
          {p + "post_attention_layernorm.weight", {12}},
          {p + "mlp.gate_proj.weight", {20, 12}},
          {p + "mlp.up_proj.weight", {20, 12}},
          {p + "mlp.down_proj.weight", {12, 20}}};
}

std::map<std::string, Shape> expected(bool tied, bool qkv_bias, bool o_bias, bool qk_norm,
                                      bool mlp_bias) {
  std::map<std::string, Shape> m = {{"model.embed_tokens.weight", {50, 12}},
                                    {"model.norm.weight", {12}}};
  if (!tied) m["lm_head.weight"] = {50, 12};
  for (int i = 0; i < 2; ++i) {
    m.merge(common_layer(i));
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (qkv_bias) {
      m[p + "self_attn.q_proj.bias"] = {24};
      m[p + "self_attn.k_proj.bias"] = {8};
      m[p + "self_attn.v_proj.bias"] = {8};
    }
    if (o_bias) m[p + "self_attn.o_proj.bias"] = {12};
    if (qk_norm) {
      m[p + "self_attn.q_norm.weight"] = {8};
      m[p + "self_attn.k_norm.weight"] = {8};
    }
    if (mlp_bias) {
      m[p + "mlp.gate_proj.bias"] = {20};
      m[p + "mlp.up_proj.bias"] = {20};
      m[p + "mlp.down_proj.bias"] = {12};
    }
  }
  return m;
}

TEST(WeightLayout, Qwen3QkNormTied) {
  ModelConfig c = dims(ModelFamily::kQwen3);
  c.qk_norm = true;
  c.tie_word_embeddings = true;
  auto specs = hf_weight_specs(c);
  EXPECT_EQ(by_name(specs), expected(true, false, false, true, false));
  EXPECT_EQ(specs.size(), 2u + 2 * 11);
}

TEST(WeightLayout, Qwen2QkvBiasUntied) {
  ModelConfig c = dims(ModelFamily::kQwen2);
  c.qkv_bias = true;
  auto specs = hf_weight_specs(c);
  EXPECT_EQ(by_name(specs), expected(false, true, false, false, false));
  EXPECT_EQ(specs.size(), 3u + 2 * 12);
}

TEST(WeightLayout, LlamaPlainUntied) {
  auto specs = hf_weight_specs(dims(ModelFamily::kLlama));
  EXPECT_EQ(by_name(specs), expected(false, false, false, false, false));
  EXPECT_EQ(specs.size(), 3u + 2 * 9);
}

TEST(WeightLayout, LlamaAttentionAndMlpBias) {
  ModelConfig c = dims(ModelFamily::kLlama);
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  auto specs = hf_weight_specs(c);
  EXPECT_EQ(by_name(specs), expected(false, true, true, false, true));
  EXPECT_EQ(specs.size(), 3u + 2 * 16);
}

TEST(WeightLayout, OrderAndKinds) {
  ModelConfig c = dims(ModelFamily::kLlama);
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  auto specs = hf_weight_specs(c);
  EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(specs.front().kind, WeightKind::kEmbedding);
  EXPECT_EQ(specs.back().name, "lm_head.weight");
  EXPECT_EQ(specs.back().kind, WeightKind::kMatrix);
  EXPECT_EQ(specs[specs.size() - 2].name, "model.norm.weight");
  // Layer 0 comes entirely before layer 1.
  size_t last0 = 0, first1 = specs.size();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name.rfind("model.layers.0.", 0) == 0) last0 = i;
    if (specs[i].name.rfind("model.layers.1.", 0) == 0) first1 = std::min(first1, i);
  }
  EXPECT_LT(last0, first1);
  for (const WeightSpec& s : specs) {
    const bool bias = s.name.size() > 5 && s.name.substr(s.name.size() - 5) == ".bias";
    const bool norm = s.name.find("norm") != std::string::npos;
    if (bias) {
      EXPECT_EQ(s.kind, WeightKind::kBias) << s.name;
    }
    if (norm) {
      EXPECT_EQ(s.kind, WeightKind::kNorm) << s.name;
    }
    if (!bias && !norm && s.name != "model.embed_tokens.weight") {
      EXPECT_EQ(s.kind, WeightKind::kMatrix) << s.name;
    }
  }
}

}  // namespace
}  // namespace hardkv
