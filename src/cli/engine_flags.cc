// Engine flags shared by `generate` and `bench`.
#include "cli/engine_flags.h"

#include <algorithm>

namespace hardkv::cli {

void add_engine_flags(CLI::App* app, EngineFlags& f, const std::string& max_num_seqs_default) {
  EngineConfig& e = f.engine;
  app->add_option("--backend", e.backend, "cpu, cuda or auto")->capture_default_str();
  app->add_option("--block-size", e.kv_block_size, "KV cache block size in tokens")
      ->capture_default_str();
  app->add_option("--num-kv-blocks", e.num_kv_blocks,
                  "KV pool size in blocks (-1 = from the memory budget)")
      ->capture_default_str();
  app->add_option("--kv-cache-bytes", e.cpu_kv_cache_bytes,
                  "CPU: bytes for the KV pool when --num-kv-blocks is not given")
      ->capture_default_str();
  f.max_num_seqs_opt =
      app->add_option("--max-num-seqs", e.max_num_seqs,
                      "Running sequences at most (default: " + max_num_seqs_default + ")");
  app->add_option("--max-num-batched-tokens", e.max_num_batched_tokens,
                  "Tokens per engine step (prefill is chunked to fit)")
      ->capture_default_str();
  app->add_option("--max-model-len", e.max_model_len,
                  "Prompt + output tokens at most (clamped to the model's)")
      ->capture_default_str();
  app->add_option("--gpu-memory-utilization", e.gpu_memory_utilization,
                  "CUDA: share of device memory for weights + KV")
      ->capture_default_str();
  app->add_flag("--enforce-eager", e.enforce_eager,
                "CUDA: launch every step eagerly (no CUDA graphs for decode steps)");
  app->add_option("--max-graph-batch-size", e.max_graph_batch_size,
                  "CUDA: largest decode batch run as a CUDA graph")
      ->capture_default_str();
  app->add_flag("--no-graph-warmup", f.no_graph_warmup,
                "CUDA: capture each decode graph on first use instead of at start-up");
  app->add_flag("--no-async-scheduling", f.no_async_scheduling,
                "Run each step's host work while the device waits (no step overlap)");
  app->add_flag("--no-prefix-caching", f.no_prefix_caching, "Disable prefix caching");
  add_kv_flags(app, f.kv);
}

EngineConfig engine_config_from_flags(const EngineFlags& f, int num_requests) {
  EngineConfig config = f.engine;
  config.enable_prefix_caching = !f.no_prefix_caching;
  config.graph_warmup = config.graph_warmup && !f.no_graph_warmup;
  config.async_scheduling = config.async_scheduling && !f.no_async_scheduling;
  apply_kv_flags(f.kv, config);
  if (f.max_num_seqs_opt == nullptr || f.max_num_seqs_opt->count() == 0) {
    config.max_num_seqs = std::min(config.max_num_seqs, num_requests);
  }
  return config;
}

}  // namespace hardkv::cli
