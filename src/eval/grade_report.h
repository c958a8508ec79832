// Grading of many saved responses against a dataset: per-problem pass counts and accuracy.
#pragma once

#include <string>
#include <vector>

#include "eval/dataset.h"

namespace hardkv::eval {

struct ProblemGrade {
  std::string id;
  std::string reference;  // the dataset's answer
  int num_responses = 0;
  int num_correct = 0;
  std::vector<std::string> extracted;  // each response's boxed answer ("" when none)
};

struct GradeReport {
  std::vector<ProblemGrade> problems;  // in dataset order
  int num_responses = 0;
  int num_correct = 0;
  int num_problems_answered = 0;  // problems with at least one response
  // Mean correctness over all responses (0 when there are none).
  double accuracy() const {
    return num_responses == 0 ? 0.0 : static_cast<double>(num_correct) / num_responses;
  }
};

// Throws kInvalidArgument for a response whose id is not in the dataset.
GradeReport grade_responses(const std::vector<DatasetRow>& dataset,
                            const std::vector<Response>& responses);

}  // namespace hardkv::eval
