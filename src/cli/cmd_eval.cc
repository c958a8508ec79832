// `hardkv eval --model DIR --dataset D.jsonl --out-dir OUT`: generates answers with the engine
// (chat template, paper sampling: T 0.6, top-k 20, top-p 0.95, 32768 tokens), grades them and
// writes OUT/samples.jsonl, OUT/summary.json and OUT/summary.md.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "eval/eval_runner.h"

namespace hardkv::cli {
namespace {

CommandRegistrar reg(
    "eval", "Run a dataset through the model, grade the \\boxed{} answers, write a table",
    [](CLI::App* app) {
      auto o = std::make_shared<eval::EvalOptions>();
      auto kv = std::make_shared<KVFlags>();
      o->model_dir = "models/hardkv-tiny";
      o->out_dir = "eval-out";
      o->sampling.temperature = 0.6f;
      o->sampling.top_k = 20;
      o->sampling.top_p = 0.95f;
      o->sampling.max_tokens = 32768;
      o->sampling.seed = 0;
      app->add_option("--model", o->model_dir, "model directory (HF format)");
      app->add_option("--dataset", o->dataset_path, "JSONL with problem, answer, optional id")
          ->required();
      app->add_option("--out-dir", o->out_dir, "where samples.jsonl and summary.{json,md} go");
      app->add_option("--samples", o->num_samples, "responses per problem");
      app->add_option("--limit", o->limit, "only the first N problems (0 = all)");
      app->add_option("--temperature", o->sampling.temperature,
                      "sampling temperature (0 = greedy)");
      app->add_option("--top-k", o->sampling.top_k, "top-k (0 = off)");
      app->add_option("--top-p", o->sampling.top_p, "top-p");
      app->add_option("--max-tokens", o->sampling.max_tokens,
                      "generated tokens at most (clamped to the context left)");
      app->add_option("--seed", o->sampling.seed, "base seed (< 0: nondeterministic)");
      app->add_option("--max-model-len", o->engine.max_model_len, "context length");
      app->add_option("--backend", o->engine.backend, "auto | cpu | cuda");
      add_kv_flags(app, *kv);
      return [o, kv]() {
        apply_kv_flags(*kv, o->engine);
        o->method_label = kv_method_label(o->engine);
        o->budget_label = kv_budget_label(o->engine);
        o->stats_out = kv->stats_out;
        eval::EvalSummary s = eval::run_eval(*o);
        std::printf(
            "%s, budget %s: accuracy %.4f ± %.4f (%d/%d samples, %d problems), mean generated %.1f "
            "tokens, "
            "%d truncated; wrote %s/{samples.jsonl,summary.json,summary.md}\n",
            o->method_label.c_str(), o->budget_label.c_str(), s.accuracy, s.ci95, s.num_correct,
            s.num_samples, s.num_problems, s.mean_generated_tokens, s.num_truncated,
            o->out_dir.c_str());
        return 0;
      };
    });

}  // namespace
}  // namespace hardkv::cli
