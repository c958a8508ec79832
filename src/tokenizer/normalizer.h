// tokenizer.json "normalizer": null, NFC, NFD, NFKC, NFKD, or a Sequence of these.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/utf8.h"

namespace hardkv {

class Normalizer {
 public:
  // Throws Error(kUnsupported) for normalizer types other than the Unicode normal forms.
  static Normalizer from_json(const nlohmann::json& spec);

  bool is_identity() const { return forms_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  std::vector<utf8::NormalForm> forms_;  // applied in order
};

}  // namespace hardkv
