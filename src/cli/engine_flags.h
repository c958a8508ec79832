// Engine flags shared by `generate` and `bench`: backend, KV pool, batching limits, prefix
// caching and the HARD-KV settings (kv_flags.h), resolved into one EngineConfig.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/kv_flags.h"
#include "hardkv/engine_config.h"

namespace hardkv::cli {

struct EngineFlags {
  EngineConfig engine;
  bool no_prefix_caching = false;
  bool no_graph_warmup = false;
  bool no_async_scheduling = false;
  CLI::Option* max_num_seqs_opt = nullptr;
  KVFlags kv;
};

// Adds the flags to `app`, writing into `flags` (which must outlive the parse).
// `max_num_seqs_default` describes the default of --max-num-seqs in the help text.
void add_engine_flags(CLI::App* app, EngineFlags& flags, const std::string& max_num_seqs_default);

// The EngineConfig for a run of `num_requests` requests: unless --max-num-seqs was given, at most
// that many sequences run at once (so the KV pool is sized for them, not for 512).
EngineConfig engine_config_from_flags(const EngineFlags& flags, int num_requests);

}  // namespace hardkv::cli
