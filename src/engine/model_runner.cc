// ModelRunner: ForwardBatch construction, the forward call and host sampling.
#include "engine/model_runner.h"

#include <algorithm>
#include <span>

#include "core/error.h"
#include "core/rng.h"
#include "sampling/sampler.h"

namespace hardkv {

ForwardBatch build_forward_batch(const SchedulerOutput& out, int block_size) {
  ForwardBatch b;
  b.token_ids.reserve(out.num_tokens);
  b.positions.reserve(out.num_tokens);
  b.slot_mapping.reserve(out.num_tokens);
  b.query_indptr.push_back(0);
  b.block_indptr.push_back(0);
  for (const ScheduledSeq& s : out.seqs) {
    const Sequence& seq = *s.seq;
    const int begin = seq.num_computed_tokens;
    const int end = begin + s.num_new_tokens;
    HARDKV_ASSERT(end <= seq.num_tokens());
    const int num_blocks = (end + block_size - 1) / block_size;
    HARDKV_ASSERT(num_blocks <= static_cast<int>(seq.block_table.size()));
    for (int p = begin; p < end; ++p) {
      b.token_ids.push_back(seq.token_ids[p]);
      b.positions.push_back(p);
      b.slot_mapping.push_back(seq.block_table[p / block_size] * block_size + p % block_size);
    }
    b.query_indptr.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.kv_lens.push_back(end);
    b.block_indices.insert(b.block_indices.end(), seq.block_table.begin(),
                           seq.block_table.begin() + num_blocks);
    b.block_indptr.push_back(static_cast<int32_t>(b.block_indices.size()));
    if (s.sample) b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
  }
  return b;
}

uint64_t token_rng_seed(uint64_t request_seed, int output_idx) {
  // Rng runs splitmix64 over its seed, so distinct (seed, index) pairs give unrelated streams.
  return request_seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(output_idx + 1));
}

SampleRows sample_rows(const SchedulerOutput& out) {
  SampleRows rows;
  for (const ScheduledSeq& s : out.seqs) {
    if (!s.sample) continue;
    const Sequence& seq = *s.seq;
    const SamplingParams& p = seq.params;
    const int idx = seq.num_output_tokens();
    rows.temperature.push_back(p.temperature);
    rows.top_k.push_back(p.top_k);
    rows.top_p.push_back(p.top_p);
    rows.min_p.push_back(p.min_p);
    // The first draw of the token's own stream (what sample_token would use).
    rows.uniform.push_back(
        p.temperature == 0.0f ? 0.0 : Rng(token_rng_seed(seq.rng_seed, idx)).next_double());
    rows.forced.push_back(idx < static_cast<int>(p.forced_tokens.size()) ? p.forced_tokens[idx]
                                                                         : -1);
    rows.logprobs = rows.logprobs || p.logprobs;
  }
  return rows;
}

int graph_batch_size(int n) {
  HARDKV_ASSERT(n > 0);
  if (n <= 8) return n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 4 : 8;
  return (n + 7) / 8 * 8;
}

size_t forward_metadata_bytes(const ForwardBatch& b) {
  size_t words = 0;
  for (const std::vector<int32_t>* a :
       {&b.token_ids, &b.positions, &b.slot_mapping, &b.logits_indices, &b.query_indptr, &b.kv_lens,
        &b.block_indptr, &b.block_indices}) {
    words += (a->size() + 15) / 16 * 16;
  }
  return (std::max<size_t>(words, 1) * sizeof(int32_t) + 255) / 256 * 256;
}

int reuse_graph_batch(const std::vector<std::pair<int, int>>& captured, int need) {
  const int limit = std::max(need + 8, need * 5 / 4);
  int best = need;
  bool found = false;
  for (const auto& [batch, bound] : captured) {
    if (batch >= need && batch <= limit && (!found || batch < best)) {
      best = batch;
      found = true;
    }
  }
  return best;
}

int reuse_graph_kv_bound(const std::vector<std::pair<int, int>>& captured, int batch, int need) {
  int best = need;
  bool found = false;
  for (const auto& [b, bound] : captured) {
    if (b == batch && bound >= need && bound <= 2 * static_cast<int64_t>(need) &&
        (!found || bound < best)) {
      best = bound;
      found = true;
    }
  }
  return best;
}

std::vector<int> warmup_graph_batches(int max_graph_batch) {
  std::vector<int> sizes;
  for (int n : {1, 2, 4, 8}) {
    if (n <= max_graph_batch) sizes.push_back(n);
  }
  const int cap = max_graph_batch / 8 * 8;  // the largest graph batch size <= max_graph_batch
  while (!sizes.empty() && sizes.back() >= 8 && sizes.back() < cap) {
    const int need = sizes.back() + 8;  // the smallest graph batch not yet served
    sizes.push_back(std::min(std::max(need + 8, need * 5 / 4) / 8 * 8, cap));
  }
  return sizes;
}

std::vector<int> warmup_kv_bounds(int max_kv_len) {
  std::vector<int> bounds;
  for (int b = 256; b < max_kv_len; b *= 2) bounds.push_back(b);
  bounds.push_back(max_kv_len);
  return bounds;
}

ForwardBatch pad_decode_batch(const ForwardBatch& b, int batch_size, int kv_bound, int block_size) {
  const int n = static_cast<int>(b.kv_lens.size());
  const int width = (kv_bound + block_size - 1) / block_size;  // block-table entries per row
  HARDKV_ASSERT(n <= batch_size && static_cast<int>(b.token_ids.size()) == n &&
                static_cast<int>(b.logits_indices.size()) == n);
  ForwardBatch p;
  p.token_ids.assign(batch_size, 0);
  p.positions.assign(batch_size, 0);
  p.slot_mapping.assign(batch_size, -1);
  p.kv_lens.assign(batch_size, 1);
  p.block_indices.assign(static_cast<size_t>(batch_size) * width, 0);
  for (int i = 0; i <= batch_size; ++i) {
    p.query_indptr.push_back(i);
    p.block_indptr.push_back(i * width);
  }
  for (int i = 0; i < batch_size; ++i) p.logits_indices.push_back(i);
  for (int i = 0; i < n; ++i) {
    HARDKV_ASSERT(b.query_indptr[i + 1] - b.query_indptr[i] == 1 && b.kv_lens[i] <= kv_bound);
    p.token_ids[i] = b.token_ids[i];
    p.positions[i] = b.positions[i];
    p.slot_mapping[i] = b.slot_mapping[i];
    p.kv_lens[i] = b.kv_lens[i];
    std::copy(b.block_indices.begin() + b.block_indptr[i],
              b.block_indices.begin() + b.block_indptr[i + 1],
              p.block_indices.begin() + static_cast<size_t>(i) * width);
  }
  return p;
}

ModelRunner::ModelRunner(Model& model, KVCache& kv, HardKVSpace* hard, ModelRunnerOptions options)
    : model_(&model), kv_(&kv), hard_(hard), options_(options) {
  // HARD-KV steps run as graphs only with device tiers (on the CPU backend supports_graphs() is
  // false anyway).
  options_.use_graphs = options_.use_graphs && (!hard_ || hard_->on_device()) &&
                        model.backend().supports_graphs() && options_.max_graph_batch > 0 &&
                        options_.max_kv_len > 0;
}

ModelRunner::~ModelRunner() = default;

std::vector<std::pair<int, int>> ModelRunner::captured() const {
  std::vector<std::pair<int, int>> keys;
  for (const auto& [key, graph] : graphs_) {
    if (graph) keys.push_back(key);
  }
  return keys;
}

int ModelRunner::warm_up_graphs() {
  if (!options_.use_graphs || hard_) return 0;
  Backend& be = model_->backend();
  const ForwardBatch none;  // no real rows: every row pads
  int captured_now = 0;
  for (const int rows : warmup_graph_batches(options_.max_graph_batch)) {
    for (const int bound : warmup_kv_bounds(options_.max_kv_len)) {
      std::unique_ptr<StepGraph>& graph = graphs_[{rows, bound}];
      if (graph) continue;
      const ForwardBatch step = pad_decode_batch(none, rows, bound, kv_->block_size);
      if (forward_metadata_bytes(step) > be.graph_copy_bytes()) continue;  // runs eagerly
      be.begin_capture(bound);
      model_->forward(step, *kv_, nullptr);
      graph = be.end_capture();
      be.launch_graph(*graph);  // uploads it; the all-padding step stores nothing
      be.release_scratch();
      ++captured_now;
    }
  }
  be.synchronize();
  return captured_now;
}

Tensor ModelRunner::forward_graphed(const ForwardBatch& batch, int num_rows, int graph_rows) {
  Backend& be = model_->backend();
  int max_len = 1;
  for (int32_t len : batch.kv_lens) max_len = std::max(max_len, len);
  // KV bound: the next power of two >= 256 holding every sequence (at most max_model_len), so a
  // sequence re-captures only when it doubles. HARD-KV: kv_lens are the attended-list bounds.
  int kv_bound = 256;
  while (kv_bound < max_len) kv_bound *= 2;
  kv_bound = std::max(std::min(kv_bound, options_.max_kv_len), max_len);
  kv_bound = reuse_graph_kv_bound(captured(), graph_rows, kv_bound);
  const int rows = graph_rows;
  HARDKV_ASSERT(!hard_ || static_cast<int>(batch.kv_lens.size()) == rows);
  // Dense: padded here (fixed block-table width); HARD-KV: begin_step padded the batch already.
  const ForwardBatch padded =
      hard_ ? ForwardBatch{} : pad_decode_batch(batch, rows, kv_bound, kv_->block_size);
  const ForwardBatch& step = hard_ ? batch : padded;
  AttentionHook* hook = hard_ ? &hard_->hook() : nullptr;
  if (forward_metadata_bytes(step) > be.graph_copy_bytes()) {
    // Too much metadata for a graph step's staging (wide block tables of long sequences): eager.
    Tensor logits = model_->forward(batch, *kv_, hook);
    return Tensor::view(logits.data(), logits.dtype(), {num_rows, logits.dim(1)}, logits.device());
  }
  std::unique_ptr<StepGraph>& graph = graphs_[{rows, kv_bound}];
  Tensor logits;
  if (graph) {
    be.begin_replay(*graph);
    logits = model_->forward(step, *kv_, hook);
    if (be.end_replay(*graph)) {
      ++num_replays_;
      replay_launched_ = std::chrono::steady_clock::now();
    } else {
      graph.reset();  // the op sequence changed (e.g. scratch moved): capture anew
      be.release_scratch();
    }
  }
  if (!graph) {
    be.begin_capture(kv_bound);
    logits = model_->forward(step, *kv_, hook);
    graph = be.end_capture();
    be.launch_graph(*graph);
    ++num_captures_;
  }
  // The first num_rows rows of the padded logits [rows, vocab].
  return Tensor::view(logits.data(), logits.dtype(), {num_rows, logits.dim(1)}, logits.device());
}

int64_t ModelRunner::launch(const SchedulerOutput& out) {
  if (out.empty()) return -1;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t replays_before = num_replays_;
  Backend& be = model_->backend();
  const int num_seqs = static_cast<int>(out.seqs.size());
  const bool decode_only = std::all_of(out.seqs.begin(), out.seqs.end(), [](const ScheduledSeq& s) {
    return s.num_new_tokens == 1 && s.sample;
  });
  const bool graphed =
      options_.use_graphs && decode_only && graph_batch_size(num_seqs) <= options_.max_graph_batch;
  const int graph_rows = graphed ? reuse_graph_batch(captured(), graph_batch_size(num_seqs)) : 0;
  const ForwardBatch batch =
      hard_ ? hard_->begin_step(out, graph_rows) : build_forward_batch(out, kv_->block_size);
  Tensor logits = graphed ? forward_graphed(batch, num_seqs, graph_rows)
                          : model_->forward(batch, *kv_, hard_ ? &hard_->hook() : nullptr);
  int64_t ticket = -1;
  if (out.num_samples > 0) {
    HARDKV_ASSERT(logits.dim(0) == out.num_samples);
    ticket = be.sample_async(logits, sample_rows(out));  // F32 [num_samples, vocab] -> tokens
  }
  be.release_scratch();
  if (num_replays_ > replays_before) {
    replay_prep_s_ += std::chrono::duration<double>(replay_launched_ - t0).count();
  }
  return ticket;
}

SampleResult ModelRunner::collect(int64_t ticket) {
  if (ticket < 0) return {};
  const auto t0 = std::chrono::steady_clock::now();
  SampleResult sampled = model_->backend().sample_wait(ticket);
  token_wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sampled;
}

}  // namespace hardkv
