// `hardkv grade --dataset D.jsonl --responses R.jsonl [--json]`: grades saved responses (the last
// \boxed{} of each) against a dataset's answers without running a model and prints the accuracy.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "eval/dataset.h"
#include "eval/grade_report.h"

namespace hardkv::cli {
namespace {

struct GradeOptions {
  std::string dataset_path;
  std::string responses_path;
  bool json = false;
};

int run_grade(const GradeOptions& options) {
  auto dataset = eval::load_dataset(options.dataset_path);
  auto responses = eval::load_responses(options.responses_path);
  eval::GradeReport report = eval::grade_responses(dataset, responses);
  if (options.json) {
    nlohmann::json out;
    out["dataset"] = options.dataset_path;
    out["accuracy"] = report.accuracy();
    out["num_responses"] = report.num_responses;
    out["num_correct"] = report.num_correct;
    out["num_problems"] = report.problems.size();
    out["num_problems_answered"] = report.num_problems_answered;
    nlohmann::json per_id = nlohmann::json::array();
    for (const auto& p : report.problems) {
      per_id.push_back({{"id", p.id},
                        {"answer", p.reference},
                        {"num_responses", p.num_responses},
                        {"num_correct", p.num_correct},
                        {"extracted", p.extracted}});
    }
    out["per_id"] = per_id;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("accuracy %.4f (%d/%d responses correct; %d/%zu problems answered)\n",
              report.accuracy(), report.num_correct, report.num_responses,
              report.num_problems_answered, report.problems.size());
  return 0;
}

CommandRegistrar reg("grade", "Grade saved responses (JSONL id,text) against a dataset's answers",
                     [](CLI::App* app) {
                       auto options = std::make_shared<GradeOptions>();
                       app->add_option("--dataset", options->dataset_path,
                                       "dataset JSONL with problem, answer and optional id")
                           ->required();
                       app->add_option("--responses", options->responses_path,
                                       "responses JSONL with id and text (several per id allowed)")
                           ->required();
                       app->add_flag("--json", options->json,
                                     "print JSON with per-id pass counts and extracted answers");
                       return [options]() { return run_grade(*options); };
                     });

}  // namespace
}  // namespace hardkv::cli
