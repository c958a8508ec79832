// tokenizer.json "normalizer": null, NFC, NFD, NFKC, NFKD, Prepend and Replace (with a literal
// pattern; SentencePiece-style tokenizers such as Llama-2/TinyLlama use these two), or a
// Sequence of them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/utf8.h"

namespace hardkv {

class Normalizer {
 public:
  // Throws Error(kBadFile) for malformed specs, Error(kUnsupported) for other normalizer types.
  static Normalizer from_json(const nlohmann::json& spec);

  bool is_identity() const { return steps_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  struct Step {
    enum class Kind { kNormalForm, kPrepend, kReplace } kind;
    utf8::NormalForm form = utf8::NormalForm::kNFC;  // kNormalForm
    std::string pattern;                             // kReplace: literal to replace (non-empty)
    std::string content;                             // kPrepend: prefix; kReplace: replacement
  };
  void add_spec(const nlohmann::json& spec);
  std::vector<Step> steps_;  // applied in order
};

}  // namespace hardkv
