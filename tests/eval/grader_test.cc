// Grader tests: extraction of the last \boxed{}, and equivalence verdicts written by hand for
// equivalent and non-equivalent spellings of answers.
#include "eval/grader.h"

#include <gtest/gtest.h>

namespace hardkv::eval {
namespace {

TEST(ExtractLastBoxed, TakesTheLastBox) {
  EXPECT_EQ(extract_last_boxed("first \\boxed{1} then \\boxed{22}."), "22");
}

TEST(ExtractLastBoxed, BalancesNestedBraces) {
  EXPECT_EQ(extract_last_boxed("so $\\boxed{\\frac{1}{2}}$"), "\\frac{1}{2}");
  EXPECT_EQ(extract_last_boxed("\\boxed{\\left\\{1,2\\right\\}}"), "\\left\\{1,2\\right\\}");
}

TEST(ExtractLastBoxed, SkipsAnUnclosedTrailingBox) {
  EXPECT_EQ(extract_last_boxed("\\boxed{7} and later \\boxed{\\frac{1}{"), "7");
}

TEST(ExtractLastBoxed, NoneWhenAbsent) {
  EXPECT_FALSE(extract_last_boxed("the answer is 7").has_value());
  EXPECT_FALSE(extract_last_boxed("\\boxed{7").has_value());
  EXPECT_FALSE(extract_last_boxed("\\boxedx{7}").has_value());
}

TEST(ExtractLastBoxed, FboxAndSpaceForm) {
  EXPECT_EQ(extract_last_boxed("\\fbox{12}"), "12");
  EXPECT_EQ(extract_last_boxed("$\\boxed 5$"), "5");
}

TEST(Normalize, StripsDecoration) {
  EXPECT_EQ(normalize_answer("$\\dfrac{1}{2}$"), "\\frac{1}{2}");
  EXPECT_EQ(normalize_answer("\\left( 1 , 2 \\right)"), "(1,2)");
  EXPECT_EQ(normalize_answer("30^\\circ"), "30");
  EXPECT_EQ(normalize_answer("1,000,000"), "1000000");
  EXPECT_EQ(normalize_answer("5 \\text{ cm}^2"), "5");
  EXPECT_EQ(normalize_answer("x = 3."), "3");
  EXPECT_EQ(normalize_answer("\\$42"), "42");
  EXPECT_EQ(normalize_answer("12 meters"), "12");
}

struct Case {
  const char* given;
  const char* reference;
  bool equivalent;
};

class Equivalence : public ::testing::TestWithParam<Case> {};

TEST_P(Equivalence, Verdict) {
  const Case& c = GetParam();
  EXPECT_EQ(answers_equivalent(c.given, c.reference), c.equivalent)
      << "given '" << c.given << "' reference '" << c.reference << "'";
}

// Verdicts by hand: each row is a mathematical fact about the two spellings.
INSTANTIATE_TEST_SUITE_P(
    HandWritten, Equivalence,
    ::testing::Values(
        // equivalent
        Case{"\\frac{1}{2}", "0.5", true}, Case{"1/2", "\\frac{1}{2}", true},
        Case{"0.5", "1/2", true}, Case{"\\dfrac12", "\\frac{1}{2}", true},
        Case{"2\\sqrt{3}", "\\sqrt{12}", true}, Case{"033", "33", true}, Case{"25", "025", true},
        Case{"70.", "70", true}, Case{"$588$", "588", true}, Case{"-1,000,000", "-1000000", true},
        Case{"4.492", "4.492%", true}, Case{"\\frac{\\pi}{4}", "\\pi/4", true},
        Case{"\\frac{e^2}{4}", "\\frac{e^{2}}{4}", true}, Case{"0.25e^2", "\\frac{e^2}{4}", true},
        Case{"\\sqrt{2}-1", "-1+\\sqrt2", true}, Case{"5 \\cdot 2^{x}", "5\\cdot2^x", true},
        Case{"5\\times 2^x", "5\\cdot2^x", true}, Case{"\\infty", "\\infty", true},
        Case{"(1, 2)", "(1,2)", true}, Case{"\\left(\\frac{1}{2}, 3\\right)", "(0.5,3)", true},
        Case{"2^{10}", "1024", true}, Case{"\\sqrt[3]{27}", "3", true}, Case{"3!", "6", true},
        Case{"45^\\circ", "45", true}, Case{"x=7", "7", true}, Case{"10\\text{ cm}", "10", true},
        Case{"\\frac{274}{15}", "274/15", true}, Case{"-0.5244", "-.5244", true},
        Case{"2(x+1)", "2x+2", true}, Case{"\\frac{1}{3}", "0.3333333333333333", true},
        // not equivalent
        Case{"\\frac{1}{3}", "0.33", false}, Case{"33", "34", false},
        Case{"0.5", "\\frac{1}{3}", false}, Case{"\\sqrt{12}", "3\\sqrt{2}", false},
        Case{"5\\cdot2^x", "5\\cdot3^x", false}, Case{"2x", "2y", false},
        Case{"(1,2)", "(2,1)", false}, Case{"(1,2)", "[1,2]", false},
        Case{"\\infty", "-\\infty", false}, Case{"3.0722", "3.07", false}, Case{"", "0", false},
        Case{"0", "", false}, Case{"1,2", "12", false}, Case{"\\frac{e^2}{4}", "1.847", false},
        Case{"-44791", "44791", false}));

TEST(GradeResponse, FindsAndJudgesTheBox) {
  GradeResult ok = grade_response("Thus the total is \\boxed{\\dfrac{9}{2}}.", "\\frac{9}{2}");
  EXPECT_TRUE(ok.correct);
  EXPECT_EQ(ok.extracted, "\\dfrac{9}{2}");
  GradeResult wrong = grade_response("We get \\boxed{4}.", "\\frac{9}{2}");
  EXPECT_FALSE(wrong.correct);
  GradeResult none = grade_response("The answer is 4.5", "\\frac{9}{2}");
  EXPECT_FALSE(none.correct);
  EXPECT_FALSE(none.extracted.has_value());
}

}  // namespace
}  // namespace hardkv::eval
