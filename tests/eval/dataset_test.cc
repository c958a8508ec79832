// Dataset/response loading and the self-consistency check of the grader on the three shipped
// datasets: every answer must grade correct against a response boxing that same answer.
#include "eval/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "eval/grade_report.h"
#include "eval/grader.h"

namespace hardkv::eval {
namespace {

namespace fs = std::filesystem;

// The datasets live in ../shared/datasets beside the checkout (tests/fixtures/../../../shared).
fs::path datasets_dir() {
  return fs::path(HARDKV_FIXTURES_DIR) / ".." / ".." / ".." / "shared" / "datasets";
}

fs::path write_temp(const std::string& name, const std::string& text) {
  fs::path path = fs::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

class SharedDataset : public ::testing::TestWithParam<const char*> {};

TEST_P(SharedDataset, EveryAnswerGradesCorrectAgainstItself) {
  fs::path path = datasets_dir() / GetParam();
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found (../shared is beside the checkout)";
  std::vector<DatasetRow> rows = load_dataset(path.string());
  ASSERT_GE(rows.size(), 29u);
  for (const DatasetRow& row : rows) {
    std::string response =
        "Let me think step by step. ... Therefore the final answer is $\\boxed{" + row.answer +
        "}$. I hope it is correct.";
    GradeResult result = grade_response(response, row.answer);
    EXPECT_TRUE(result.correct) << GetParam() << " id " << row.id << " answer '" << row.answer
                                << "' extracted '" << result.extracted.value_or("<none>") << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Files, SharedDataset,
                         ::testing::Values("aime24.jsonl", "aime25.jsonl", "umathtop50.jsonl"));

TEST(LoadDataset, IdsFromFieldOrRowIndex) {
  fs::path path = write_temp("hardkv_eval_ds1.jsonl",
                             "{\"problem\":\"p0\",\"answer\":\"1\"}\n"
                             "\n"
                             "{\"problem\":\"p1\",\"answer\":2,\"id\":60}\n"
                             "{\"problem\":\"p2\",\"answer\":\"x\"}\n");
  std::vector<DatasetRow> rows = load_dataset(path.string());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, "0");
  EXPECT_EQ(rows[1].id, "60");
  EXPECT_EQ(rows[1].answer, "2");
  EXPECT_EQ(rows[2].id, "2");
  EXPECT_EQ(rows[2].problem, "p2");
}

TEST(LoadDataset, BadRowNamesFileAndLine) {
  fs::path path = write_temp("hardkv_eval_ds2.jsonl",
                             "{\"problem\":\"p0\",\"answer\":\"1\"}\n"
                             "{\"problem\":\"p1\"}\n");
  try {
    load_dataset(path.string());
    FAIL() << "expected an error for the row without an answer";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadFile);
    EXPECT_NE(e.message().find(path.string() + ":2:"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("answer"), std::string::npos) << e.message();
  }
  fs::path bad_json = write_temp("hardkv_eval_ds3.jsonl", "{\"problem\":\"p0\",\n");
  EXPECT_THROW(load_dataset(bad_json.string()), Error);
  EXPECT_THROW(load_dataset("/nonexistent/hardkv.jsonl"), Error);
}

TEST(GradeResponses, CountsPerIdAndRejectsUnknownIds) {
  fs::path ds = write_temp("hardkv_eval_ds4.jsonl",
                           "{\"id\":\"a\",\"problem\":\"p\",\"answer\":\"\\\\frac{1}{2}\"}\n"
                           "{\"id\":\"b\",\"problem\":\"q\",\"answer\":\"33\"}\n"
                           "{\"id\":\"c\",\"problem\":\"r\",\"answer\":\"5\"}\n");
  fs::path rs = write_temp("hardkv_eval_rs4.jsonl",
                           "{\"id\":\"a\",\"text\":\"so \\\\boxed{0.5}\"}\n"
                           "{\"id\":\"a\",\"text\":\"so \\\\boxed{0.33}\"}\n"
                           "{\"id\":\"b\",\"text\":\"\\\\boxed{033}\"}\n"
                           "{\"id\":\"b\",\"text\":\"no box\"}\n");
  GradeReport report = grade_responses(load_dataset(ds.string()), load_responses(rs.string()));
  EXPECT_EQ(report.num_responses, 4);
  EXPECT_EQ(report.num_correct, 2);
  EXPECT_DOUBLE_EQ(report.accuracy(), 0.5);
  EXPECT_EQ(report.num_problems_answered, 2);
  ASSERT_EQ(report.problems.size(), 3u);
  EXPECT_EQ(report.problems[0].num_correct, 1);
  EXPECT_EQ(report.problems[1].num_correct, 1);
  EXPECT_EQ(report.problems[2].num_responses, 0);
  EXPECT_EQ(report.problems[1].extracted[1], "");

  fs::path unknown =
      write_temp("hardkv_eval_rs5.jsonl", "{\"id\":\"zz\",\"text\":\"\\\\boxed{1}\"}\n");
  EXPECT_THROW(grade_responses(load_dataset(ds.string()), load_responses(unknown.string())), Error);
}

}  // namespace
}  // namespace hardkv::eval
