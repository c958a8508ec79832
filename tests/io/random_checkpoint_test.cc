// make-model's library: presets match the published models' parameter counts, a tiny checkpoint
// loads completely through CheckpointReader + hf_weight_specs, is deterministic in the seed,
// shards when large, and ships a byte-level tokenizer.json with GPT-2's byte symbols.
#include "model/random_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io_test_util.h"
#include "model/weight_layout.h"

namespace hardkv {
namespace {

using test::read_bytes;
using test::TempDir;

int64_t num_params(const ModelConfig& c) {
  int64_t n = 0;
  for (const WeightSpec& s : hf_weight_specs(c)) n += shape_numel(s.shape);
  return n;
}

// Published sizes: Qwen3-0.6B "0.6B, 0.44B non-embedding"; Qwen3-8B "8.2B"; Llama-3.2-1B 1.24B.
TEST(RandomCheckpoint, PresetsMatchPublishedSizes) {
  const ModelConfig q06 = model_preset("qwen3-0.6b");
  EXPECT_NEAR(num_params(q06) / 1e9, 0.596, 0.005);
  EXPECT_NEAR((num_params(q06) - 151936 * 1024) / 1e9, 0.44, 0.005);
  EXPECT_NEAR(num_params(model_preset("qwen3-8b")) / 1e9, 8.19, 0.01);
  EXPECT_NEAR(num_params(model_preset("llama3.2-1b")) / 1e9, 1.236, 0.005);
  EXPECT_EQ(model_preset("llama3.2-1b").rope.scaling, RopeScaling::kLlama3);
  EXPECT_TRUE(model_preset("tiny").qk_norm);
  EXPECT_TRUE(model_preset("tiny-qwen2").qkv_bias);
  test::expect_error([] { model_preset("gpt-5"); }, ErrorKind::kInvalidArgument,
                     {"'gpt-5'", "tiny", "qwen3-8b"});
}

TEST(RandomCheckpoint, ConfigJsonRoundTripsForEveryPreset) {
  for (const std::string& name : model_preset_names()) {
    const ModelConfig c = model_preset(name);
    const ModelConfig back = parse_model_config(hf_config_json(c), name);
    EXPECT_EQ(back.architecture, c.architecture) << name;
    EXPECT_EQ(back.vocab_size, c.vocab_size) << name;
    EXPECT_EQ(back.hidden_size, c.hidden_size) << name;
    EXPECT_EQ(back.num_layers, c.num_layers) << name;
    EXPECT_EQ(back.num_heads, c.num_heads) << name;
    EXPECT_EQ(back.num_kv_heads, c.num_kv_heads) << name;
    EXPECT_EQ(back.head_dim, c.head_dim) << name;
    EXPECT_EQ(back.intermediate_size, c.intermediate_size) << name;
    EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings) << name;
    EXPECT_EQ(back.qkv_bias, c.qkv_bias) << name;
    EXPECT_EQ(back.qk_norm, c.qk_norm) << name;
    EXPECT_EQ(back.rope.scaling, c.rope.scaling) << name;
    EXPECT_DOUBLE_EQ(back.rope.theta, c.rope.theta) << name;
    EXPECT_DOUBLE_EQ(back.rope.factor, c.rope.factor) << name;
    EXPECT_DOUBLE_EQ(back.rms_norm_eps, c.rms_norm_eps) << name;
  }
}

// Loads every spec of `dir` with its shape and returns the values of `name` as floats.
std::vector<float> check_complete(const std::string& dir, const std::string& name) {
  const ModelConfig config = load_model_config(dir);
  const CheckpointReader reader = CheckpointReader::open(dir);
  const std::vector<WeightSpec> specs = hf_weight_specs(config);
  EXPECT_EQ(reader.names().size(), specs.size());
  std::vector<float> out;
  for (const WeightSpec& s : specs) {
    Tensor t = reader.get_checked(s.name, s.shape);
    std::vector<float> v(t.numel());
    convert_to_f32(t.data(), t.dtype(), v.data(), v.size());
    for (float x : v) EXPECT_TRUE(std::isfinite(x)) << s.name;
    if (s.name == name) out = v;
  }
  return out;
}

TEST(RandomCheckpoint, TinyIsCompleteAndHasTheRightStatistics) {
  TempDir dir;
  RandomCheckpointSummary sum = write_random_checkpoint(model_preset("tiny"), dir.path(), {});
  EXPECT_EQ(sum.num_shards, 1);
  EXPECT_EQ(sum.num_params, num_params(model_preset("tiny")));
  EXPECT_EQ(sum.data_bytes, static_cast<uint64_t>(sum.num_params) * 2);  // bf16
  const ModelConfig loaded = load_model_config(dir.path());
  EXPECT_EQ(loaded.dtype, DType::kBF16);
  EXPECT_EQ(loaded.eos_token_ids, std::vector<int32_t>({kByteTokenImEnd, kByteTokenEndOfText}));
  EXPECT_GE(loaded.vocab_size, kByteTokenizerSize);

  auto stats = [](const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) {
      s += x;
      s2 += double(x) * x;
    }
    const double mean = s / v.size();
    return std::pair<double, double>(mean, std::sqrt(s2 / v.size() - mean * mean));
  };
  const auto [m_mean, m_std] =
      stats(check_complete(dir.path(), "model.layers.1.mlp.down_proj.weight"));  // 8192 values
  EXPECT_NEAR(m_mean, 0.0, 0.001);
  EXPECT_NEAR(m_std, 0.02, 0.001);
  const auto [n_mean, n_std] = stats(check_complete(dir.path(), "model.norm.weight"));
  EXPECT_NEAR(n_mean, 1.0, 0.01);
  EXPECT_LT(n_std, 0.05);
}

TEST(RandomCheckpoint, DeterministicInTheSeed) {
  TempDir a, b, c;
  RandomCheckpointOptions opt;
  opt.seed = 7;
  opt.dtype = DType::kF32;
  write_random_checkpoint(model_preset("tiny-qwen2"), a.path(), opt);
  write_random_checkpoint(model_preset("tiny-qwen2"), b.path(), opt);
  opt.seed = 8;
  write_random_checkpoint(model_preset("tiny-qwen2"), c.path(), opt);
  const std::string fa = read_bytes(a.file("model.safetensors"));
  EXPECT_GT(fa.size(), 100000u);
  EXPECT_EQ(fa, read_bytes(b.file("model.safetensors")));
  EXPECT_NE(fa, read_bytes(c.file("model.safetensors")));
  EXPECT_EQ(read_bytes(a.file("config.json")), read_bytes(b.file("config.json")));
  // Different tensors get different values even with equal shapes.
  const CheckpointReader r = CheckpointReader::open(a.path());
  Tensor k = r.get("model.layers.0.self_attn.k_proj.weight");
  Tensor v = r.get("model.layers.0.self_attn.v_proj.weight");
  EXPECT_NE(std::memcmp(k.data(), v.data(), k.nbytes()), 0);
}

TEST(RandomCheckpoint, ShardsWhenLargeAndReplacesStaleFiles) {
  TempDir dir;
  // A single file first, then a sharded rewrite into the same directory.
  write_random_checkpoint(model_preset("tiny-llama"), dir.path(), {});
  RandomCheckpointOptions opt;
  opt.max_shard_bytes = 40000;
  RandomCheckpointSummary sum = write_random_checkpoint(model_preset("tiny-llama"), dir.path(), opt);
  EXPECT_GT(sum.num_shards, 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file("model.safetensors")));
  const std::string last = fmt::format("model-{:05d}-of-{:05d}.safetensors", sum.num_shards,
                                       sum.num_shards);
  EXPECT_TRUE(std::filesystem::exists(dir.file(last))) << last;
  nlohmann::json index = nlohmann::json::parse(read_bytes(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), sum.data_bytes);
  const CheckpointReader r = CheckpointReader::open(dir.path());
  for (const std::string& name : r.names()) {
    EXPECT_EQ(index["weight_map"][name].get<std::string>(),
              std::filesystem::path(r.file_of(name)).filename().string());
  }
  check_complete(dir.path(), "");
  // Same seed: sharding does not change the values.
  TempDir single;
  write_random_checkpoint(model_preset("tiny-llama"), single.path(), {});
  const CheckpointReader s = CheckpointReader::open(single.path());
  for (const std::string& name : s.names()) {
    Tensor x = s.get(name), y = r.get(name);
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.nbytes()), 0) << name;
  }
}

TEST(RandomCheckpoint, ByteLevelTokenizerFiles) {
  TempDir dir;
  write_byte_level_tokenizer(dir.path());
  nlohmann::json tok = nlohmann::json::parse(read_bytes(dir.file("tokenizer.json")));
  const nlohmann::json& vocab = tok["model"]["vocab"];
  EXPECT_EQ(tok["model"]["type"], "BPE");
  EXPECT_TRUE(tok["model"]["merges"].empty());
  ASSERT_EQ(vocab.size(), 256u);
  // GPT-2 byte symbols, well known: space -> U+0120 'Ġ', '\n' -> U+010A 'Ċ', byte 0 -> U+0100,
  // 'A' -> 'A', 0xAD (the 68th unprintable byte) -> U+0143.
  EXPECT_EQ(vocab["\xC4\xA0"], 32);
  EXPECT_EQ(vocab["\xC4\x8A"], 10);
  EXPECT_EQ(vocab["\xC4\x80"], 0);
  EXPECT_EQ(vocab["A"], 65);
  EXPECT_EQ(vocab["\xC5\x83"], 173);
  std::set<int> ids;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) ids.insert(it->get<int>());
  EXPECT_EQ(ids.size(), 256u);
  EXPECT_EQ(*ids.rbegin(), 255);
  const nlohmann::json& added = tok["added_tokens"];
  ASSERT_EQ(added.size(), 5u);
  EXPECT_EQ(added[0]["content"], "<|endoftext|>");
  EXPECT_EQ(added[0]["id"], 256);
  EXPECT_EQ(added[2]["content"], "<|im_end|>");
  EXPECT_EQ(added[2]["id"], kByteTokenImEnd);
  EXPECT_EQ(added[3]["content"], "<think>");
  EXPECT_TRUE(tok["normalizer"].is_null());
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][0]["type"], "Split");
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][0]["behavior"], "Isolated");
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][1]["type"], "ByteLevel");
  EXPECT_EQ(tok["pre_tokenizer"]["pretokenizers"][1]["use_regex"], false);
  EXPECT_EQ(tok["decoder"]["type"], "ByteLevel");
  nlohmann::json cfg = nlohmann::json::parse(read_bytes(dir.file("tokenizer_config.json")));
  EXPECT_EQ(cfg["eos_token"], "<|im_end|>");
  EXPECT_NE(cfg["chat_template"].get<std::string>().find("<|im_start|>"), std::string::npos);
}

TEST(RandomCheckpoint, RejectsBadOptions) {
  TempDir dir;
  RandomCheckpointOptions opt;
  opt.dtype = DType::kI32;
  test::expect_error([&] { write_random_checkpoint(model_preset("tiny"), dir.path(), opt); },
                     ErrorKind::kInvalidArgument, {"I32"});
  ModelConfig small = model_preset("tiny");
  small.vocab_size = 100;
  test::expect_error([&] { write_random_checkpoint(small, dir.path(), {}); },
                     ErrorKind::kInvalidArgument, {"vocab_size 100"});
}

}  // namespace
}  // namespace hardkv
