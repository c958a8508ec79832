// Numeric evaluation of a normalised LaTeX answer (answer_normalizer.h): a small recursive-descent
// parser over + - * / ^, \cdot \times \div, implicit products, \frac, \sqrt[n]{}, (), {}, |x|,
// n!, \pi, e, \sin \cos \tan \ln \log \exp, and single-letter variables bound by the caller.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string_view>

namespace hardkv::eval {

// Value of `expr` with the variables in `vars`; nullopt when the text is not an expression this
// grammar accepts (sets, intervals, \infty, words, unbound variables) or the value is not finite.
// Every single letter other than 'e' is a variable; the names seen are added to `seen` if given.
std::optional<double> evaluate_expression(std::string_view expr,
                                          const std::map<char, double>& vars = {},
                                          std::set<char>* seen = nullptr);

}  // namespace hardkv::eval
