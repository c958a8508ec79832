// Evaluation datasets and saved responses, both JSONL: a dataset row has `problem` and `answer`
// (and optionally `id`); a response row has `id` and `text` (several rows per id allowed).
#pragma once

#include <string>
#include <vector>

namespace hardkv::eval {

struct DatasetRow {
  std::string id;  // the row's `id` (a number is written in decimal), else its 0-based row index
  std::string problem;  // the question text
  std::string answer;   // the reference answer (a JSON number is written in decimal)
};

struct Response {
  std::string id;    // the dataset row it answers
  std::string text;  // the whole generated text
};

// Reads a dataset; throws kBadFile naming the file and 1-based line for a row that is not a JSON
// object, lacks `problem` or `answer`, or repeats an id. Blank lines are skipped (and do not
// count as rows for the index).
std::vector<DatasetRow> load_dataset(const std::string& path);

// Reads saved responses; throws kBadFile naming the file and line for a row without `id` or
// `text`.
std::vector<Response> load_responses(const std::string& path);

}  // namespace hardkv::eval
