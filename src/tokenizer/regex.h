// PCRE2 (UTF + UCP, JIT) wrapper for the pre-tokenizer's split patterns. Patterns are written for
// HF tokenizers (Oniguruma / Rust regex syntax); translate_hf_regex rewrites the few constructs
// PCRE2 spells differently. Ill-formed UTF-8 in the subject is never matched (it stays in the
// gaps between matches), so every byte of the input survives the split.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace hardkv {

// \uXXXX and \u{X...} (Rust/JS escapes) become \x{...}; everything else is passed through.
std::string translate_hf_regex(std::string_view pattern);

// Escapes every regex metacharacter so that `literal` matches itself.
std::string escape_regex(std::string_view literal);

class Regex {
 public:
  // Compiles a PCRE2 pattern; throws Error(kBadFile) with PCRE2's message and offset.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Calls on_match(begin, end) for each successive non-overlapping match in `subject` (byte
  // offsets). Empty matches are skipped. Thread-safe.
  void for_each_match(std::string_view subject,
                      const std::function<void(size_t, size_t)>& on_match) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace hardkv
