// Internal state of a loaded Tokenizer (shared by tokenizer.cc, tokenizer_json.cc and
// incremental_detokenizer.cc). Immutable after loading, apart from the BPE cache (locked).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace hardkv {

// What tokenizer_config.json (optional) adds to tokenizer.json.
struct TokenizerConfig {
  std::string path;  // for messages
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::string chat_template;
};

// tokenizer.json "decoder", reduced to what decoding one token at a time needs.
struct DecoderSpec {
  bool byte_level = true;  // GPT-2 byte alphabet back to bytes (ByteLevel)
  // Otherwise (SentencePiece style): literal replacements in each token (Replace, e.g. "▁" -> " "),
  // <0xXX> tokens as bytes (ByteFallback), then up to strip_start leading strip_char removed from
  // the start of the decoded text (Strip).
  std::vector<std::pair<std::string, std::string>> replacements;
  bool byte_fallback = false;
  int strip_start = 0;
  char strip_char = ' ';
  // Metaspace: the first decoded token loses every replacement character instead.
  std::string first_token_drops;
};

class TokenizerImpl {
 public:
  TokenizerImpl(std::string path, Normalizer normalizer, PreTokenizer pre_tokenizer, BpeModel model,
                AddedVocabulary added)
      : path_(std::move(path)),
        normalizer_(std::move(normalizer)),
        pre_tokenizer_(std::move(pre_tokenizer)),
        model_(std::move(model)),
        added_(std::move(added)) {}

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens,
                              bool parse_special_tokens) const;
  // Appends the bytes that `id` decodes to (nothing for unknown ids, or skipped special tokens).
  // `first`: no token was decoded before this one (Metaspace drops the first token's "▁"s);
  // cleared once a token is decoded.
  void append_token_bytes(int32_t id, bool skip_special, bool& first, std::string& out) const;
  // Removes the decoder's leading strip characters from decoded bytes that start the output;
  // returns how many of the strip_start budget remain (bytes may not have reached it yet).
  int strip_leading(std::string& bytes, int budget) const;
  // Builds the id tables; called once after the post-processor and decoder are set.
  void finish_loading();
  // Applies tokenizer_config.json (bos/eos tokens, add_bos_token, chat template).
  void apply_config(const TokenizerConfig& config);

  std::string path_;  // tokenizer.json, for messages
  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  BpeModel model_;
  AddedVocabulary added_;
  // Post-processor: ids around the sequence when add_special_tokens (TemplateProcessing "single").
  bool has_template_ = false;
  std::vector<int32_t> prefix_ids_, suffix_ids_;
  DecoderSpec decoder_;

  int32_t vocab_size_ = 0;
  std::vector<std::string> id_bytes_;  // [vocab_size_] decoded bytes of each id
  std::vector<uint8_t> special_;       // [vocab_size_] 1 for special added tokens
  std::optional<int32_t> bos_id_, eos_id_;
  std::string chat_template_;
};

}  // namespace hardkv
