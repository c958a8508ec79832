// Dataset -> chat prompts -> LLM::generate -> grade -> samples.jsonl, summary.json, summary.md.
#include "eval/eval_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "eval/dataset.h"
#include "eval/grader.h"
#include "hardkv/llm.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hardkv::eval {

std::vector<EvalRequest> build_eval_requests(const std::vector<DatasetRow>& rows, int num_samples,
                                             const SamplingParams& sampling,
                                             const ChatTemplate& chat, const Tokenizer& tokenizer,
                                             int max_model_len) {
  HARDKV_CHECK(num_samples >= 1, kInvalidArgument, "--samples must be >= 1, got {}", num_samples);
  std::vector<EvalRequest> requests;
  for (size_t r = 0; r < rows.size(); ++r) {
    std::vector<ChatMessage> messages = {{"user", rows[r].problem}};
    std::string prompt = chat.render(messages);
    const int prompt_len = static_cast<int>(tokenizer.encode(prompt).size());
    for (int s = 0; s < num_samples; ++s) {
      EvalRequest q;
      q.row_idx = static_cast<int>(r);
      q.sample_idx = s;
      q.prompt = prompt;
      q.params = sampling;
      q.params.max_tokens = std::max(1, std::min(sampling.max_tokens, max_model_len - prompt_len));
      if (sampling.seed >= 0) q.params.seed = sampling.seed + static_cast<int64_t>(requests.size());
      requests.push_back(std::move(q));
    }
  }
  return requests;
}

EvalSummary run_eval(const EvalOptions& options) {
  HARDKV_CHECK(options.num_samples >= 1, kInvalidArgument, "--samples must be >= 1, got {}",
               options.num_samples);
  std::vector<DatasetRow> rows = load_dataset(options.dataset_path);
  if (options.limit > 0 && static_cast<size_t>(options.limit) < rows.size()) {
    rows.resize(options.limit);
  }
  std::filesystem::create_directories(options.out_dir);

  LLM llm(options.model_dir, options.engine);
  const Tokenizer& tokenizer = llm.tokenizer();
  ChatTemplate chat = ChatTemplate::detect(tokenizer.chat_template());
  const std::vector<EvalRequest> requests =
      build_eval_requests(rows, options.num_samples, options.sampling, chat, tokenizer,
                          llm.stats().max_model_len);
  std::vector<std::string> prompts;
  std::vector<SamplingParams> params;
  for (const EvalRequest& q : requests) {
    prompts.push_back(q.prompt);
    params.push_back(q.params);
  }
  std::vector<RequestOutput> outputs = llm.generate(prompts, params);
  if (!options.stats_out.empty()) {
    std::ofstream stats(options.stats_out);
    HARDKV_CHECK(stats.good(), kRuntime, "cannot write {}", options.stats_out);
    stats << llm.kv_stats_json() << "\n";
  }
  return grade_eval(options, rows, requests, outputs);
}

EvalSummary grade_eval(const EvalOptions& options, const std::vector<DatasetRow>& rows,
                       const std::vector<EvalRequest>& requests,
                       const std::vector<RequestOutput>& outputs) {
  HARDKV_CHECK(requests.size() == outputs.size(), kInvalidArgument,
               "{} outputs for {} requests", outputs.size(), requests.size());
  EvalSummary summary;
  summary.num_problems = static_cast<int>(rows.size());
  std::ofstream samples(std::filesystem::path(options.out_dir) / "samples.jsonl");
  HARDKV_CHECK(samples.good(), kRuntime, "cannot write {}/samples.jsonl", options.out_dir);
  double total_tokens = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const DatasetRow& row = rows.at(requests[i].row_idx);
    const RequestOutput& out = outputs[i];
    GradeResult grade = grade_response(out.text, row.answer);
    summary.num_samples += 1;
    summary.num_correct += grade.correct ? 1 : 0;
    summary.num_truncated += out.finish_reason == FinishReason::kLength ? 1 : 0;
    total_tokens += static_cast<double>(out.token_ids.size());
    nlohmann::json line = {{"id", row.id},
                           {"sample", requests[i].sample_idx},
                           {"answer", row.answer},
                           {"extracted", grade.extracted.value_or("")},
                           {"score", grade.correct ? 1 : 0},
                           {"num_tokens", out.token_ids.size()},
                           {"finish_reason", finish_reason_name(out.finish_reason)},
                           {"text", out.text}};
    if (!out.error.empty()) line["error"] = out.error;
    samples << line.dump() << "\n";
  }
  if (summary.num_samples > 0) {
    double n = summary.num_samples;
    summary.accuracy = summary.num_correct / n;
    summary.ci95 = 1.96 * std::sqrt(summary.accuracy * (1 - summary.accuracy) / n);
    summary.mean_generated_tokens = total_tokens / n;
  }

  nlohmann::json js = {{"model", options.model_dir},
                       {"dataset", options.dataset_path},
                       {"method", options.method_label},
                       {"budget", options.budget_label},
                       {"kv_mode", options.engine.kv_mode},
                       {"budget_tokens", options.engine.kv_mode == "hard"
                                             ? nlohmann::json(options.engine.compression.budget)
                                             : nlohmann::json(nullptr)},
                       {"samples_per_problem", options.num_samples},
                       {"num_problems", summary.num_problems},
                       {"num_samples", summary.num_samples},
                       {"num_correct", summary.num_correct},
                       {"accuracy", summary.accuracy},
                       {"ci95", summary.ci95},
                       {"mean_generated_tokens", summary.mean_generated_tokens},
                       {"num_truncated", summary.num_truncated},
                       {"temperature", options.sampling.temperature},
                       {"top_k", options.sampling.top_k},
                       {"top_p", options.sampling.top_p},
                       {"max_tokens", options.sampling.max_tokens}};
  std::ofstream(std::filesystem::path(options.out_dir) / "summary.json") << js.dump(2) << "\n";
  std::ofstream md(std::filesystem::path(options.out_dir) / "summary.md");
  md << fmt::format(
      "Dataset `{}`, model `{}`, {} problems × {} samples, T={}, top-k {}, top-p {}, "
      "max tokens {}.\n\n",
      options.dataset_path, options.model_dir, summary.num_problems, options.num_samples,
      options.sampling.temperature, options.sampling.top_k, options.sampling.top_p,
      options.sampling.max_tokens);
  md << "| method | budget | accuracy | ±95% | mean generated tokens | truncated |\n";
  md << "| --- | --- | --- | --- | --- | --- |\n";
  md << fmt::format("| {} | {} | {:.3f} | {:.3f} | {:.1f} | {} |\n", options.method_label,
                    options.budget_label, summary.accuracy, summary.ci95,
                    summary.mean_generated_tokens, summary.num_truncated);
  return summary;
}

}  // namespace hardkv::eval
