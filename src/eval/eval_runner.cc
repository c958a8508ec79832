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
  const int max_model_len = llm.stats().max_model_len;

  // One request per (row, sample); each sample gets its own seed when a seed is set.
  std::vector<std::string> prompts;
  std::vector<SamplingParams> params;
  for (const DatasetRow& row : rows) {
    std::vector<ChatMessage> messages = {{"user", row.problem}};
    std::string prompt = chat.render(messages);
    int prompt_len = static_cast<int>(tokenizer.encode(prompt).size());
    for (int s = 0; s < options.num_samples; ++s) {
      SamplingParams p = options.sampling;
      p.max_tokens = std::max(1, std::min(p.max_tokens, max_model_len - prompt_len));
      if (p.seed >= 0) p.seed = options.sampling.seed + static_cast<int64_t>(prompts.size());
      prompts.push_back(prompt);
      params.push_back(p);
    }
  }
  std::vector<RequestOutput> outputs = llm.generate(prompts, params);
  if (!options.stats_out.empty()) {
    std::ofstream stats(options.stats_out);
    HARDKV_CHECK(stats.good(), kRuntime, "cannot write {}", options.stats_out);
    stats << llm.kv_stats_json() << "\n";
  }

  EvalSummary summary;
  summary.num_problems = static_cast<int>(rows.size());
  std::ofstream samples(std::filesystem::path(options.out_dir) / "samples.jsonl");
  HARDKV_CHECK(samples.good(), kRuntime, "cannot write {}/samples.jsonl", options.out_dir);
  double total_tokens = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const DatasetRow& row = rows[i / options.num_samples];
    const RequestOutput& out = outputs[i];
    GradeResult grade = grade_response(out.text, row.answer);
    summary.num_samples += 1;
    summary.num_correct += grade.correct ? 1 : 0;
    summary.num_truncated += out.finish_reason == FinishReason::kLength ? 1 : 0;
    total_tokens += static_cast<double>(out.token_ids.size());
    nlohmann::json line = {{"id", row.id},
                           {"sample", static_cast<int>(i % options.num_samples)},
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
