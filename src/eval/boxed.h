// Extraction of the final answer from a model's response: the content of the last balanced
// \boxed{...} (or \fbox{...}).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hardkv::eval {

// Returns the content of the last \boxed{...} / \fbox{...} whose braces balance (escaped braces
// \{ \} do not count). An unclosed trailing \boxed{ (a truncated generation) is skipped in favour
// of the last closed one. Also accepts "\boxed 5" (a single token without braces).
// nullopt when the text holds no complete box.
std::optional<std::string> extract_last_boxed(std::string_view text);

}  // namespace hardkv::eval
