// Added-token parsing and matching.
#include "tokenizer/added_vocabulary.h"

#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace hardkv {
namespace {

bool get_flag(const nlohmann::json& entry, const char* key, bool fallback) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  HARDKV_CHECK(entry[key].is_boolean(), kBadFile, "added_tokens field \"{}\" must be a boolean",
               key);
  return entry[key].get<bool>();
}

// The character ending just before `pos` (pos > 0).
char32_t char_before(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80 && pos - start < 4) {
    --start;
  }
  char32_t cp = 0;
  const int len = utf8::decode_char(text, start, cp);
  return start + len == pos ? cp : 0xFFFD;
}

// HF's single_word test: a letter, a number (Unicode categories L*, N*) or '_'.
bool is_word_char(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view s, int32_t token_idx) {
  int32_t node = 0;
  for (char c : s) {
    const uint8_t b = static_cast<uint8_t>(c);
    const auto it = nodes[node].children.find(b);
    if (it == nodes[node].children.end()) {
      nodes.push_back(Node{});
      const int32_t child = static_cast<int32_t>(nodes.size()) - 1;
      nodes[node].children[b] = child;
      node = child;
    } else {
      node = it->second;
    }
  }
  if (nodes[node].token_idx < 0) nodes[node].token_idx = token_idx;  // first entry wins
  first_byte[static_cast<uint8_t>(s[0])] = true;
}

AddedVocabulary AddedVocabulary::from_json(const nlohmann::json& added_tokens) {
  AddedVocabulary v;
  if (added_tokens.is_null()) return v;
  HARDKV_CHECK(added_tokens.is_array(), kBadFile, "\"added_tokens\" must be an array");
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    const auto& entry = added_tokens[i];
    HARDKV_CHECK(entry.is_object() && entry.contains("id") && entry["id"].is_number_integer(),
                 kBadFile, "added_tokens[{}] has no integer \"id\"", i);
    HARDKV_CHECK(entry.contains("content") && entry["content"].is_string() &&
                     !entry["content"].get<std::string>().empty(),
                 kBadFile, "added_tokens[{}] has no non-empty \"content\"", i);
    AddedToken t;
    const int64_t id = entry["id"].get<int64_t>();
    HARDKV_CHECK(id >= 0 && id < (int64_t{1} << 30), kBadFile,
                 "added_tokens[{}] has id {} out of range", i, id);
    t.id = static_cast<int32_t>(id);
    t.content = entry["content"].get<std::string>();
    t.special = get_flag(entry, "special", false);
    t.lstrip = get_flag(entry, "lstrip", false);
    t.rstrip = get_flag(entry, "rstrip", false);
    t.single_word = get_flag(entry, "single_word", false);
    // HF's default: special tokens match the raw text, other added tokens the normalised text.
    t.normalized = get_flag(entry, "normalized", !t.special);
    const int32_t idx = static_cast<int32_t>(v.tokens_.size());
    v.by_content_.try_emplace(t.content, idx);
    v.by_id_.try_emplace(t.id, idx);
    (t.normalized ? v.normalized_trie_ : v.raw_trie_).insert(t.content, idx);
    v.tokens_.push_back(std::move(t));
  }
  return v;
}

const AddedToken* AddedVocabulary::find_by_content(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::longest_at(const Trie& trie, std::string_view text, size_t pos, size_t end,
                                    size_t& match_len) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < end; ++i) {
    const auto it = trie.nodes[node].children.find(static_cast<uint8_t>(text[i]));
    if (it == trie.nodes[node].children.end()) break;
    node = it->second;
    if (trie.nodes[node].token_idx >= 0) {
      best = trie.nodes[node].token_idx;
      match_len = i + 1 - pos;
    }
  }
  return best;
}

void AddedVocabulary::split(std::string_view text, size_t begin, size_t end, bool normalized,
                            bool match_special, std::vector<TextSegment>& out) const {
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  size_t text_start = begin;  // start of the pending text segment
  size_t pos = begin;
  while (pos < end) {
    if (!trie.first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t idx = longest_at(trie, text, pos, end, len);
    if (idx < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[idx];
    if (token.special && !match_special) {
      ++pos;
      continue;
    }
    size_t match_begin = pos;
    size_t match_end = pos + len;
    if (token.single_word) {
      char32_t after = 0;
      const bool word_before = match_begin > begin && is_word_char(char_before(text, match_begin));
      const bool word_after =
          match_end < end && (utf8::decode_char(text, match_end, after), is_word_char(after));
      if (word_before || word_after) {
        ++pos;
        continue;
      }
    }
    if (token.lstrip) {
      while (match_begin > text_start) {
        const char32_t cp = char_before(text, match_begin);
        if (!utf8::is_whitespace(cp)) break;
        std::string tmp;
        utf8::append_char(cp, tmp);
        match_begin -= tmp.size();
      }
    }
    if (token.rstrip) {
      while (match_end < end) {
        char32_t cp = 0;
        const int n = utf8::decode_char(text, match_end, cp);
        if (!utf8::is_whitespace(cp)) break;
        match_end += n;
      }
    }
    if (match_begin > text_start) out.push_back({-1, text_start, match_begin});
    out.push_back({token.id, match_begin, match_end});
    pos = text_start = match_end;
  }
  if (end > text_start) out.push_back({-1, text_start, end});
}

}  // namespace hardkv
