// HARD-KV flags shared by `generate`, `bench` and `eval`: --kv-mode and the compression settings
// (defaults: docs/COMPRESSION.md), --stats-out, and the method label of a configuration.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "hardkv/engine_config.h"

namespace hardkv {
class LLM;
}

namespace hardkv::cli {

struct KVFlags {
  std::string kv_mode = "dense";
  compress::CompressionConfig compression;
  int num_head_pages = -1;
  std::string stats_out;  // JSON file for HARD-KV statistics ("" = none)
};

// Adds --kv-mode, --strategy, --allocation, --budget, --upper-budget, --p-attn, --window, --sinks,
// --interval, --obs-window, --page-size, --rewrite-threshold, --rewrite-every-time, --head-pages
// and --stats-out to `app`, writing into `flags` (which must outlive the parse).
void add_kv_flags(CLI::App* app, KVFlags& flags);

// Copies the flags into `config` (kv_mode, compression, num_head_pages).
void apply_kv_flags(const KVFlags& flags, EngineConfig& config);

// Writes llm.kv_stats_json() to flags.stats_out when set (dense mode writes {"kv_mode": "dense"}).
void write_kv_stats(const KVFlags& flags, const LLM& llm);

// "full" in dense mode, else "<strategy>/<allocation>" (e.g. "rkv/hard").
std::string kv_method_label(const EngineConfig& config);
// "full" in dense mode, else the budget (with the upper budget for non-uniform allocations).
std::string kv_budget_label(const EngineConfig& config);

}  // namespace hardkv::cli
