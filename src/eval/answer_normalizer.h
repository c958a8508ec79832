// Canonical string form of a LaTeX/plain-text answer, so that equivalent spellings of one value
// ("$\dfrac{1}{2}$", "\frac12 ", "1,000" vs "1000", "30^\circ" vs "30") compare equal as strings
// and the rest can be evaluated numerically (expression_evaluator.h).
#pragma once

#include <string>
#include <string_view>

namespace hardkv::eval {

// Removes math delimiters ($, \( \), \[ \]), \left/\right, spacing commands and all whitespace,
// \displaystyle; maps \dfrac/\tfrac to \frac; drops degree signs, percent signs, \$, thousands
// separators (only in well-formed 1,234,567 groups), a trailing period, a leading "x=" (single
// variable name), and trailing units (\text{...}/\mathrm{...} after a value, or a known
// multi-letter unit word after a number); unwraps other \text{...}; maps ∞, π to \infty, \pi.
std::string normalize_answer(std::string_view answer);

}  // namespace hardkv::eval
