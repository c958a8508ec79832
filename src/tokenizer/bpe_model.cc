// BPE vocabulary/merges loading and the merge loop (lowest rank first, leftmost on ties, as HF).
#include "tokenizer/bpe_model.h"

#include <queue>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace hardkv {
namespace {

constexpr size_t kMaxCacheEntries = 1 << 16;
constexpr size_t kMaxCachedPieceBytes = 256;

// The two tokens of a merge; views into `entry`.
std::pair<std::string_view, std::string_view> parse_merge(const nlohmann::json& entry,
                                                          size_t index) {
  if (entry.is_string()) {  // "a b"
    const std::string_view s = entry.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    HARDKV_CHECK(space != std::string::npos && space > 0 && space + 1 < s.size() &&
                     s.find(' ', space + 1) == std::string::npos,
                 kBadFile, "model.merges[{}] \"{}\" is not two tokens separated by one space",
                 index, s);
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
    return {entry[0].get_ref<const std::string&>(), entry[1].get_ref<const std::string&>()};
  }
  HARDKV_THROW(kBadFile, "model.merges[{}] must be a string \"a b\" or a pair [\"a\", \"b\"]",
               index);
}

}  // namespace

BpeModel::BpeModel(BpeModel&& other) noexcept
    : vocab_(std::move(other.vocab_)),
      id_to_token_(std::move(other.id_to_token_)),
      merges_(std::move(other.merges_)),
      byte_level_(other.byte_level_),
      byte_id_(other.byte_id_),
      fallback_id_(other.fallback_id_),
      unk_id_(other.unk_id_),
      fuse_unk_(other.fuse_unk_),
      ignore_merges_(other.ignore_merges_) {}

BpeModel& BpeModel::operator=(BpeModel&& other) noexcept {
  vocab_ = std::move(other.vocab_);
  id_to_token_ = std::move(other.id_to_token_);
  merges_ = std::move(other.merges_);
  byte_level_ = other.byte_level_;
  byte_id_ = other.byte_id_;
  fallback_id_ = other.fallback_id_;
  unk_id_ = other.unk_id_;
  fuse_unk_ = other.fuse_unk_;
  ignore_merges_ = other.ignore_merges_;
  cache_.clear();
  return *this;
}

BpeModel BpeModel::from_json(const nlohmann::json& model, bool byte_level) {
  HARDKV_CHECK(model.is_object(), kBadFile, "\"model\" must be an object");
  HARDKV_CHECK(model.contains("type") && model["type"].is_string(), kBadFile,
               "\"model\" has no \"type\"");
  const std::string type = model["type"].get<std::string>();
  // Reported as a bad file: whatever the type, hardkv cannot read this tokenizer.json's model.
  HARDKV_CHECK(type == "BPE", kBadFile,
               "model type \"{}\" is not supported (hardkv implements \"BPE\")", type);
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    HARDKV_CHECK(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0,
                 kUnsupported, "BPE dropout is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null()) {
      HARDKV_CHECK(model[key].is_string() && model[key].get<std::string>().empty(), kUnsupported,
                   "BPE option \"{}\" is not supported", key);
    }
  }

  BpeModel bpe;
  HARDKV_CHECK(model.contains("vocab") && model["vocab"].is_object(), kBadFile,
               "model has no \"vocab\" object");
  const auto& vocab = model["vocab"];
  bpe.vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    HARDKV_CHECK(it.value().is_number_integer(), kBadFile,
                 "model.vocab entry \"{}\" has a non-integer id", it.key());
    const int64_t id = it.value().get<int64_t>();
    HARDKV_CHECK(id >= 0 && id < (int64_t{1} << 30), kBadFile,
                 "model.vocab entry \"{}\" has id {} out of range", it.key(), id);
    bpe.vocab_.insert_or_assign(it.key(), static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  bpe.id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [token, id] : bpe.vocab_) bpe.id_to_token_[id] = token;

  HARDKV_CHECK(model.contains("merges") && model["merges"].is_array(), kBadFile,
               "model has no \"merges\" array");
  const auto& merges = model["merges"];
  bpe.merges_.reserve(merges.size());
  std::string merged;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [left, right] = parse_merge(merges[i], i);
    const auto left_it = bpe.vocab_.find(left);
    const auto right_it = bpe.vocab_.find(right);
    HARDKV_CHECK(left_it != bpe.vocab_.end(), kBadFile,
                 "model.merges[{}] references token \"{}\" that is not in the vocab", i, left);
    HARDKV_CHECK(right_it != bpe.vocab_.end(), kBadFile,
                 "model.merges[{}] references token \"{}\" that is not in the vocab", i, right);
    merged.assign(left).append(right);
    const auto merged_it = bpe.vocab_.find(merged);
    HARDKV_CHECK(merged_it != bpe.vocab_.end(), kBadFile,
                 "model.merges[{}] produces \"{}\", which is not in the vocab", i, merged);
    // A repeated pair takes its last rank: HF tokenizers collects the merges into a map in order.
    bpe.merges_.insert_or_assign(pair_key(left_it->second, right_it->second),
                                 Merge{static_cast<int32_t>(i), merged_it->second});
  }

  bpe.byte_level_ = byte_level;
  const bool byte_fallback = model.contains("byte_fallback") &&
                             model["byte_fallback"].is_boolean() &&
                             model["byte_fallback"].get<bool>();
  for (int b = 0; b < 256; ++b) {
    const auto it = bpe.vocab_.find(ByteLevel::get().encode_byte(static_cast<uint8_t>(b)));
    bpe.byte_id_[b] = it == bpe.vocab_.end() ? -1 : it->second;
    const auto fallback_it = bpe.vocab_.find(fmt::format("<0x{:02X}>", b));
    bpe.fallback_id_[b] =
        byte_fallback && fallback_it != bpe.vocab_.end() ? fallback_it->second : -1;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = bpe.vocab_.find(model["unk_token"].get<std::string>());
    HARDKV_CHECK(it != bpe.vocab_.end(), kBadFile, "model.unk_token \"{}\" is not in the vocab",
                 model["unk_token"].get<std::string>());
    bpe.unk_id_ = it->second;
  }
  if (model.contains("fuse_unk") && model["fuse_unk"].is_boolean()) {
    bpe.fuse_unk_ = model["fuse_unk"].get<bool>();
  }
  if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean()) {
    bpe.ignore_merges_ = model["ignore_merges"].get<bool>();
  }
  return bpe;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::merge_symbols(std::vector<int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  // Symbols form a doubly linked list over positions; a merge keeps the left position.
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;  // left symbol position
    int32_t left_id, right_id, merged_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push_pair = [&](int left_pos) {
    if (left_pos < 0 || next[left_pos] < 0) return;
    const int32_t l = symbols[left_pos];
    const int32_t r = symbols[next[left_pos]];
    const auto it = merges_.find(pair_key(l, r));
    if (it != merges_.end()) queue.push({it->second.rank, left_pos, l, r, it->second.merged_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    // Skip stale candidates: the pair at c.pos changed since it was queued.
    if (symbols[c.pos] != c.left_id) continue;
    const int right = next[c.pos];
    if (right < 0 || symbols[right] != c.right_id) continue;
    symbols[c.pos] = c.merged_id;
    symbols[right] = -1;  // removed
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    push_pair(prev[c.pos]);
    push_pair(c.pos);
  }
  int out = 0;
  for (int i = 0; i >= 0 && i < n; i = next[i]) symbols[out++] = symbols[i];
  symbols.resize(out);
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<int32_t>& symbols) const {
  symbols.reserve(piece.size());
  // A character missing from the vocab: its <0xXX> byte tokens (byte_fallback), else unk (one for
  // a run with fuse_unk), else nothing (as HF, which drops it).
  const auto unknown = [&](std::string_view bytes) {
    bool all_bytes = true;
    for (char c : bytes) all_bytes = all_bytes && fallback_id_[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (char c : bytes) symbols.push_back(fallback_id_[static_cast<uint8_t>(c)]);
    } else if (unk_id_ && !(fuse_unk_ && !symbols.empty() && symbols.back() == *unk_id_)) {
      symbols.push_back(*unk_id_);
    }
  };
  if (byte_level_) {
    for (size_t i = 0; i < piece.size(); ++i) {
      const int32_t id = byte_id_[static_cast<uint8_t>(piece[i])];
      if (id >= 0) {
        symbols.push_back(id);
      } else {
        unknown(piece.substr(i, 1));
      }
    }
    return;
  }
  for (size_t pos = 0; pos < piece.size();) {
    char32_t cp = 0;
    const size_t len = static_cast<size_t>(utf8::decode_char(piece, pos, cp));
    const auto it = vocab_.find(piece.substr(pos, len));
    if (it != vocab_.end()) {
      symbols.push_back(it->second);
    } else {
      unknown(piece.substr(pos, len));
    }
    pos += len;
  }
}

void BpeModel::encode_piece(std::string_view piece_bytes, std::vector<int32_t>& ids) const {
  const bool cacheable = piece_bytes.size() <= kMaxCachedPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(piece_bytes);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> symbols;
  if (ignore_merges_) {
    const auto it =
        byte_level_ ? vocab_.find(ByteLevel::get().encode(piece_bytes)) : vocab_.find(piece_bytes);
    if (it != vocab_.end()) symbols.push_back(it->second);
  }
  if (symbols.empty()) {
    initial_symbols(piece_bytes, symbols);
    merge_symbols(symbols);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(piece_bytes), std::move(symbols));
  }
}

}  // namespace hardkv
