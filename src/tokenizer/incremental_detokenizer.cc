// IncrementalDetokenizer: streams decoded text, holding back the bytes of an unfinished UTF-8
// character, so that the concatenated pieces equal Tokenizer::decode of all the ids.
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace hardkv {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer),
      skip_special_(skip_special_tokens),
      strip_budget_(tokenizer.impl_->decoder_.strip_start) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  const size_t before = pending_.size();
  tokenizer_->impl_->append_token_bytes(id, skip_special_, first_, pending_);
  if (strip_budget_ > 0 && pending_.size() > before) {
    // Only reached while nothing has been emitted: pending_ holds the start of the text.
    strip_budget_ = tokenizer_->impl_->strip_leading(pending_, strip_budget_);
  }
  std::string text;
  const size_t held = utf8::append_lossy(pending_, text, /*hold_incomplete_tail=*/true);
  pending_.erase(0, pending_.size() - held);
  return text;
}

std::string IncrementalDetokenizer::flush() {
  std::string text;
  utf8::append_lossy(pending_, text, /*hold_incomplete_tail=*/false);
  pending_.clear();
  return text;
}

}  // namespace hardkv
