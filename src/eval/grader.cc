// Answer comparison: normalised strings, tuples element-wise, then numeric values.
#include "eval/grader.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

namespace hardkv::eval {
namespace {

bool close_enough(double a, double b) {
  double scale = std::max({1.0, std::fabs(a), std::fabs(b)});
  return std::fabs(a - b) <= kRelTol * scale;
}

// Splits "a,b,c" at commas outside brackets; a surrounding (), [] or \{\} pair is removed first
// and returned in `brackets` ("()" etc.) so that "(1,2)" and "[1,2]" stay different.
std::vector<std::string> split_top_level(const std::string& s, std::string* brackets) {
  std::string body = s;
  brackets->clear();
  if (body.size() >= 2) {
    char open = body.front(), close = body.back();
    if ((open == '(' && close == ')') || (open == '[' && close == ']') ||
        (open == '[' && close == ')') || (open == '(' && close == ']')) {
      *brackets = std::string{open, close};
      body = body.substr(1, body.size() - 2);
    } else if (body.starts_with("\\{") && body.ends_with("\\}")) {
      *brackets = "{}";
      body = body.substr(2, body.size() - 4);
    }
  }
  std::vector<std::string> parts;
  int depth = 0;
  std::string current;
  for (char c : body) {
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  parts.push_back(current);
  return parts;
}

// Numeric equivalence of two normalised scalars; free variables are sampled at three points.
bool numerically_equivalent(const std::string& a, const std::string& b) {
  std::set<char> names;
  evaluate_expression(a, {}, &names);
  evaluate_expression(b, {}, &names);
  if (names.empty()) {
    auto va = evaluate_expression(a);
    auto vb = evaluate_expression(b);
    return va && vb && close_enough(*va, *vb);
  }
  static constexpr double kSamples[3][4] = {
      {0.37, 1.21, 2.53, 0.83}, {1.73, 0.58, 1.11, 2.29}, {2.91, 1.67, 0.44, 1.39}};
  for (const auto& sample : kSamples) {
    std::map<char, double> vars;
    int k = 0;
    for (char name : names) {
      vars[name] = sample[k % 4] + 0.1 * (k / 4);
      ++k;
    }
    auto va = evaluate_expression(a, vars);
    auto vb = evaluate_expression(b, vars);
    if (!va || !vb || !close_enough(*va, *vb)) return false;
  }
  return true;
}

bool scalars_equivalent(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  return numerically_equivalent(a, b);
}

}  // namespace

bool answers_equivalent(std::string_view given, std::string_view reference) {
  std::string a = normalize_answer(given);
  std::string b = normalize_answer(reference);
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  std::string brackets_a, brackets_b;
  std::vector<std::string> parts_a = split_top_level(a, &brackets_a);
  std::vector<std::string> parts_b = split_top_level(b, &brackets_b);
  if (parts_a.size() > 1 || parts_b.size() > 1) {
    if (parts_a.size() != parts_b.size() || brackets_a != brackets_b) return false;
    for (size_t i = 0; i < parts_a.size(); ++i) {
      if (!scalars_equivalent(parts_a[i], parts_b[i])) return false;
    }
    return true;
  }
  return numerically_equivalent(a, b);
}

GradeResult grade_response(std::string_view response, std::string_view reference) {
  GradeResult result;
  result.extracted = extract_last_boxed(response);
  if (result.extracted) result.correct = answers_equivalent(*result.extracted, reference);
  return result;
}

}  // namespace hardkv::eval
