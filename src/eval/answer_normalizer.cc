// LaTeX answer normalisation: a fixed sequence of string rewrites, each safe on its own.
#include "eval/answer_normalizer.h"

#include <array>
#include <cctype>
#include <regex>

namespace hardkv::eval {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Removes every occurrence of the command `name` (e.g. "\left") that is not the prefix of a
// longer command name (so "\right" does not touch "\rightarrow").
void remove_command(std::string& s, std::string_view name) {
  size_t pos = 0;
  while ((pos = s.find(name, pos)) != std::string::npos) {
    size_t end = pos + name.size();
    if (end < s.size() && is_alpha(s[end])) {
      pos = end;
      continue;
    }
    s.erase(pos, name.size());
  }
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Position of the '}' matching the '{' at `open`, or npos.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

// \text{...}-like groups: a trailing one after a value is a unit and is dropped (with an
// optional ^2 / ^{3}); any other is replaced by its content.
void handle_text_groups(std::string& s) {
  static constexpr std::array<std::string_view, 7> kTextCommands = {
      "\\text", "\\textbf", "\\textrm", "\\mathrm", "\\mbox", "\\mathbf", "\\textit"};
  for (std::string_view cmd : kTextCommands) {
    size_t pos = 0;
    while ((pos = s.find(cmd, pos)) != std::string::npos) {
      size_t open = pos + cmd.size();
      if (open >= s.size() || s[open] != '{') {
        pos = open;
        continue;
      }
      size_t close = matching_brace(s, open);
      if (close == std::string::npos) return;
      std::string rest = s.substr(close + 1);
      static const std::regex kPowerOnly(R"(^\s*(\^\{?[23]\}?)?\s*\.?\s*$)");
      std::string before = trim(std::string_view(s).substr(0, pos));
      std::string content = s.substr(open + 1, close - open - 1);
      bool is_trailing_unit = !before.empty() && std::regex_match(rest, kPowerOnly) &&
                              before.back() != '{' && before.back() != '=';
      if (is_trailing_unit) {
        s = before;
        return;
      }
      s.replace(pos, close + 1 - pos, content);
      pos += content.size();
    }
  }
}

void strip_delimiters(std::string& s) {
  s = trim(s);
  for (;;) {
    bool changed = false;
    auto strip = [&](std::string_view open, std::string_view close) {
      if (s.size() >= open.size() + close.size() && s.starts_with(open) && s.ends_with(close)) {
        s = trim(std::string_view(s).substr(open.size(), s.size() - open.size() - close.size()));
        changed = true;
      }
    };
    strip("$$", "$$");
    strip("$", "$");
    strip("\\(", "\\)");
    strip("\\[", "\\]");
    if (!changed) return;
  }
}

// Unwraps a nested \boxed{...} left in a reference answer.
void unwrap_boxed(std::string& s) {
  if (s.starts_with("\\boxed{") && matching_brace(s, 6) == s.size() - 1) {
    s = s.substr(7, s.size() - 8);
  }
}

}  // namespace

std::string normalize_answer(std::string_view answer) {
  std::string s(answer);
  strip_delimiters(s);
  unwrap_boxed(s);
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  replace_all(s, "\\%", "");
  replace_all(s, "%", "");
  replace_all(s, "\xC2\xB0", "");             // U+00B0 degree sign
  replace_all(s, "\xE2\x88\x9E", "\\infty");  // U+221E
  replace_all(s, "\xCF\x80", "\\pi");         // U+03C0
  replace_all(s, "^{\\circ}", "");
  replace_all(s, "^\\circ", "");
  remove_command(s, "\\circ");
  remove_command(s, "\\degree");
  remove_command(s, "\\displaystyle");
  remove_command(s, "\\left");
  remove_command(s, "\\right");
  remove_command(s, "\\qquad");
  remove_command(s, "\\quad");
  for (std::string_view space : {"\\!", "\\,", "\\;", "\\:", "\\ "}) replace_all(s, space, "");
  replace_all(s, "~", "");
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "{,}", ",");
  handle_text_groups(s);

  // Plain-text unit words after a number ("12 cm", "5 meters"): only a fixed list of
  // multi-letter words, so that a single-letter variable is never taken for a unit.
  static const std::regex kNumberUnit(
      R"(^\s*(-?[0-9][0-9,]*(\.[0-9]+)?)\s*(cm|mm|km|kg|meters|metres|units|degrees|dollars|)"
      R"(cents|inches|feet|minutes|hours|seconds|days|years|sq\.?\s*units)\.?\s*$)");
  std::smatch unit_match;
  if (std::regex_match(s, unit_match, kNumberUnit)) s = unit_match[1].str();

  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(c);
  }
  while (!out.empty() && out.back() == '.') out.pop_back();

  static const std::regex kThousands(R"(^([-+]?)([0-9]{1,3}(,[0-9]{3})+)(\.[0-9]+)?$)");
  if (std::regex_match(out, kThousands)) {
    std::string digits;
    for (char c : out) {
      if (c != ',') digits.push_back(c);
    }
    out = digits;
  }
  // "x=5" -> "5" (one variable name, one '=')
  static const std::regex kAssignment(R"(^[a-zA-Z](_\{?[a-zA-Z0-9]+\}?)?=([^=]+)$)");
  std::smatch assign_match;
  if (std::regex_match(out, assign_match, kAssignment)) out = assign_match[2].str();
  if (out.starts_with("+") && out.size() > 1) out.erase(0, 1);
  return out;
}

}  // namespace hardkv::eval
