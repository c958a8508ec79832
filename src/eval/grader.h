// Grading of a response against a reference answer: the last \boxed{} is extracted
// (boxed.h), both sides normalised (answer_normalizer.h) and compared as strings, then
// element-wise for comma-separated tuples, then numerically (expression_evaluator.h), with free
// single-letter variables compared at several sample points.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "eval/answer_normalizer.h"
#include "eval/boxed.h"
#include "eval/expression_evaluator.h"

namespace hardkv::eval {

// Relative tolerance of the numeric comparison: |a - b| <= kRelTol * max(1, |a|, |b|). Tight on
// purpose: a rounded decimal ("0.33") does not match an exact value ("\frac{1}{3}").
inline constexpr double kRelTol = 1e-9;

// True when `given` and `reference` (each a bare answer, not a whole response) denote the same
// value. An empty answer never matches.
bool answers_equivalent(std::string_view given, std::string_view reference);

struct GradeResult {
  std::optional<std::string> extracted;  // content of the last \boxed{}; nullopt if none
  bool correct = false;
};

// Grades a whole response text: no \boxed{} means incorrect.
GradeResult grade_response(std::string_view response, std::string_view reference);

}  // namespace hardkv::eval
