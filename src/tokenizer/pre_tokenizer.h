// tokenizer.json "pre_tokenizer": Split (regex or literal pattern, all five behaviours, invert),
// ByteLevel (optional GPT-2 regex and add_prefix_space) and Sequence; null (SentencePiece-style
// BPE) leaves each text segment whole. A ByteLevel step makes the model byte-level.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace hardkv {

// The regex of GPT-2's ByteLevel pre-tokenizer (use_regex = true).
inline constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // Throws Error(kBadFile) for malformed specs, Error(kUnsupported) for unknown types.
  static PreTokenizer from_json(const nlohmann::json& spec);

  // Splits one text segment (between added tokens, already normalised) into pre-tokens.
  void split(std::string_view text, std::vector<std::string>& pieces) const;
  // Whether a ByteLevel step maps text to GPT-2's byte alphabet before the model sees it.
  bool is_byte_level() const { return byte_level_; }

 private:
  struct Step {
    bool add_prefix_space = false;       // ByteLevel(add_prefix_space): prepend ' ' to each piece
    std::shared_ptr<const Regex> regex;  // null: no split in this step
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
  };
  void add_spec(const nlohmann::json& spec, bool& has_byte_level);
  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace hardkv
