// Grades saved responses problem by problem.
#include "eval/grade_report.h"

#include <unordered_map>

#include "core/error.h"
#include "eval/grader.h"

namespace hardkv::eval {

GradeReport grade_responses(const std::vector<DatasetRow>& dataset,
                            const std::vector<Response>& responses) {
  GradeReport report;
  std::unordered_map<std::string, size_t> index;
  for (const DatasetRow& row : dataset) {
    index[row.id] = report.problems.size();
    report.problems.push_back(ProblemGrade{row.id, row.answer, 0, 0, {}});
  }
  for (const Response& response : responses) {
    auto it = index.find(response.id);
    HARDKV_CHECK(it != index.end(), kInvalidArgument,
                 "response id '{}' is not in the dataset (ids are the rows' 'id' fields, or "
                 "0-based row indices where rows have none)",
                 response.id);
    ProblemGrade& problem = report.problems[it->second];
    GradeResult result = grade_response(response.text, problem.reference);
    problem.num_responses += 1;
    problem.num_correct += result.correct ? 1 : 0;
    problem.extracted.push_back(result.extracted.value_or(""));
    report.num_responses += 1;
    report.num_correct += result.correct ? 1 : 0;
  }
  for (const ProblemGrade& problem : report.problems) {
    if (problem.num_responses > 0) report.num_problems_answered += 1;
  }
  return report;
}

}  // namespace hardkv::eval
