// Random-weight HuggingFace checkpoints for tests and benchmarks (`hardkv make-model`): named
// presets with real shapes, config.json / generation_config.json, streamed (and, when large,
// sharded) safetensors, and a byte-level BPE tokenizer.json with Qwen-style special tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "model/model_config.h"

namespace hardkv {

// Token ids of the byte-level tokenizer written by make-model: ids 0..255 are the bytes (GPT-2
// byte-to-unicode symbols, id = byte value), then these added tokens.
constexpr int32_t kByteTokenEndOfText = 256;  // <|endoftext|>
constexpr int32_t kByteTokenImStart = 257;    // <|im_start|>
constexpr int32_t kByteTokenImEnd = 258;      // <|im_end|>
constexpr int32_t kByteTokenThink = 259;      // <think>
constexpr int32_t kByteTokenEndThink = 260;   // </think>
constexpr int32_t kByteTokenizerSize = 261;

struct RandomCheckpointOptions {
  uint64_t seed = 0;
  DType dtype = DType::kBF16;  // F32, F16 or BF16
  // A checkpoint whose tensor data exceeds this is written as shards of at most this size
  // (a single tensor larger than it gets a shard of its own).
  uint64_t max_shard_bytes = 2ull << 30;
};

struct RandomCheckpointSummary {
  int64_t num_params = 0;
  uint64_t data_bytes = 0;  // tensor bytes over all files
  int num_shards = 0;       // 1: model.safetensors; >1: model-0000k-of-0000n.safetensors + index
};

std::vector<std::string> model_preset_names();
// The config of a named preset; kInvalidArgument naming the known presets otherwise.
ModelConfig model_preset(const std::string& name);

// config.json content (HF field names) for `config`; kInvalidArgument when a feature combination
// cannot be expressed for its family (e.g. an o_proj bias on Qwen2).
nlohmann::json hf_config_json(const ModelConfig& config);

// Writes config.json, generation_config.json, tokenizer.json, tokenizer_config.json and the
// weights (N(0, 0.02) matrices, embeddings and biases; norms 1 + N(0, 0.02)) to `out_dir`,
// created if needed; stale model*.safetensors files there are removed first. Deterministic in
// options.seed: each tensor's values depend only on the seed, its name and its shape. Streams
// tensor by tensor in bounded memory. config.vocab_size must be >= kByteTokenizerSize.
RandomCheckpointSummary write_random_checkpoint(const ModelConfig& config,
                                                const std::string& out_dir,
                                                const RandomCheckpointOptions& options);

// tokenizer.json + tokenizer_config.json of the byte-level tokenizer described above.
void write_byte_level_tokenizer(const std::string& out_dir);

}  // namespace hardkv
