// GPT-2 bytes_to_unicode table and its inverse.
#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace hardkv {

const ByteLevel& ByteLevel::get() {
  static const ByteLevel table;
  return table;
}

ByteLevel::ByteLevel() {
  codepoint_to_byte_.fill(-1);
  int next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next_extra++);
    utf8::append_char(cp, byte_to_utf8_[b]);
    codepoint_to_byte_[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteLevel::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_utf8_[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> ByteLevel::decode(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp = 0;
    const int len = utf8::decode_char(text, pos, cp);
    if (cp >= codepoint_to_byte_.size() || codepoint_to_byte_[cp] < 0) return std::nullopt;
    // decode_char reports an ill-formed byte as U+FFFD (outside the table), so cp is genuine here.
    out.push_back(static_cast<char>(codepoint_to_byte_[cp]));
    pos += len;
  }
  return out;
}

}  // namespace hardkv
