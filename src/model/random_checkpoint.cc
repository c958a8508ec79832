// make-model's library half: presets, HF config/tokenizer files and streamed random weights.
#include "model/random_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors_writer.h"
#include "model/weight_layout.h"

namespace hardkv {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

constexpr double kWeightSigma = 0.02;  // keeps activations O(1) through every layer
constexpr size_t kChunkElems = size_t{1} << 16;  // values per independent PRNG stream
constexpr size_t kChunksPerBatch = 64;           // chunks generated in parallel, then written

// ---- deterministic values: core/rng.h streams, Box-Muller -------------------------

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Fills out[0..n) with mean + sigma * N(0, 1) from the stream (tensor_seed, chunk_idx).
void fill_normal_chunk(uint64_t tensor_seed, uint64_t chunk_idx, double mean, double sigma,
                       float* out, size_t n) {
  uint64_t s = tensor_seed ^ (chunk_idx * 0xd1b54a32d192ed03ull);
  Rng rng(splitmix64(s));
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (size_t i = 0; i < n; i += 2) {
    const double u1 = (static_cast<double>(rng.next_u64() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng.next_u64() >> 11) * 0x1.0p-53;          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(mean + sigma * r * std::cos(kTwoPi * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(mean + sigma * r * std::sin(kTwoPi * u2));
  }
}

// Streams one tensor's random values, converted to the file dtype, into `writer`.
void write_random_tensor(SafetensorsWriter& writer, const TensorInfo& info, uint64_t seed,
                         WeightKind kind) {
  const uint64_t tensor_seed = [&] {
    uint64_t s = seed ^ fnv1a64(info.name);
    return splitmix64(s);
  }();
  const double mean = kind == WeightKind::kNorm ? 1.0 : 0.0;
  const size_t numel = static_cast<size_t>(shape_numel(info.shape));
  const size_t esize = dtype_size(info.dtype);
  const size_t num_chunks = (numel + kChunkElems - 1) / kChunkElems;
  std::vector<float> values(std::min(numel, kChunkElems * kChunksPerBatch));
  std::vector<unsigned char> bytes(values.size() * esize);
  for (size_t first = 0; first < num_chunks; first += kChunksPerBatch) {
    const size_t count = std::min(kChunksPerBatch, num_chunks - first);
    const size_t batch_begin = first * kChunkElems;
    const size_t batch_elems = std::min(numel, (first + count) * kChunkElems) - batch_begin;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < count; ++c) {
      const size_t begin = (first + c) * kChunkElems;
      const size_t n = std::min(kChunkElems, numel - begin);
      fill_normal_chunk(tensor_seed, first + c, mean, kWeightSigma, values.data() + c * kChunkElems,
                        n);
      convert_from_f32(values.data() + c * kChunkElems, bytes.data() + c * kChunkElems * esize,
                       info.dtype, n);
    }
    writer.append(bytes.data(), batch_elems * esize);
  }
}

// ---- presets ----------------------------------------------------------------------------------

ModelConfig base_config(const char* arch, ModelFamily family) {
  ModelConfig c;
  c.architecture = arch;
  c.family = family;
  c.qk_norm = family == ModelFamily::kQwen3;
  c.qkv_bias = family == ModelFamily::kQwen2;
  c.dtype = DType::kBF16;
  c.bos_token_id = kByteTokenEndOfText;
  c.eos_token_ids = {kByteTokenImEnd, kByteTokenEndOfText};
  return c;
}

void set_dims(ModelConfig& c, int64_t vocab, int64_t hidden, int64_t layers, int64_t heads,
              int64_t kv_heads, int64_t head_dim, int64_t inter, int64_t max_pos) {
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.intermediate_size = inter;
  c.max_position_embeddings = max_pos;
}

void set_llama3_rope(ModelConfig& c, double theta, double factor, int64_t original_max) {
  c.rope.theta = theta;
  c.rope.scaling = RopeScaling::kLlama3;
  c.rope.factor = factor;
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 4.0;
  c.rope.original_max_position_embeddings = original_max;
}

// ---- tokenizer files --------------------------------------------------------------------------

std::string utf8_encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    s += static_cast<char>(0xe0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// GPT-2's byte-to-unicode table: printable bytes stand for themselves, the other 68 bytes map to
// U+0100 upwards in byte order.
std::vector<std::string> byte_level_symbols() {
  std::vector<std::string> symbols(256);
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    symbols[b] = utf8_encode(printable ? b : next++);
  }
  return symbols;
}

struct AddedToken {
  int32_t id;
  const char* content;
  bool special;
};
// As in Qwen3: <think> and </think> are added tokens that are not special (decoded as text).
constexpr AddedToken kAddedTokens[] = {
    {kByteTokenEndOfText, "<|endoftext|>", true}, {kByteTokenImStart, "<|im_start|>", true},
    {kByteTokenImEnd, "<|im_end|>", true},        {kByteTokenThink, "<think>", false},
    {kByteTokenEndThink, "</think>", false},
};

// The Qwen2 / Qwen3 pre-tokenizer regex.
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A compact ChatML template with Qwen3's thinking switch (not Qwen3's full tool-calling template).
constexpr const char* kChatTemplate =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}";

void write_json_file(const std::string& path, const ordered_json& doc) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  HARDKV_CHECK(out.good(), kRuntime, "{}: cannot create", path);
  out << doc.dump(2) << "\n";
  out.close();
  HARDKV_CHECK(out.good(), kRuntime, "{}: write failed", path);
}

const char* torch_dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    default: HARDKV_THROW(kInvalidArgument, "checkpoint dtype must be F32, F16 or BF16, not {}",
                          dtype_name(d));
  }
}

// Removes model.safetensors, its index and model-*-of-*.safetensors shards left in `dir`.
void remove_stale_weights(const std::string& dir) {
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool shard = name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
                       name.size() > 12 && name.substr(name.size() - 12) == ".safetensors";
    if (name == "model.safetensors" || name == "model.safetensors.index.json" || shard) {
      fs::remove(e.path());
    }
  }
}

}  // namespace

std::vector<std::string> model_preset_names() {
  return {"tiny", "tiny-llama", "tiny-qwen2", "qwen3-0.6b", "qwen3-8b", "llama3.2-1b"};
}

ModelConfig model_preset(const std::string& name) {
  if (name == "tiny") {  // Qwen3 features: q/k norm, GQA 2:1, head_dim != hidden/heads, tied
    ModelConfig c = base_config("Qwen3ForCausalLM", ModelFamily::kQwen3);
    set_dims(c, 320, 64, 2, 4, 2, 32, 128, 4096);
    c.tie_word_embeddings = true;
    c.rope.theta = 1e6;
    return c;
  }
  if (name == "tiny-llama") {  // Llama 3 features: llama3 rope scaling, GQA 4:1, untied
    ModelConfig c = base_config("LlamaForCausalLM", ModelFamily::kLlama);
    set_dims(c, 320, 64, 2, 4, 1, 16, 160, 4096);
    c.rms_norm_eps = 1e-5;
    set_llama3_rope(c, 500000.0, 8.0, 256);
    return c;
  }
  if (name == "tiny-qwen2") {  // Qwen2 features: qkv bias, GQA 2:1, untied
    ModelConfig c = base_config("Qwen2ForCausalLM", ModelFamily::kQwen2);
    set_dims(c, 320, 64, 2, 4, 2, 16, 128, 4096);
    c.rope.theta = 1e6;
    return c;
  }
  if (name == "qwen3-0.6b") {  // Qwen/Qwen3-0.6B
    ModelConfig c = base_config("Qwen3ForCausalLM", ModelFamily::kQwen3);
    set_dims(c, 151936, 1024, 28, 16, 8, 128, 3072, 40960);
    c.tie_word_embeddings = true;
    c.rope.theta = 1e6;
    return c;
  }
  if (name == "qwen3-8b") {  // Qwen/Qwen3-8B
    ModelConfig c = base_config("Qwen3ForCausalLM", ModelFamily::kQwen3);
    set_dims(c, 151936, 4096, 36, 32, 8, 128, 12288, 40960);
    c.rope.theta = 1e6;
    return c;
  }
  if (name == "llama3.2-1b") {  // meta-llama/Llama-3.2-1B
    ModelConfig c = base_config("LlamaForCausalLM", ModelFamily::kLlama);
    set_dims(c, 128256, 2048, 16, 32, 8, 64, 8192, 131072);
    c.tie_word_embeddings = true;
    c.rms_norm_eps = 1e-5;
    set_llama3_rope(c, 500000.0, 32.0, 8192);
    return c;
  }
  std::string known;
  for (const std::string& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
  HARDKV_THROW(kInvalidArgument, "unknown model preset '{}' (known: {})", name, known);
}

json hf_config_json(const ModelConfig& c) {
  ordered_json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = model_family_name(c.family);
  switch (c.family) {
    case ModelFamily::kQwen2:
      HARDKV_CHECK(c.qkv_bias && !c.o_bias && !c.mlp_bias && !c.qk_norm, kInvalidArgument,
                   "Qwen2 has q/k/v biases only and no q/k norm");
      break;
    case ModelFamily::kQwen3:
      HARDKV_CHECK(c.qk_norm && c.qkv_bias == c.o_bias && !c.mlp_bias, kInvalidArgument,
                   "Qwen3 has q/k norm, one attention_bias flag for q/k/v/o and no MLP bias");
      j["attention_bias"] = c.o_bias;
      break;
    case ModelFamily::kLlama:
      HARDKV_CHECK(!c.qk_norm && c.qkv_bias == c.o_bias, kInvalidArgument,
                   "Llama has one attention_bias flag for q/k/v/o and no q/k norm");
      j["attention_bias"] = c.o_bias;
      j["mlp_bias"] = c.mlp_bias;
      break;
  }
  j["attention_dropout"] = 0.0;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids[0];
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = kWeightSigma;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  if (c.family != ModelFamily::kLlama) {
    j["max_window_layers"] = c.num_layers;
    j["sliding_window"] = nullptr;
    j["use_sliding_window"] = false;
  }
  j["num_attention_heads"] = c.num_heads;
  j["num_hidden_layers"] = c.num_layers;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["rms_norm_eps"] = c.rms_norm_eps;
  switch (c.rope.scaling) {
    case RopeScaling::kNone:
      j["rope_scaling"] = nullptr;
      break;
    case RopeScaling::kLinear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope.factor}};
      break;
    case RopeScaling::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", c.rope.factor},
                           {"low_freq_factor", c.rope.low_freq_factor},
                           {"high_freq_factor", c.rope.high_freq_factor},
                           {"original_max_position_embeddings",
                            c.rope.original_max_position_embeddings}};
      break;
  }
  j["rope_theta"] = c.rope.theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = torch_dtype_name(c.dtype);
  j["use_cache"] = true;
  j["vocab_size"] = c.vocab_size;
  return json::parse(j.dump());
}

void write_byte_level_tokenizer(const std::string& out_dir) {
  const std::vector<std::string> symbols = byte_level_symbols();
  ordered_json vocab = ordered_json::object();
  for (int b = 0; b < 256; ++b) vocab[symbols[b]] = b;
  ordered_json added = ordered_json::array();
  ordered_json added_decoder = ordered_json::object();
  for (const AddedToken& t : kAddedTokens) {
    ordered_json entry = {{"id", t.id},          {"content", t.content}, {"single_word", false},
                          {"lstrip", false},     {"rstrip", false},      {"normalized", false},
                          {"special", t.special}};
    added.push_back(entry);
    entry.erase("id");
    added_decoder[std::to_string(t.id)] = entry;
  }
  ordered_json tok;
  tok["version"] = "1.0";
  tok["truncation"] = nullptr;
  tok["padding"] = nullptr;
  tok["added_tokens"] = added;
  tok["normalizer"] = nullptr;
  tok["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern", {{"Regex", kQwen2Pattern}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"},
         {"add_prefix_space", false},
         {"trim_offsets", false},
         {"use_regex", false}}}}};
  tok["post_processor"] = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", false},
                           {"use_regex", false}};
  tok["decoder"] = {{"type", "ByteLevel"},
                    {"add_prefix_space", false},
                    {"trim_offsets", false},
                    {"use_regex", false}};
  tok["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", ordered_json::array()}};
  write_json_file((fs::path(out_dir) / "tokenizer.json").string(), tok);

  ordered_json cfg;
  cfg["add_bos_token"] = false;
  cfg["add_prefix_space"] = false;
  cfg["added_tokens_decoder"] = added_decoder;
  cfg["additional_special_tokens"] = {"<|im_start|>", "<|im_end|>"};
  cfg["bos_token"] = nullptr;
  cfg["chat_template"] = kChatTemplate;
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["eos_token"] = "<|im_end|>";
  cfg["errors"] = "replace";
  cfg["model_max_length"] = 131072;
  cfg["pad_token"] = "<|endoftext|>";
  cfg["split_special_tokens"] = false;
  cfg["tokenizer_class"] = "Qwen2Tokenizer";
  cfg["unk_token"] = nullptr;
  write_json_file((fs::path(out_dir) / "tokenizer_config.json").string(), cfg);
}

RandomCheckpointSummary write_random_checkpoint(const ModelConfig& config_in,
                                                const std::string& out_dir,
                                                const RandomCheckpointOptions& options) {
  ModelConfig config = config_in;
  config.dtype = options.dtype;
  HARDKV_CHECK(config.vocab_size >= kByteTokenizerSize, kInvalidArgument,
               "vocab_size {} is smaller than the {} tokens of the byte-level tokenizer",
               config.vocab_size, kByteTokenizerSize);
  const json config_doc = hf_config_json(config);  // validates dtype and family flags
  // The config must survive its own parser, so a checkpoint never fails to load for its config.
  parse_model_config(config_doc, "generated config.json");
  HARDKV_CHECK(options.max_shard_bytes > 0, kInvalidArgument, "max_shard_bytes must be positive");

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  HARDKV_CHECK(fs::is_directory(out_dir), kRuntime, "{}: cannot create directory ({})", out_dir,
               ec.message());
  remove_stale_weights(out_dir);
  write_json_file((fs::path(out_dir) / "config.json").string(), ordered_json(config_doc));
  ordered_json gen;
  if (config.bos_token_id >= 0) gen["bos_token_id"] = config.bos_token_id;
  gen["eos_token_id"] = config.eos_token_ids;
  gen["do_sample"] = false;
  write_json_file((fs::path(out_dir) / "generation_config.json").string(), gen);
  write_byte_level_tokenizer(out_dir);

  // Pack tensors, in spec order, into shards of at most max_shard_bytes.
  const std::vector<WeightSpec> specs = hf_weight_specs(config);
  std::vector<std::vector<size_t>> shards(1);  // spec indices per shard
  std::vector<uint64_t> shard_bytes(1, 0);
  RandomCheckpointSummary summary;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t bytes = static_cast<uint64_t>(shape_numel(specs[i].shape)) *
                           dtype_size(config.dtype);
    if (!shards.back().empty() && shard_bytes.back() + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes.push_back(0);
    }
    shards.back().push_back(i);
    shard_bytes.back() += bytes;
    summary.num_params += shape_numel(specs[i].shape);
    summary.data_bytes += bytes;
  }
  summary.num_shards = static_cast<int>(shards.size());

  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  ordered_json weight_map = ordered_json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file_name =
        shards.size() == 1 ? std::string("model.safetensors")
                           : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1,
                                         shards.size());
    std::vector<TensorInfo> layout;
    for (size_t i : shards[s]) {
      TensorInfo info;
      info.name = specs[i].name;
      info.dtype = config.dtype;
      info.shape = specs[i].shape;
      layout.push_back(std::move(info));
      weight_map[specs[i].name] = file_name;
    }
    SafetensorsWriter writer((fs::path(out_dir) / file_name).string(), layout, metadata);
    for (size_t k = 0; k < shards[s].size(); ++k) {
      write_random_tensor(writer, writer.tensors()[k], options.seed, specs[shards[s][k]].kind);
    }
    writer.finish();
  }
  if (shards.size() > 1) {
    ordered_json index;
    index["metadata"] = {{"total_size", summary.data_bytes}};
    index["weight_map"] = weight_map;
    write_json_file((fs::path(out_dir) / "model.safetensors.index.json").string(), index);
  }
  return summary;
}

}  // namespace hardkv
