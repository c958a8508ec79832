// Finds the last balanced \boxed{...} in a response.
#include "eval/boxed.h"

#include <cctype>

namespace hardkv::eval {
namespace {

// Content of the box whose command name ends just before `pos` (pos at '{' or a space);
// nullopt when its braces never close.
std::optional<std::string> box_content(std::string_view text, size_t pos) {
  if (pos >= text.size()) return std::nullopt;
  if (text[pos] == ' ') {  // "\boxed 5": one token up to the next space or '$'
    size_t begin = pos + 1;
    size_t end = begin;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
           text[end] != '$') {
      ++end;
    }
    if (end == begin) return std::nullopt;
    return std::string(text.substr(begin, end - begin));
  }
  if (text[pos] != '{') return std::nullopt;
  int depth = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {  // skip the escaped character: \{ and \} are literal braces
      ++i;
      continue;
    }
    if (c == '{') {
      ++depth;
    } else if (c == '}') {
      --depth;
      if (depth == 0) return std::string(text.substr(pos + 1, i - pos - 1));
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> extract_last_boxed(std::string_view text) {
  std::optional<std::string> last;
  // Scan left to right, remembering the rightmost complete box of either command.
  size_t best_pos = std::string_view::npos;
  for (std::string_view command : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    size_t pos = text.find(command);
    while (pos != std::string_view::npos) {
      size_t after = pos + command.size();
      bool is_command_end =
          after >= text.size() || !std::isalpha(static_cast<unsigned char>(text[after]));
      if (is_command_end) {
        auto content = box_content(text, after);
        if (content && (best_pos == std::string_view::npos || pos > best_pos)) {
          best_pos = pos;
          last = std::move(content);
        }
      }
      pos = text.find(command, pos + 1);
    }
  }
  return last;
}

}  // namespace hardkv::eval
