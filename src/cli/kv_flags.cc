// HARD-KV CLI flags shared by generate, bench and eval.
#include "cli/kv_flags.h"

#include <fmt/format.h>

#include <fstream>

#include "core/error.h"
#include "hardkv/llm.h"

namespace hardkv::cli {

void add_kv_flags(CLI::App* app, KVFlags& f) {
  compress::CompressionConfig& c = f.compression;
  const std::string g = "HARD-KV (docs/COMPRESSION.md)";
  app->add_option("--kv-mode", f.kv_mode,
                  "KV cache: dense, or hard (head-adaptive compression; on CUDA the selection runs on the host)")
      ->check(CLI::IsMember({"dense", "hard"}))
      ->capture_default_str()
      ->group(g);
  app->add_option("--strategy", c.strategy, "hard: scoring (attn, snapkv, rkv, streaming, h2o)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--allocation", c.allocation,
                  "hard: per-head counts (uniform, hard, adakv, pyramid)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--budget", c.budget,
                  "hard: tokens a head keeps, sinks and window included (the paper's budget "
                  "1024 = 1152 here)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--upper-budget", c.upper_budget, "hard: per-head cap, sinks and window included")
      ->capture_default_str()
      ->group(g);
  app->add_option("--p-attn", c.p_attn, "hard allocation: attention mass a head keeps, (0, 1]")
      ->capture_default_str()
      ->group(g);
  app->add_option("--window", c.window, "hard: most recent tokens always kept")
      ->capture_default_str()
      ->group(g);
  app->add_option("--sinks", c.sinks, "hard: first tokens always kept")
      ->capture_default_str()
      ->group(g);
  app->add_option("--interval", c.interval, "hard: decode steps between compression events")
      ->capture_default_str()
      ->group(g);
  app->add_option("--obs-window", c.obs_window, "hard: observation queries kept for scoring")
      ->capture_default_str()
      ->group(g);
  app->add_option("--page-size", c.page_size, "hard: tokens per head-page (condensed tier)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--rewrite-threshold", c.rewrite_threshold,
                  "hard: masked share of a head's stored tokens that triggers a rewrite")
      ->capture_default_str()
      ->group(g);
  app->add_flag("--rewrite-every-time", c.rewrite_every_time,
                "hard: rewrite at every event (the reference code's behaviour)")
      ->group(g);
  app->add_option("--head-pages", f.num_head_pages,
                  "hard: head-pages per layer (-1 = the dense pool's tokens per kv-head)")
      ->capture_default_str()
      ->group(g);
  app->add_option("--stats-out", f.stats_out,
                  "hard: write JSON statistics (per layer x head kept counts and temperatures, "
                  "memory per tier over steps, scoring/rewrite time)")
      ->group(g);
}

void apply_kv_flags(const KVFlags& f, EngineConfig& config) {
  config.kv_mode = f.kv_mode;
  config.compression = f.compression;
  config.num_head_pages = f.num_head_pages;
}

void write_kv_stats(const KVFlags& f, const LLM& llm) {
  if (f.stats_out.empty()) return;
  std::ofstream out(f.stats_out);
  HARDKV_CHECK(out.good(), kInvalidArgument, "--stats-out {}: cannot open for writing",
               f.stats_out);
  const std::string js = llm.kv_stats_json();
  out << (js == "{}" ? std::string("{\"kv_mode\": \"dense\"}") : js) << "\n";
  HARDKV_CHECK(out.good(), kInvalidArgument, "--stats-out {}: write failed", f.stats_out);
}

std::string kv_method_label(const EngineConfig& config) {
  if (config.kv_mode != "hard") return "full";
  return config.compression.strategy + "/" + config.compression.allocation;
}

std::string kv_budget_label(const EngineConfig& config) {
  if (config.kv_mode != "hard") return "full";
  const compress::CompressionConfig& c = config.compression;
  if (c.allocation == "uniform") return fmt::format("{}", c.budget);
  return fmt::format("{} (cap {})", c.budget, c.upper_budget);
}

}  // namespace hardkv::cli
