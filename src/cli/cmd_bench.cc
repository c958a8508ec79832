// `hardkv bench`: nano-vLLM's bench.py workload — num_seqs requests of random token ids with
// input and output lengths uniform in the given ranges, ignore_eos, max_tokens = output length —
// run through the engine; prints requests, output tokens, seconds and output tokens/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "core/error.h"
#include "hardkv/llm.h"
#include "model/model_config.h"

namespace hardkv::cli {
namespace {

struct BenchFlags {
  std::string model_dir;
  int num_seqs = 256;
  std::string input_len = "100:1024";
  std::string output_len = "100:1024";
  uint64_t seed = 0;
  float temperature = 0.6f;  // bench.py's sampling temperature
  bool json = false;
  EngineFlags engine;
};

struct Range {
  int lo, hi;
};

Range parse_range(const std::string& s, const char* flag) {
  Range r{};
  const size_t colon = s.find(':');
  try {
    if (colon == std::string::npos) {
      r.lo = r.hi = std::stoi(s);
    } else {
      r.lo = std::stoi(s.substr(0, colon));
      r.hi = std::stoi(s.substr(colon + 1));
    }
  } catch (const std::exception&) {
    HARDKV_THROW(kInvalidArgument, "{} expects N or LO:HI, got '{}'", flag, s);
  }
  HARDKV_CHECK(r.lo >= 1 && r.lo <= r.hi, kInvalidArgument,
               "{} must be N or LO:HI with 1 <= LO <= HI, got '{}'", flag, s);
  return r;
}

int run_bench(const BenchFlags& f) {
  HARDKV_CHECK(f.num_seqs > 0, kInvalidArgument, "--num-seqs must be > 0, got {}", f.num_seqs);
  const Range in = parse_range(f.input_len, "--input-len");
  const Range out = parse_range(f.output_len, "--output-len");
  const EngineConfig config = engine_config_from_flags(f.engine, f.num_seqs);
  const int64_t vocab = load_model_config(f.model_dir).vocab_size;
  // bench.py draws ids in [0, 10000]; a smaller vocabulary bounds them.
  const int64_t max_id = std::min<int64_t>(10000, vocab - 1);

  std::mt19937_64 rng(f.seed);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  std::vector<std::vector<int32_t>> prompts(f.num_seqs);
  std::vector<SamplingParams> params(f.num_seqs);
  int64_t input_tokens = 0;
  for (int i = 0; i < f.num_seqs; ++i) {
    prompts[i].resize(uniform(in.lo, in.hi));
    for (int32_t& t : prompts[i]) t = static_cast<int32_t>(uniform(0, max_id));
    input_tokens += static_cast<int64_t>(prompts[i].size());
    params[i].temperature = f.temperature;
    params[i].ignore_eos = true;
    params[i].max_tokens = static_cast<int>(uniform(out.lo, out.hi));
    params[i].seed = static_cast<int64_t>(f.seed) * 1000003 + i;
  }

  LLM llm(f.model_dir, config);
  // Warm-up request (as bench.py), not timed.
  std::vector<std::vector<int32_t>> warm = {std::vector<int32_t>(16, 1)};
  SamplingParams wp;
  wp.max_tokens = 4;
  llm.generate(warm, wp, false);

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<RequestOutput> outs = llm.generate(prompts, params, !f.json);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t output_tokens = 0;
  int errors = 0;
  for (const RequestOutput& o : outs) {
    output_tokens += static_cast<int64_t>(o.token_ids.size());
    errors += o.finish_reason == FinishReason::kError ? 1 : 0;
  }
  const EngineStats st = llm.stats();
  const double tps = output_tokens / seconds;
  if (f.json) {
    nlohmann::json j = {{"requests", f.num_seqs},
                        {"input_tokens", input_tokens},
                        {"output_tokens", output_tokens},
                        {"seconds", seconds},
                        {"output_tokens_per_s", tps},
                        {"total_tokens_per_s", (input_tokens + output_tokens) / seconds},
                        {"errors", errors},
                        {"steps", st.num_steps},
                        {"preemptions", st.num_preemptions},
                        {"num_kv_blocks", st.num_kv_blocks},
                        {"kv_block_size", st.kv_block_size},
                        {"kv_mode", st.kv_mode},
                        {"kv_compression_events", st.kv_compression_events},
                        {"graph_captures", st.num_graph_captures},
                        {"graph_replays", st.num_graph_replays},
                        {"warmup_graphs", st.num_warmup_graphs},
                        {"warmup_seconds", st.warmup_seconds},
                        {"overlapped_steps", st.num_overlapped_steps},
                        {"decode_steps", st.num_decode_steps},
                        {"decode_step_seconds", st.decode_step_seconds},
                        {"prefill_step_seconds", st.prefill_step_seconds}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "Requests: %d, input tokens: %lld, output tokens: %lld, time: %.2fs, throughput: "
        "%.2f tok/s (%lld steps, %lld preemptions, %d KV blocks x %d tokens, %lld graph "
        "replays / %lld captures, %lld graphs captured at start in %.2fs%s)\n",
        f.num_seqs, static_cast<long long>(input_tokens), static_cast<long long>(output_tokens),
        seconds, tps, static_cast<long long>(st.num_steps),
        static_cast<long long>(st.num_preemptions), st.num_kv_blocks, st.kv_block_size,
        static_cast<long long>(st.num_graph_replays), static_cast<long long>(st.num_graph_captures),
        static_cast<long long>(st.num_warmup_graphs), st.warmup_seconds,
        errors ? ", SOME REQUESTS FAILED" : "");
  }
  if (!f.json) {
    std::printf(
        "Model steps: %lld decode-only %.2fs (%.2f ms/step), with prefill %.2fs (host time "
        "launching and waiting); %lld of %lld steps overlapped with the previous one\n",
        static_cast<long long>(st.num_decode_steps), st.decode_step_seconds,
        st.num_decode_steps ? 1e3 * st.decode_step_seconds / st.num_decode_steps : 0.0,
        st.prefill_step_seconds, static_cast<long long>(st.num_overlapped_steps),
        static_cast<long long>(st.num_steps));
  }
  if (st.kv_mode == "hard" && !f.json) {
    std::printf("HARD-KV: %s, budget %s, %lld compression events\n",
                kv_method_label(config).c_str(), kv_budget_label(config).c_str(),
                static_cast<long long>(st.kv_compression_events));
  }
  write_kv_stats(f.engine.kv, llm);
  return errors == 0 ? 0 : 1;
}

CommandRegistrar reg(
    "bench", "Throughput benchmark: nano-vLLM's bench.py workload on the engine",
    [](CLI::App* app) {
      auto f = std::make_shared<BenchFlags>();
      app->add_option("-m,--model", f->model_dir, "Model directory")->required();
      app->add_option("--num-seqs", f->num_seqs, "Requests")->capture_default_str();
      app->add_option("--input-len", f->input_len, "Prompt length N or LO:HI (uniform)")
          ->capture_default_str();
      app->add_option("--output-len", f->output_len, "Output length N or LO:HI (uniform)")
          ->capture_default_str();
      app->add_option("--seed", f->seed, "Workload seed")->capture_default_str();
      app->add_option("--temperature", f->temperature, "Sampling temperature")
          ->capture_default_str();
      app->add_flag("--json", f->json, "Print one JSON object");
      add_engine_flags(app, f->engine, "min(512, --num-seqs)");
      return [f]() { return run_bench(*f); };
    });

}  // namespace
}  // namespace hardkv::cli
