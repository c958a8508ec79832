// Added tokens of tokenizer.json ("added_tokens"): found in the text before pre-tokenisation,
// leftmost match first and the longest on ties (HF's LeftmostLongest), honouring lstrip, rstrip
// and single_word. Tokens with normalized=false match the raw text, the others the normalised
// text.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hardkv {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // matches only when not inside a word
  bool normalized = false;   // matched against the normalised text
};

// A piece of the input: either an added token (id >= 0) or text to pre-tokenise ([begin, end)).
struct TextSegment {
  int32_t added_id;  // -1 for text
  size_t begin, end;
};

class AddedVocabulary {
 public:
  // Throws Error(kBadFile) when an entry lacks an integer id or a non-empty content.
  static AddedVocabulary from_json(const nlohmann::json& added_tokens);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_by_content(std::string_view content) const;
  const AddedToken* find_by_id(int32_t id) const;

  // Splits text[begin, end) into segments using the tokens with `normalized` == which; special
  // tokens are left as text when match_special is false.
  void split(std::string_view text, size_t begin, size_t end, bool normalized, bool match_special,
             std::vector<TextSegment>& out) const;

 private:
  // A byte trie over the contents of one group of tokens (raw or normalised).
  struct Trie {
    struct Node {
      std::unordered_map<uint8_t, int32_t> children;
      int32_t token_idx = -1;  // index into tokens_ of the token ending here
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void insert(std::string_view s, int32_t token_idx);
  };
  // Longest token matching at text[pos] within [pos, end): its index into tokens_, or -1.
  int32_t longest_at(const Trie& trie, std::string_view text, size_t pos, size_t end,
                     size_t& match_len) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::string, int32_t> by_content_;  // content -> index into tokens_
  std::unordered_map<int32_t, int32_t> by_id_;           // id -> index into tokens_
  Trie raw_trie_, normalized_trie_;
};

}  // namespace hardkv
