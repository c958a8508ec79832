// Recursive-descent evaluator over normalised LaTeX (no whitespace; see answer_normalizer.h).
// Grammar:
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/' | \cdot | \times | \div) unary | <implicit> power)*
//   unary   := ('-' | '+') unary | power
//   power   := postfix ('^' exponent)?        exponent := '{' expr '}' | unary
//   postfix := primary '!'*
//   primary := number | letter | '(' expr ')' | '{' expr '}' | '[' expr ']' | '|' expr '|'
//            | \frac arg arg | \sqrt ('[' expr ']')? arg | \pi | function (arg | power)
#include "eval/expression_evaluator.h"

#include <cctype>
#include <cmath>
#include <numbers>
#include <string>

namespace hardkv::eval {
namespace {

class ParseFailure {};

class Parser {
 public:
  Parser(std::string_view text, const std::map<char, double>& vars, std::set<char>* seen)
      : text_(text), vars_(vars), seen_(seen) {}

  double parse_all() {
    double v = expr();
    if (pos_ != text_.size()) throw ParseFailure{};
    return v;
  }
  bool has_unbound() const { return has_unbound_; }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!accept(c)) throw ParseFailure{};
  }
  // The command name at pos_ ("\frac" -> "frac") without consuming it; "" when none.
  std::string_view peek_command() const {
    if (peek() != '\\') return {};
    size_t end = pos_ + 1;
    while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
    return text_.substr(pos_ + 1, end - pos_ - 1);
  }
  bool accept_command(std::string_view name) {
    if (peek_command() != name) return false;
    pos_ += 1 + name.size();
    return true;
  }

  double expr() {
    double v = term();
    for (;;) {
      if (accept('+')) {
        v += term();
      } else if (accept('-')) {
        v -= term();
      } else {
        return v;
      }
    }
  }

  bool starts_primary() const {
    char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '(' || c == '{') return true;
    if (std::isalpha(static_cast<unsigned char>(c))) return true;
    if (c == '\\') {
      std::string_view cmd = peek_command();
      return cmd == "frac" || cmd == "sqrt" || cmd == "pi" || is_function(cmd);
    }
    return false;
  }

  double term() {
    double v = unary();
    for (;;) {
      if (accept('*') || accept_command("cdot") || accept_command("times")) {
        v *= unary();
      } else if (accept('/') || accept_command("div")) {
        v /= unary();
      } else if (starts_primary()) {
        v *= power();
      } else {
        return v;
      }
    }
  }

  double unary() {
    if (accept('-')) return -unary();
    if (accept('+')) return unary();
    return power();
  }

  double power() {
    double base = postfix();
    if (accept('^')) {
      double exponent;
      if (peek() == '{') {
        ++pos_;
        exponent = expr();
        expect('}');
      } else if (std::isdigit(static_cast<unsigned char>(peek()))) {
        exponent = number();
      } else {
        exponent = unary();
      }
      return std::pow(base, exponent);
    }
    return base;
  }

  double postfix() {
    double v = primary();
    while (accept('!')) {
      if (v < 0 || v > 170 || v != std::floor(v)) throw ParseFailure{};
      double f = 1;
      for (int k = 2; k <= static_cast<int>(v); ++k) f *= k;
      v = f;
    }
    return v;
  }

  double number() {
    size_t begin = pos_;
    while (std::isdigit(static_cast<unsigned char>(peek()))) ++pos_;
    if (peek() == '.') {
      ++pos_;
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++pos_;
    }
    std::string digits(text_.substr(begin, pos_ - begin));
    if (digits.empty() || digits == ".") throw ParseFailure{};
    return std::stod(digits);
  }

  // A LaTeX macro argument: '{' expr '}', or a single character ("\frac12").
  double argument() {
    if (accept('{')) {
      double v = expr();
      expect('}');
      return v;
    }
    char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c))) {
      ++pos_;
      return c - '0';
    }
    if (std::isalpha(static_cast<unsigned char>(c))) return primary();
    if (c == '\\') return primary();
    throw ParseFailure{};
  }

  static bool is_function(std::string_view name) {
    return name == "sin" || name == "cos" || name == "tan" || name == "ln" || name == "log" ||
           name == "exp" || name == "arcsin" || name == "arccos" || name == "arctan" ||
           name == "sinh" || name == "cosh" || name == "tanh";
  }

  static double apply(std::string_view name, double x) {
    if (name == "sin") return std::sin(x);
    if (name == "cos") return std::cos(x);
    if (name == "tan") return std::tan(x);
    if (name == "ln" || name == "log") return std::log(x);
    if (name == "exp") return std::exp(x);
    if (name == "arcsin") return std::asin(x);
    if (name == "arccos") return std::acos(x);
    if (name == "arctan") return std::atan(x);
    if (name == "sinh") return std::sinh(x);
    if (name == "cosh") return std::cosh(x);
    return std::tanh(x);
  }

  double primary() {
    char c = peek();
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number();
    if (accept('(')) {
      double v = expr();
      expect(')');
      return v;
    }
    if (accept('{')) {
      double v = expr();
      expect('}');
      return v;
    }
    if (accept('[')) {
      double v = expr();
      expect(']');
      return v;
    }
    if (accept('|')) {
      double v = expr();
      expect('|');
      return std::fabs(v);
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ++pos_;
      if (c == 'e') return std::numbers::e;
      if (seen_) seen_->insert(c);
      auto it = vars_.find(c);
      if (it == vars_.end()) {  // keep parsing so that every variable name gets collected
        has_unbound_ = true;
        return 1.0;
      }
      return it->second;
    }
    std::string_view cmd = peek_command();
    if (accept_command("frac")) {
      double num = argument();
      double den = argument();
      return num / den;
    }
    if (accept_command("sqrt")) {
      double index = 2;
      if (accept('[')) {
        index = expr();
        expect(']');
      }
      double radicand = argument();
      if (index == 3) return std::cbrt(radicand);
      return std::pow(radicand, 1.0 / index);
    }
    if (accept_command("pi")) return std::numbers::pi;
    if (is_function(cmd)) {
      pos_ += 1 + cmd.size();
      double base = 0;
      bool has_base = false;
      if (cmd == "log" && accept('_')) {  // \log_{b} x
        base = argument();
        has_base = true;
      }
      double x = (peek() == '(' || peek() == '{') ? primary() : power();
      double v = apply(cmd, x);
      return has_base ? v / std::log(base) : v;
    }
    throw ParseFailure{};
  }

  std::string_view text_;
  size_t pos_ = 0;
  const std::map<char, double>& vars_;
  std::set<char>* seen_;
  bool has_unbound_ = false;
};

}  // namespace

std::optional<double> evaluate_expression(std::string_view expr, const std::map<char, double>& vars,
                                          std::set<char>* seen) {
  if (expr.empty()) return std::nullopt;
  try {
    Parser parser(expr, vars, seen);
    double v = parser.parse_all();
    if (parser.has_unbound() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const ParseFailure&) {
    return std::nullopt;
  } catch (const std::exception&) {  // std::stod out of range
    return std::nullopt;
  }
}

}  // namespace hardkv::eval
