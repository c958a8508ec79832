// UTF-8 helpers for the tokenizer: well-formedness per Unicode Table 3-7, lossy conversion that
// replaces each maximal ill-formed subpart with U+FFFD (as Rust's from_utf8_lossy does), and
// Unicode normalisation forms (NFC/NFD/NFKC/NFKD) through utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hardkv::utf8 {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Appends `bytes` to `out`, replacing each maximal ill-formed subpart with U+FFFD. When
// hold_incomplete_tail is true, a trailing sequence that is a valid prefix of a character (it may
// still complete) is not written; the return value is its length (0 otherwise).
size_t append_lossy(std::string_view bytes, std::string& out, bool hold_incomplete_tail);

bool is_valid(std::string_view bytes);

// Decodes the character at s[pos]; returns its length (1 and cp = 0xFFFD for an ill-formed byte).
int decode_char(std::string_view s, size_t pos, char32_t& cp);

void append_char(char32_t cp, std::string& out);

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_whitespace(char32_t cp);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Normalises `s`; ill-formed bytes are kept as they are (each well-formed run is normalised).
std::string normalize(std::string_view s, NormalForm form);

}  // namespace hardkv::utf8
