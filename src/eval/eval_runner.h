// `hardkv eval`: runs a dataset through the engine (chat template, the paper's sampling, every
// row × sample in one batch), grades the final \boxed{} and writes per-sample JSONL + a Markdown
// summary table.
#pragma once

#include <string>
#include <vector>

#include "eval/dataset.h"
#include "hardkv/engine_config.h"
#include "hardkv/request_output.h"
#include "hardkv/sampling_params.h"

namespace hardkv {
class ChatTemplate;
class Tokenizer;
}  // namespace hardkv

namespace hardkv::eval {

struct EvalOptions {
  std::string model_dir;
  std::string dataset_path;
  std::string out_dir;      // samples.jsonl, summary.json, summary.md are written here
  int num_samples = 1;      // responses per problem
  int limit = 0;            // > 0: only the first `limit` rows
  SamplingParams sampling;  // max_tokens is clamped per prompt to the context left
  EngineConfig engine;
  std::string method_label = "full";  // the table's method column: full, or strategy/allocation
  std::string budget_label = "full";  // the table's budget column
  std::string stats_out;              // HARD-KV statistics JSON path ("" = none)
};

struct EvalSummary {
  int num_problems = 0;
  int num_samples = 0;
  int num_correct = 0;
  double accuracy = 0;
  double ci95 = 0;  // normal-approximation half-width over samples
  double mean_generated_tokens = 0;
  int num_truncated = 0;  // finished by the length limit
};

struct EvalRequest {
  int row_idx = 0;     // index into the dataset rows
  int sample_idx = 0;  // 0 .. num_samples - 1
  std::string prompt;  // the problem as one user turn, chat template applied
  SamplingParams params;
};

// One request per (row, sample), row-major. Request i gets seed sampling.seed + i when
// sampling.seed >= 0 (else stays nondeterministic) and max_tokens clamped to
// [1, max_model_len - prompt tokens].
std::vector<EvalRequest> build_eval_requests(const std::vector<DatasetRow>& rows, int num_samples,
                                             const SamplingParams& sampling,
                                             const ChatTemplate& chat, const Tokenizer& tokenizer,
                                             int max_model_len);

// Grades outputs[i], the response to requests[i], against its row's answer; writes
// samples.jsonl, summary.json and summary.md to options.out_dir (which must exist).
EvalSummary grade_eval(const EvalOptions& options, const std::vector<DatasetRow>& rows,
                       const std::vector<EvalRequest>& requests,
                       const std::vector<RequestOutput>& outputs);

// load_dataset -> build_eval_requests -> LLM::generate (one batch) -> grade_eval.
// Throws Error on a bad dataset, model or output directory.
EvalSummary run_eval(const EvalOptions& options);

}  // namespace hardkv::eval
