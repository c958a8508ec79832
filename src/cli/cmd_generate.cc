// `hardkv generate`: runs prompts through the engine (continuous batching, paged + prefix-cached
// KV). One prompt streams its text to stdout; several print in input order; --json prints one JSON
// object per prompt (text, token_ids, finish_reason, metrics).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "core/error.h"
#include "hardkv/llm.h"

namespace hardkv::cli {
namespace {

struct GenerateFlags {
  std::string model_dir;
  std::vector<std::string> prompts;
  std::string prompts_file;
  bool json = false;
  SamplingParams sampling;
  EngineFlags engine;
};

std::vector<std::string> read_prompts_file(const std::string& path) {
  std::ifstream in(path);
  HARDKV_CHECK(in.good(), kInvalidArgument, "{}: cannot open the prompts file", path);
  std::vector<std::string> prompts;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      HARDKV_THROW(kInvalidArgument, "{}:{}: not valid JSON ({})", path, line_no, e.what());
    }
    HARDKV_CHECK(j.is_object() && j.contains("prompt") && j["prompt"].is_string(), kInvalidArgument,
                 "{}:{}: expected an object with a string \"prompt\"", path, line_no);
    prompts.push_back(j["prompt"].get<std::string>());
  }
  return prompts;
}

nlohmann::json metrics_json(const RequestMetrics& m) {
  return {{"num_prompt_tokens", m.num_prompt_tokens},
          {"num_output_tokens", m.num_output_tokens},
          {"num_cached_prompt_tokens", m.num_cached_prompt_tokens},
          {"num_preemptions", m.num_preemptions},
          {"time_to_first_token_s", m.time_to_first_token},
          {"time_per_output_token_s", m.time_per_output_token},
          {"e2e_latency_s", m.e2e_latency}};
}

int run_generate(GenerateFlags& f) {
  std::vector<std::string> prompts = f.prompts;
  if (!f.prompts_file.empty()) {
    std::vector<std::string> more = read_prompts_file(f.prompts_file);
    prompts.insert(prompts.end(), more.begin(), more.end());
  }
  HARDKV_CHECK(!prompts.empty(), kInvalidArgument,
               "no prompt given: pass -p TEXT (repeatable) or --prompts-file FILE.jsonl");
  f.sampling.validate();
  const EngineConfig config = engine_config_from_flags(f.engine, static_cast<int>(prompts.size()));
  LLM llm(f.model_dir, config);

  if (prompts.size() == 1 && !f.json) {
    // Stream the single prompt's text as it is decided.
    llm.add_request(prompts[0], f.sampling, [](const StreamEvent& ev) {
      if (!ev.text.empty()) {
        std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        std::fflush(stdout);
      }
    });
    RequestOutput out;
    while (llm.has_unfinished()) {
      for (RequestOutput& o : llm.step()) out = std::move(o);
    }
    std::fputc('\n', stdout);
    write_kv_stats(f.engine.kv, llm);
    HARDKV_CHECK(out.finish_reason != FinishReason::kError, kInvalidArgument, "{}", out.error);
    return 0;
  }

  std::vector<RequestOutput> outs = llm.generate(prompts, f.sampling);
  int failed = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const RequestOutput& o = outs[i];
    if (f.json) {
      nlohmann::json j = {{"index", i},
                          {"text", o.text},
                          {"token_ids", o.token_ids},
                          {"finish_reason", finish_reason_name(o.finish_reason)},
                          {"metrics", metrics_json(o.metrics)}};
      if (o.finish_reason == FinishReason::kError) j["error"] = o.error;
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else if (o.finish_reason == FinishReason::kError) {
      std::printf("--- prompt %zu: error ---\n", i);
      std::fprintf(stderr, "hardkv: prompt %zu: error: %s\n", i, o.error.c_str());
    } else {
      std::printf("--- prompt %zu ---\n%s\n", i, o.text.c_str());
    }
    failed += o.finish_reason == FinishReason::kError ? 1 : 0;
  }
  write_kv_stats(f.engine.kv, llm);
  return failed == 0 ? 0 : 1;
}

CommandRegistrar reg(
    "generate", "Generate text for one or more prompts with a HuggingFace checkpoint",
    [](CLI::App* app) {
      auto f = std::make_shared<GenerateFlags>();
      app->add_option("-m,--model", f->model_dir,
                      "Model directory (config.json, *.safetensors, "
                      "tokenizer.json)")
          ->required();
      app->add_option("-p,--prompt", f->prompts, "Prompt text (repeatable)");
      app->add_option("--prompts-file", f->prompts_file,
                      "JSONL file with one {\"prompt\": ...} object per line");
      app->add_flag("--json", f->json,
                    "Print one JSON object per prompt, in input order (text, token_ids, "
                    "finish_reason, metrics)");
      app->add_option("--max-tokens", f->sampling.max_tokens, "Tokens to generate at most")
          ->capture_default_str();
      app->add_option("--temperature", f->sampling.temperature, "Sampling temperature; 0 = greedy")
          ->capture_default_str();
      app->add_option("--top-k", f->sampling.top_k, "Keep the k most likely tokens (0 = off)")
          ->capture_default_str();
      app->add_option("--top-p", f->sampling.top_p, "Nucleus sampling mass (1 = off)")
          ->capture_default_str();
      app->add_option("--min-p", f->sampling.min_p, "Drop tokens below min_p * p_max (0 = off)")
          ->capture_default_str();
      app->add_option("--seed", f->sampling.seed,
                      "Random seed of every request (-1 = nondeterministic)")
          ->capture_default_str();
      app->add_option("--stop", f->sampling.stop, "Stop string (repeatable); not printed");
      app->add_option("--stop-token-id", f->sampling.stop_token_ids,
                      "Extra stop token id (repeatable)");
      app->add_flag("--ignore-eos", f->sampling.ignore_eos, "Keep generating past the EOS token");
      add_engine_flags(app, f->engine, "min(512, number of prompts)");
      return [f]() { return run_generate(*f); };
    });

}  // namespace
}  // namespace hardkv::cli
