// PCRE2 compilation (UTF, UCP, MATCH_INVALID_UTF, JIT) and match iteration.
#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>

#include "core/error.h"

namespace hardkv {

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

std::string translate_hf_regex(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size());
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 >= pattern.size()) {
      out.push_back(c);
      continue;
    }
    const char next = pattern[i + 1];
    if (next == 'u' && i + 2 < pattern.size() && pattern[i + 2] == '{') {
      const size_t close = pattern.find('}', i + 3);
      if (close != std::string_view::npos) {  // \u{1F600} -> \x{1F600}
        out += "\\x{";
        out += pattern.substr(i + 3, close - (i + 3));
        out += '}';
        i = close;
        continue;
      }
    }
    if (next == 'u' && i + 6 <= pattern.size()) {
      const std::string_view hex = pattern.substr(i + 2, 4);
      bool all_hex = true;
      for (char h : hex) all_hex = all_hex && std::isxdigit(static_cast<unsigned char>(h));
      if (all_hex) {  // \u00e9 -> \x{00e9}
        out += "\\x{";
        out += hex;
        out += '}';
        i += 5;
        continue;
      }
    }
    out.push_back(c);  // any other escape is copied whole, so "\\u" stays an escaped backslash
    out.push_back(next);
    ++i;
  }
  return out;
}

std::string escape_regex(std::string_view literal) {
  static const std::string_view kMeta = "\\^$.|?*+()[]{}-/#";
  std::string out;
  for (char c : literal) {
    if (kMeta.find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

Regex::Regex(const std::string& pattern) : pattern_(pattern), compiled_(new Compiled) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code,
                                  &error_offset, nullptr);
  if (compiled_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    HARDKV_THROW(kBadFile, "cannot compile pre-tokenizer regex /{}/ at offset {}: {}", pattern,
                 error_offset, reinterpret_cast<const char*>(message));
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::for_each_match(std::string_view subject,
                           const std::function<void(size_t, size_t)>& on_match) const {
  struct MatchData {
    pcre2_match_data* data;
    ~MatchData() { pcre2_match_data_free(data); }
  } md{pcre2_match_data_create_from_pattern(compiled_->code, nullptr)};
  HARDKV_CHECK(md.data != nullptr, kOutOfMemory, "cannot allocate PCRE2 match data");
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t start = 0;
  bool use_jit = compiled_->jit;
  while (start < subject.size()) {
    int rc =
        use_jit ? pcre2_jit_match(compiled_->code, text, subject.size(), start, 0, md.data, nullptr)
                : pcre2_match(compiled_->code, text, subject.size(), start, 0, md.data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && use_jit) {
      use_jit = false;  // deep backtracking on a long run: the interpreter uses the heap instead
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      HARDKV_THROW(kRuntime, "pre-tokenizer regex /{}/ failed: {}", pattern_,
                   reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md.data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end > begin) {
      on_match(begin, end);
      start = end;
    } else {
      // Empty match: step over one character (or one ill-formed byte).
      start = begin + 1;
      while (start < subject.size() && (static_cast<uint8_t>(subject[start]) & 0xC0) == 0x80) {
        ++start;
      }
    }
  }
}

}  // namespace hardkv
