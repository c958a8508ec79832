// Tokenizer: HuggingFace tokenizer.json BPE — byte-level (Qwen2/Qwen3, Llama-3, GPT-2 style
// pre-tokenizers) and SentencePiece-style with byte fallback (Llama-2, TinyLlama) — with
// added/special tokens, encode, decode and an incremental detokenizer for streaming.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hardkv {

class TokenizerImpl;

class Tokenizer {
 public:
  // Loads tokenizer.json; throws Error(kBadFile) naming the file and what is wrong.
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  // Loads <dir>/tokenizer.json, and <dir>/tokenizer_config.json when present (bos/eos tokens,
  // add_bos_token, chat template; else the template from <dir>/chat_template.jinja).
  static Tokenizer from_dir(const std::string& model_dir);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Special/added tokens written in the text (e.g. "<|im_start|>") become their ids.
  // add_special_tokens adds what the post-processor's TemplateProcessing adds (BOS for Llama-3);
  // without one, BOS when tokenizer_config.json asks for it (add_bos_token, or a bos_token with
  // add_bos_token absent, the Llama convention). Qwen adds nothing. Encode and decode are const
  // and safe to call from several threads. parse_special_tokens = false encodes special tokens
  // written in the text as plain text (HF's split_special_tokens; non-special added tokens such
  // as <think> still match), for untrusted input.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false,
                              bool parse_special_tokens = true) const;
  // Ill-formed UTF-8 in the decoded bytes becomes U+FFFD (HF's errors="replace"). No
  // clean_up_tokenization_spaces: decode(encode(text)) == text for normalised text.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // highest id + 1, added tokens included
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // raw vocabulary string; "" when unknown
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_id() const;  // from tokenizer_config.json when present
  std::optional<int32_t> eos_id() const;  // from tokenizer_config.json when present
  // The chat template string from tokenizer_config.json ("" when none).
  const std::string& chat_template() const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
  friend class IncrementalDetokenizer;
};

// Turns a stream of ids into text pieces; never emits an incomplete UTF-8 sequence (bytes are
// held back until the character completes).
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  // Returns the text that became complete with this token (may be empty).
  std::string push(int32_t id);
  // Returns whatever is held back (invalid bytes become U+FFFD).
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;   // bytes of an incomplete UTF-8 character
  int strip_budget_ = 0;  // leading characters the decoder still strips (SentencePiece style)
  bool first_ = true;     // no token decoded yet
};

}  // namespace hardkv
