// UTF-8 well-formedness, lossy conversion and normalisation (utf8proc).
#include "tokenizer/utf8.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"

namespace hardkv::utf8 {
namespace {

// Expected total length for a lead byte, or 0 when the byte cannot start a character.
int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Allowed range of the second byte (Table 3-7 narrows it for E0, ED, F0, F4).
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return b >= 0x80 && b <= 0xBF;
  }
}

enum class Scan { kComplete, kIllFormed, kTruncated };

// Scans the character at s[pos]: kComplete with len = its length; kIllFormed with len = the
// maximal subpart to replace; kTruncated with len = the valid prefix that reaches the end of s.
Scan scan_char(std::string_view s, size_t pos, int& len) {
  const uint8_t lead = static_cast<uint8_t>(s[pos]);
  const int need = sequence_length(lead);
  if (need == 0) {
    len = 1;
    return Scan::kIllFormed;
  }
  for (int k = 1; k < need; ++k) {
    if (pos + k >= s.size()) {
      len = k;
      return Scan::kTruncated;
    }
    const uint8_t b = static_cast<uint8_t>(s[pos + k]);
    const bool ok = k == 1 ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      len = k;
      return Scan::kIllFormed;
    }
  }
  len = need;
  return Scan::kComplete;
}

bool all_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

std::string normalize_valid(std::string_view s, NormalForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::kNFC:
      options |= UTF8PROC_COMPOSE;
      break;
    case NormalForm::kNFD:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case NormalForm::kNFKC:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case NormalForm::kNFKD:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) {
    HARDKV_THROW(kInternal, "utf8proc failed on well-formed text: {}", utf8proc_errmsg(n));
  }
  std::string out(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return out;
}

}  // namespace

size_t append_lossy(std::string_view bytes, std::string& out, bool hold_incomplete_tail) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    // Fast path for runs of ASCII.
    size_t run = pos;
    while (run < bytes.size() && static_cast<uint8_t>(bytes[run]) < 0x80) ++run;
    if (run > pos) {
      out.append(bytes.substr(pos, run - pos));
      pos = run;
      continue;
    }
    int len = 0;
    switch (scan_char(bytes, pos, len)) {
      case Scan::kComplete:
        out.append(bytes.substr(pos, len));
        break;
      case Scan::kIllFormed:
        out.append(kReplacementChar);
        break;
      case Scan::kTruncated:
        if (hold_incomplete_tail) return bytes.size() - pos;
        out.append(kReplacementChar);
        break;
    }
    pos += len;
  }
  return 0;
}

bool is_valid(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    int len = 0;
    if (scan_char(bytes, pos, len) != Scan::kComplete) return false;
    pos += len;
  }
  return true;
}

int decode_char(std::string_view s, size_t pos, char32_t& cp) {
  int len = 0;
  if (scan_char(s, pos, len) != Scan::kComplete) {
    cp = 0xFFFD;
    return 1;
  }
  const auto b = [&](int k) { return static_cast<char32_t>(static_cast<uint8_t>(s[pos + k])); };
  switch (len) {
    case 1:
      cp = b(0);
      break;
    case 2:
      cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
      break;
    case 3:
      cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      break;
    default:
      cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  return len;
}

void append_char(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_whitespace(char32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0) return true;
  if (cp < 0x1680) return false;
  const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

std::string normalize(std::string_view s, NormalForm form) {
  if (all_ascii(s)) return std::string(s);  // ASCII is invariant under every form
  std::string out;
  out.reserve(s.size());
  size_t run_start = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    int len = 1;
    if (static_cast<uint8_t>(s[pos]) >= 0x80 && scan_char(s, pos, len) != Scan::kComplete) {
      // Normalise the well-formed run before this ill-formed part, keep the bad bytes as they are.
      out += normalize_valid(s.substr(run_start, pos - run_start), form);
      out.append(s.substr(pos, len));
      pos += len;
      run_start = pos;
      continue;
    }
    pos += len;
  }
  out += normalize_valid(s.substr(run_start), form);
  return out;
}

}  // namespace hardkv::utf8
