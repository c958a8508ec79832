// `hardkv eval`: runs a dataset through the engine (chat template, the paper's sampling, every
// row × sample in one batch), grades the final \boxed{} and writes per-sample JSONL + a Markdown
// summary table.
#pragma once

#include <string>

#include "hardkv/engine_config.h"
#include "hardkv/sampling_params.h"

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

// Throws Error on a bad dataset, model or output directory.
EvalSummary run_eval(const EvalOptions& options);

}  // namespace hardkv::eval
