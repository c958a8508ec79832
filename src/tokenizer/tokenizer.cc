// Tokenizer: the encode pipeline (added tokens -> normalizer -> pre-tokenizer -> BPE ->
// post-processor), decode, and the public accessors.
#include "tokenizer/tokenizer.h"

#include <cctype>
#include <string>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace hardkv {

void TokenizerImpl::finish_loading() {
  int32_t max_id = model_.max_id();
  for (const AddedToken& t : added_.tokens()) max_id = std::max(max_id, t.id);
  vocab_size_ = max_id + 1;
  id_bytes_.assign(vocab_size_, std::string());
  special_.assign(vocab_size_, 0);
  const auto token_bytes = [&](const std::string& token) -> std::string {
    if (decoder_.byte_level) {
      // HF's ByteLevel decoder maps each character back to its byte; a token with a character
      // outside the byte alphabet (e.g. an added token with a raw space) is taken verbatim.
      std::optional<std::string> bytes = ByteLevel::get().decode(token);
      return bytes ? std::move(*bytes) : token;
    }
    // SentencePiece style: Replace steps, then ByteFallback turns "<0xXX>" into byte XX.
    std::string text = token;
    for (const auto& [from, to] : decoder_.replacements) {
      std::string replaced;
      size_t pos = 0;
      for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        replaced.append(text, pos, hit - pos).append(to);
      }
      text = replaced.append(text, pos, std::string::npos);
    }
    if (decoder_.byte_fallback && text.size() == 6 && text.rfind("<0x", 0) == 0 && text[5] == '>' &&
        std::isxdigit(static_cast<unsigned char>(text[3])) &&
        std::isxdigit(static_cast<unsigned char>(text[4]))) {
      return std::string(1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
    }
    return text;
  };
  const auto& vocab = model_.id_to_token();
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (!vocab[id].empty()) id_bytes_[id] = token_bytes(vocab[id]);
  }
  for (const AddedToken& t : added_.tokens()) {
    id_bytes_[t.id] = token_bytes(t.content);
    special_[t.id] = t.special ? 1 : 0;
  }
}

int TokenizerImpl::strip_leading(std::string& bytes, int budget) const {
  size_t cut = 0;
  while (budget > 0 && cut < bytes.size() && bytes[cut] == decoder_.strip_char) {
    ++cut;
    --budget;
  }
  // Once a different byte starts the text, nothing more is stripped.
  if (cut < bytes.size()) budget = 0;
  bytes.erase(0, cut);
  return budget;
}

void TokenizerImpl::apply_config(const TokenizerConfig& config) {
  const auto lookup = [&](const std::string& token, const char* what) {
    std::optional<int32_t> id;
    if (const AddedToken* t = added_.find_by_content(token)) {
      id = t->id;
    } else {
      id = model_.token_to_id(token);
    }
    HARDKV_CHECK(id.has_value(), kBadFile, "{}: {} \"{}\" is not a token of {}", config.path, what,
                 token, path_);
    return *id;
  };
  if (config.bos_token) bos_id_ = lookup(*config.bos_token, "bos_token");
  if (config.eos_token) eos_id_ = lookup(*config.eos_token, "eos_token");
  // Without a TemplateProcessing post-processor, BOS comes from the config: add_bos_token, or, when
  // that is absent, the presence of a bos_token (the Llama convention, also llama.cpp's default).
  if (!has_template_ && bos_id_ && config.add_bos_token.value_or(true)) {
    prefix_ids_ = {*bos_id_};
    has_template_ = true;
  }
  chat_template_ = config.chat_template;
}

std::vector<int32_t> TokenizerImpl::encode(std::string_view text, bool add_special_tokens,
                                           bool parse_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  if (add_special_tokens) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
  std::vector<TextSegment> raw_segments, segments;
  std::vector<std::string> pieces;
  added_.split(text, 0, text.size(), /*normalized=*/false, parse_special_tokens, raw_segments);
  for (const TextSegment& raw : raw_segments) {
    if (raw.added_id >= 0) {
      ids.push_back(raw.added_id);
      continue;
    }
    const std::string normalized = normalizer_.apply(text.substr(raw.begin, raw.end - raw.begin));
    segments.clear();
    added_.split(normalized, 0, normalized.size(), /*normalized=*/true, parse_special_tokens,
                 segments);
    for (const TextSegment& seg : segments) {
      if (seg.added_id >= 0) {
        ids.push_back(seg.added_id);
        continue;
      }
      pieces.clear();
      pre_tokenizer_.split(std::string_view(normalized).substr(seg.begin, seg.end - seg.begin),
                           pieces);
      for (const std::string& piece : pieces) model_.encode_piece(piece, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

void TokenizerImpl::append_token_bytes(int32_t id, bool skip_special, bool& first,
                                       std::string& out) const {
  if (id < 0 || id >= vocab_size_) return;
  if (skip_special && special_[id]) return;
  if (first && !decoder_.first_token_drops.empty()) {
    const AddedToken* added = added_.find_by_id(id);
    const std::string& token = added ? added->content : model_.id_to_token()[id];
    const std::string& drop = decoder_.first_token_drops;
    for (size_t pos = 0; pos < token.size();) {
      if (token.compare(pos, drop.size(), drop) == 0) {
        pos += drop.size();
      } else {
        out.push_back(token[pos++]);
      }
    }
  } else {
    out += id_bytes_[id];
  }
  first = false;
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& tokenizer_json_path) {
  return Tokenizer(load_tokenizer_json(tokenizer_json_path));
}

Tokenizer Tokenizer::from_dir(const std::string& model_dir) {
  std::unique_ptr<TokenizerImpl> impl = load_tokenizer_json(model_dir + "/tokenizer.json");
  impl->apply_config(load_tokenizer_config(model_dir + "/tokenizer_config.json",
                                           model_dir + "/chat_template.jinja"));
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens,
                                       bool parse_special_tokens) const {
  return impl_->encode(text, add_special_tokens, parse_special_tokens);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) impl_->append_token_bytes(id, skip_special_tokens, first, bytes);
  impl_->strip_leading(bytes, impl_->decoder_.strip_start);
  std::string text;
  text.reserve(bytes.size());
  utf8::append_lossy(bytes, text, /*hold_incomplete_tail=*/false);
  return text;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size_; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* t = impl_->added_.find_by_content(token)) return t->id;
  return impl_->model_.token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = impl_->added_.find_by_id(id)) return t->content;
  const auto& vocab = impl_->model_.id_to_token();
  return id >= 0 && static_cast<size_t>(id) < vocab.size() ? vocab[id] : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size_ && impl_->special_[id] != 0;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id_; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id_; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template_; }

}  // namespace hardkv
