// GPT-2 byte-level alphabet: every byte maps to one printable Unicode character, so that BPE
// works on any byte string. Bytes 33-126, 161-172 and 174-255 map to themselves; the other 68
// bytes map, in order, to U+0100..U+0143 (e.g. ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hardkv {

class ByteLevel {
 public:
  static const ByteLevel& get();

  // UTF-8 encoding of the character that stands for byte b.
  const std::string& encode_byte(uint8_t b) const { return byte_to_utf8_[b]; }
  // Maps a byte string to its byte-level characters (UTF-8).
  std::string encode(std::string_view bytes) const;
  // Maps a byte-level string back to bytes; nullopt when a character is outside the alphabet.
  std::optional<std::string> decode(std::string_view text) const;

 private:
  ByteLevel();
  std::array<std::string, 256> byte_to_utf8_;
  std::array<int16_t, 324> codepoint_to_byte_;  // -1 for code points outside the alphabet
};

}  // namespace hardkv
