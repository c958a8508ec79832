// `hardkv ppl --model DIR --text FILE --out-dir OUT`: perplexity of a text scored through the
// engine (teacher forcing), with the HARD-KV flags, so compressed-cache perplexity can be compared
// with dense; writes OUT/ppl.json (per-chunk NLL) and OUT/ppl.md.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "eval/perplexity.h"

namespace hardkv::cli {
namespace {

CommandRegistrar reg(
    "ppl", "Perplexity of a text through the engine (dense or HARD-KV cache)", [](CLI::App* app) {
      auto o = std::make_shared<eval::PerplexityOptions>();
      auto kv = std::make_shared<KVFlags>();
      o->model_dir = "models/hardkv-tiny";
      o->out_dir = "ppl-out";
      app->add_option("--model", o->model_dir, "model directory (HF format)")
          ->capture_default_str();
      app->add_option("--text", o->text_path,
                      "UTF-8 text file (special tokens written in it, e.g. <|endoftext|>, become "
                      "their ids)")
          ->required();
      app->add_option("--out-dir", o->out_dir, "where ppl.json and ppl.md go")
          ->capture_default_str();
      app->add_option("--chunk-len", o->chunk_len, "tokens per chunk, prompt included")
          ->capture_default_str();
      app->add_option("--prompt-len", o->prompt_len,
                      "unscored prefix of each chunk (prefill); the rest is decoded, so "
                      "compression events run while it is scored")
          ->capture_default_str();
      app->add_option("--max-chunks", o->max_chunks, "only the first N chunks (0 = all)")
          ->capture_default_str();
      app->add_option("--max-model-len", o->engine.max_model_len, "context length")
          ->capture_default_str();
      app->add_option("--backend", o->engine.backend, "auto | cpu | cuda")->capture_default_str();
      add_kv_flags(app, *kv);
      return [o, kv]() {
        apply_kv_flags(*kv, o->engine);
        o->method_label = kv_method_label(o->engine);
        o->budget_label = kv_budget_label(o->engine);
        o->stats_out = kv->stats_out;
        const eval::PerplexityResult r = eval::run_perplexity(*o);
        std::printf(
            "%s, budget %s: perplexity %.4f (mean NLL %.5f nats over %lld tokens, %zu chunks); "
            "wrote %s/{ppl.json,ppl.md}\n",
            o->method_label.c_str(), o->budget_label.c_str(), r.perplexity(), r.mean_nll(),
            static_cast<long long>(r.num_scored), r.chunks.size(), o->out_dir.c_str());
        return 0;
      };
    });

}  // namespace
}  // namespace hardkv::cli
