// KV pool sizing from the config and the backend's memory (with a profiling step on a device).
#include "engine/kv_cache_sizing.h"

#include <algorithm>

#include "core/error.h"

namespace hardkv {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Kept free besides the utilisation share: CUDA-graph executables, cuBLAS workspaces and
// allocator rounding that the profiling step does not show.
constexpr size_t kDeviceReserveBytes = size_t{256} << 20;

// One forward + sampling step as large as the scheduler can make: num_tokens tokens split over
// num_seqs prefilling sequences, a logits row for each. Its KV lives in a temporary pool.
void run_profiling_step(const EngineConfig& config, Model& model, int max_model_len) {
  Backend& be = model.backend();
  const int64_t tokens_cap = static_cast<int64_t>(config.max_num_seqs) * max_model_len;
  const int num_tokens =
      static_cast<int>(std::min<int64_t>(config.max_num_batched_tokens, tokens_cap));
  const int num_seqs = std::min(config.max_num_seqs, num_tokens);
  const int bs = config.kv_block_size;
  ForwardBatch b;
  b.query_indptr.push_back(0);
  b.block_indptr.push_back(0);
  int next_block = 0;
  for (int s = 0; s < num_seqs; ++s) {
    const int len = num_tokens / num_seqs + (s < num_tokens % num_seqs ? 1 : 0);
    const int first_block = next_block;
    for (int p = 0; p < len; ++p) {
      b.token_ids.push_back(p % 7);
      b.positions.push_back(p);
      b.slot_mapping.push_back((first_block + p / bs) * bs + p % bs);
    }
    next_block += (len + bs - 1) / bs;
    for (int blk = first_block; blk < next_block; ++blk) b.block_indices.push_back(blk);
    b.query_indptr.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.block_indptr.push_back(static_cast<int32_t>(b.block_indices.size()));
    b.kv_lens.push_back(len);
    b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
  }
  KVCache kv = model.allocate_kv_cache(next_block, bs);
  Tensor logits = model.forward(b, kv);
  SampleRows rows;  // the most expensive filter combination
  for (int s = 0; s < num_seqs; ++s) {
    rows.temperature.push_back(0.6f);
    rows.top_k.push_back(20);
    rows.top_p.push_back(0.95f);
    rows.min_p.push_back(0.0f);
    rows.uniform.push_back(0.5);
    rows.forced.push_back(-1);
  }
  rows.logprobs = true;
  be.sample(logits, rows);
  be.synchronize();
  be.release_scratch();  // the scratch keeps its peak size for later steps
}

}  // namespace

size_t kv_cache_budget_bytes(const EngineConfig& config, Model& model, int max_model_len) {
  Backend& be = model.backend();
  if (be.memory().total == 0) return config.cpu_kv_cache_bytes;  // host memory: configured
  run_profiling_step(config, model, max_model_len);
  const DeviceMemory mem = be.memory();
  const double unused_share = static_cast<double>(mem.total) * (1.0 - config.gpu_memory_utilization);
  const double budget = static_cast<double>(mem.free) - unused_share - kDeviceReserveBytes;
  HARDKV_CHECK(budget >= static_cast<double>(model.kv_bytes_per_block(config.kv_block_size)),
               kOutOfMemory,
               "no device memory is left for the KV cache: after loading the weights and one "
               "step of {} tokens / {} sequences, {:.2f} of {:.2f} GiB are free and "
               "gpu_memory_utilization {} keeps {:.2f} GiB unused (plus {:.2f} GiB reserve); use a "
               "smaller model, lower max_num_batched_tokens / max_num_seqs, or raise "
               "gpu_memory_utilization",
               config.max_num_batched_tokens, config.max_num_seqs, mem.free / kGiB,
               mem.total / kGiB, config.gpu_memory_utilization, unused_share / kGiB,
               kDeviceReserveBytes / kGiB);
  return static_cast<size_t>(budget);
}

int plan_num_kv_blocks(const EngineConfig& config, Model& model, int max_model_len) {
  if (config.num_kv_blocks > 0) return config.num_kv_blocks;
  const size_t per_block = model.kv_bytes_per_block(config.kv_block_size);
  const size_t budget = kv_cache_budget_bytes(config, model, max_model_len);
  const size_t fit = budget / per_block;
  HARDKV_CHECK(fit >= 1, kOutOfMemory,
               "the KV cache budget of {} bytes holds no block of {} bytes ({} tokens); raise the "
               "budget or lower kv_block_size",
               budget, per_block, config.kv_block_size);
  const size_t blocks_per_seq =
      (static_cast<size_t>(max_model_len) + config.kv_block_size - 1) / config.kv_block_size;
  const size_t useful = blocks_per_seq * static_cast<size_t>(config.max_num_seqs);
  return static_cast<int>(std::min({fit, useful, size_t{1} << 30}));
}

}  // namespace hardkv
