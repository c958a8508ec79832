// BPE model of tokenizer.json ("model": {"type": "BPE", vocab, merges, ...}): the merge loop over
// one pre-token, with pair->rank lookup in a hash map and a per-pre-token result cache. Symbols
// start as GPT-2 byte-level characters (byte-level tokenizers) or as the text's characters with
// <0xXX> byte fallback (SentencePiece-style tokenizers: Llama-2, TinyLlama).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hardkv {

class BpeModel {
 public:
  // Throws Error(kBadFile) for a missing/ill-typed vocab or merges, a merge naming a token that is
  // not in the vocab, or a merge whose result is not in the vocab; Error(kUnsupported) for BPE
  // options hardkv lacks (dropout, word prefixes/suffixes). byte_level: the pre-tokenizer has a
  // ByteLevel step.
  static BpeModel from_json(const nlohmann::json& model, bool byte_level);
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  // Appends the ids of one pre-token given as raw bytes (mapped to the byte-level alphabet here
  // for byte-level tokenizers).
  void encode_piece(std::string_view piece_bytes, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::vector<std::string>& id_to_token() const { return id_to_token_; }  // "" for holes
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  BpeModel() = default;
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void merge_symbols(std::vector<int32_t>& symbols) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<std::string> id_to_token_;        // [max_id + 1]
  std::unordered_map<uint64_t, Merge> merges_;  // (left_id, right_id) -> rank, result
  void initial_symbols(std::string_view piece, std::vector<int32_t>& symbols) const;

  bool byte_level_ = true;
  std::array<int32_t, 256> byte_id_;      // byte-level: id of each byte's character; -1 if absent
  std::array<int32_t, 256> fallback_id_;  // byte_fallback: id of "<0xXX>"; -1 if absent/disabled
  std::optional<int32_t> unk_id_;         // for characters missing from the vocab (else dropped)
  bool fuse_unk_ = false;                 // consecutive unknowns become one unk
  bool ignore_merges_ = false;  // a pre-token that is itself in the vocab is emitted directly

  // Pre-token bytes -> ids. Bounded; cleared when full.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace hardkv
