// parse_model_config / load_model_config on published config.json files (Qwen3-0.6B,
// DeepSeek-R1-Distill-Qwen-1.5B, Llama-3.2-1B, TinyLlama), transformers 5's rope_parameters, and
// the error cases (missing field, bad type, heads not divisible, unsupported architecture, ...).
#include "model/model_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io_test_util.h"

namespace hardkv {
namespace {

using nlohmann::json;
using test::expect_error;
using test::TempDir;
using test::write_bytes;

// Published config.json of Qwen/Qwen3-0.6B.
const char* kQwen3_06B = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

// Published config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B (no head_dim).
const char* kR1DistillQwen = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151646,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
  "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.44.0",
  "use_cache": true, "use_mrope": false, "use_sliding_window": false, "vocab_size": 151936})";

// Published config.json of meta-llama/Llama-3.2-1B-Instruct.
const char* kLlama32_1B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64,
  "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256})";

// Published config.json of TinyLlama/TinyLlama-1.1B-Chat-v1.0 (Llama-2 architecture).
const char* kTinyLlama = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1,
  "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 5632, "max_position_embeddings": 2048, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 22, "num_key_value_heads": 4,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.35.0",
  "use_cache": true, "vocab_size": 32000})";

ModelConfig parse(const char* text) { return parse_model_config(json::parse(text), "config.json"); }

TEST(ModelConfig, Qwen3) {
  ModelConfig c = parse(kQwen3_06B);
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.family, ModelFamily::kQwen3);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.num_layers, 28);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);  // not hidden / heads = 64
  EXPECT_EQ(c.max_position_embeddings, 40960);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.rope.scaling, RopeScaling::kNone);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>({151645}));
  EXPECT_STREQ(model_family_name(c.family), "qwen3");
}

TEST(ModelConfig, Qwen2DeepSeekDistill) {
  ModelConfig c = parse(kR1DistillQwen);
  EXPECT_EQ(c.family, ModelFamily::kQwen2);
  EXPECT_EQ(c.head_dim, 128);  // 1536 / 12
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>({151643}));
}

TEST(ModelConfig, Llama32WithLlama3Rope) {
  ModelConfig c = parse(kLlama32_1B);
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.scaling, RopeScaling::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>({128001, 128008, 128009}));
}

TEST(ModelConfig, TinyLlamaLlama2Style) {
  ModelConfig c = parse(kTinyLlama);
  EXPECT_EQ(c.head_dim, 64);  // 2048 / 32
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.intermediate_size, 5632);
  EXPECT_EQ(c.rope.scaling, RopeScaling::kNone);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>({2}));
}

TEST(ModelConfig, LlamaBiasFlags) {
  json doc = json::parse(kTinyLlama);
  doc["attention_bias"] = true;
  doc["mlp_bias"] = true;
  ModelConfig c = parse_model_config(doc, "config.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.mlp_bias);
}

TEST(ModelConfig, DefaultsForOptionalFields) {
  json doc = json::parse(kTinyLlama);
  doc.erase("num_key_value_heads");
  doc.erase("rope_theta");
  doc.erase("torch_dtype");
  doc.erase("eos_token_id");
  doc.erase("bos_token_id");
  doc.erase("tie_word_embeddings");
  ModelConfig c = parse_model_config(doc, "config.json");
  EXPECT_EQ(c.num_kv_heads, 32);  // = num_attention_heads
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_EQ(c.dtype, DType::kF32);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(ModelConfig, Transformers5RopeParametersDefault) {
  json doc = json::parse(kQwen3_06B);
  doc.erase("rope_theta");
  doc.erase("rope_scaling");
  doc.erase("torch_dtype");
  doc["dtype"] = "float16";
  doc["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 2500000.0}};
  ModelConfig c = parse_model_config(doc, "config.json");
  EXPECT_DOUBLE_EQ(c.rope.theta, 2500000.0);
  EXPECT_EQ(c.rope.scaling, RopeScaling::kNone);
  EXPECT_EQ(c.dtype, DType::kF16);
}

TEST(ModelConfig, Transformers5RopeParametersLlama3) {
  json doc = json::parse(kLlama32_1B);
  doc.erase("rope_theta");
  doc.erase("rope_scaling");
  doc["rope_parameters"] = {{"rope_type", "llama3"},        {"rope_theta", 500000.0},
                            {"factor", 8.0},                {"low_freq_factor", 2.0},
                            {"high_freq_factor", 6.0},      {"original_max_position_embeddings", 4096}};
  ModelConfig c = parse_model_config(doc, "config.json");
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.scaling, RopeScaling::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 2.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 6.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 4096);
}

TEST(ModelConfig, LinearRopeBothForms) {
  json classic = json::parse(kTinyLlama);
  classic["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  ModelConfig a = parse_model_config(classic, "config.json");
  EXPECT_EQ(a.rope.scaling, RopeScaling::kLinear);
  EXPECT_DOUBLE_EQ(a.rope.factor, 4.0);
  EXPECT_DOUBLE_EQ(a.rope.theta, 10000.0);
  json v5 = json::parse(kTinyLlama);
  v5.erase("rope_scaling");
  v5["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 20000.0}};
  ModelConfig b = parse_model_config(v5, "config.json");
  EXPECT_EQ(b.rope.scaling, RopeScaling::kLinear);
  EXPECT_DOUBLE_EQ(b.rope.factor, 2.0);
  EXPECT_DOUBLE_EQ(b.rope.theta, 20000.0);
}

TEST(ModelConfig, LoadMergesGenerationConfigEos) {
  TempDir dir;
  write_bytes(dir.file("config.json"), kQwen3_06B);
  write_bytes(dir.file("generation_config.json"),
              R"({"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643],
                  "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95})");
  ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>({151645, 151643}));
}

TEST(ModelConfig, LoadWithoutGenerationConfig) {
  TempDir dir;
  write_bytes(dir.file("config.json"), kLlama32_1B);
  EXPECT_EQ(load_model_config(dir.path()).eos_token_ids.size(), 3u);
}

// ---- errors -----------------------------------------------------------------------------------

void expect_config_error(const json& doc, const std::vector<std::string>& parts,
                         ErrorKind kind = ErrorKind::kBadFile) {
  std::vector<std::string> all = parts;
  all.push_back("/m/config.json");
  expect_error([&] { parse_model_config(doc, "/m/config.json"); }, kind, all);
}

TEST(ModelConfigErrors, MissingRequiredField) {
  for (const char* field : {"hidden_size", "vocab_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "max_position_embeddings"}) {
    json doc = json::parse(kQwen3_06B);
    doc.erase(field);
    expect_config_error(doc, {"missing required field", field});
  }
}

TEST(ModelConfigErrors, BadTypes) {
  json doc = json::parse(kQwen3_06B);
  doc["hidden_size"] = "1024";
  expect_config_error(doc, {"'hidden_size'", "must be an integer", "string"});
  doc = json::parse(kQwen3_06B);
  doc["num_hidden_layers"] = 2.5;
  expect_config_error(doc, {"'num_hidden_layers'", "must be an integer"});
  doc = json::parse(kQwen3_06B);
  doc["tie_word_embeddings"] = "yes";
  expect_config_error(doc, {"'tie_word_embeddings'", "true or false"});
  doc = json::parse(kQwen3_06B);
  doc["rope_theta"] = "big";
  expect_config_error(doc, {"'rope_theta'", "must be a number"});
  doc = json::parse(kQwen3_06B);
  doc["eos_token_id"] = {151645, "x"};
  expect_config_error(doc, {"'eos_token_id'", "token ids"});
  doc = json::parse(kQwen3_06B);
  doc["architectures"] = "Qwen3ForCausalLM";
  expect_config_error(doc, {"'architectures'", "list of strings"});
  doc = json::parse(kQwen3_06B);
  doc["rope_scaling"] = 3;
  expect_config_error(doc, {"'rope_scaling'", "object"});
  expect_config_error(json::array(), {"not a JSON object"});
}

TEST(ModelConfigErrors, NonPositiveDims) {
  json doc = json::parse(kQwen3_06B);
  doc["num_hidden_layers"] = 0;
  expect_config_error(doc, {"'num_hidden_layers'", "must be positive"});
  doc = json::parse(kQwen3_06B);
  doc["vocab_size"] = -5;
  expect_config_error(doc, {"'vocab_size'", "must be positive"});
  doc = json::parse(kQwen3_06B);
  doc["head_dim"] = 0;
  expect_config_error(doc, {"'head_dim'", "must be positive"});
}

TEST(ModelConfigErrors, HeadsNotDivisibleByKvHeads) {
  json doc = json::parse(kQwen3_06B);
  doc["num_key_value_heads"] = 6;
  expect_config_error(doc, {"'num_attention_heads' (16)", "'num_key_value_heads' (6)"});
}

TEST(ModelConfigErrors, HiddenNotDivisibleWithoutHeadDim) {
  json doc = json::parse(kTinyLlama);
  doc["hidden_size"] = 2050;
  expect_config_error(doc, {"no 'head_dim'", "'hidden_size' (2050)"});
}

TEST(ModelConfigErrors, UnsupportedArchitecture) {
  json doc = json::parse(kTinyLlama);
  doc["architectures"] = {"MistralForCausalLM"};
  expect_config_error(doc,
                      {"'MistralForCausalLM'", "not supported", "LlamaForCausalLM",
                       "Qwen2ForCausalLM", "Qwen3ForCausalLM"},
                      ErrorKind::kUnsupported);
}

TEST(ModelConfigErrors, MissingArchitectures) {
  json doc = json::parse(kTinyLlama);
  doc.erase("architectures");
  expect_config_error(doc, {"'architectures'"});
}

TEST(ModelConfigErrors, UnsupportedRopeType) {
  json doc = json::parse(kTinyLlama);
  doc["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_config_error(doc, {"'rope_scaling'", "'yarn'", "llama3"}, ErrorKind::kUnsupported);
}

TEST(ModelConfigErrors, Llama3RopeMissingField) {
  json doc = json::parse(kLlama32_1B);
  doc["rope_scaling"].erase("original_max_position_embeddings");
  expect_config_error(doc, {"rope_scaling.original_max_position_embeddings"});
}

TEST(ModelConfigErrors, UnsupportedActivationAndSlidingWindow) {
  json doc = json::parse(kTinyLlama);
  doc["hidden_act"] = "gelu";
  expect_config_error(doc, {"'hidden_act'", "gelu"}, ErrorKind::kUnsupported);
  doc = json::parse(kR1DistillQwen);
  doc["use_sliding_window"] = true;
  expect_config_error(doc, {"'use_sliding_window'"}, ErrorKind::kUnsupported);
}

TEST(ModelConfigErrors, UnsupportedDtype) {
  json doc = json::parse(kTinyLlama);
  doc["torch_dtype"] = "float8_e4m3fn";
  expect_config_error(doc, {"'torch_dtype'", "float8_e4m3fn"}, ErrorKind::kUnsupported);
}

TEST(ModelConfigErrors, LoadMissingAndMalformedFiles) {
  TempDir dir;
  const std::string config = dir.file("config.json");
  expect_error([&] { load_model_config(dir.path()); }, ErrorKind::kBadFile,
               {config, "cannot open"});
  write_bytes(config, "{\"architectures\": [");
  expect_error([&] { load_model_config(dir.path()); }, ErrorKind::kBadFile,
               {config, "not valid JSON"});
  write_bytes(config, kQwen3_06B);
  write_bytes(dir.file("generation_config.json"), "{\"eos_token_id\": \"x\"}");
  expect_error([&] { load_model_config(dir.path()); }, ErrorKind::kBadFile,
               {dir.file("generation_config.json"), "'eos_token_id'"});
}

}  // namespace
}  // namespace hardkv
