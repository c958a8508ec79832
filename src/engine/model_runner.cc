// ModelRunner: ForwardBatch construction, the forward call and host sampling.
#include "engine/model_runner.h"

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
    rows.uniform.push_back(p.temperature == 0.0f ? 0.0
                                                 : Rng(token_rng_seed(seq.rng_seed, idx)).next_double());
    rows.forced.push_back(idx < static_cast<int>(p.forced_tokens.size()) ? p.forced_tokens[idx]
                                                                         : -1);
    rows.logprobs = rows.logprobs || p.logprobs;
  }
  return rows;
}

SampleResult ModelRunner::run(const SchedulerOutput& out) {
  SampleResult sampled;
  if (out.empty()) return sampled;
  const ForwardBatch batch =
      hard_ ? hard_->begin_step(out) : build_forward_batch(out, kv_->block_size);
  Backend& be = model_->backend();
  Tensor logits = model_->forward(batch, *kv_, hard_ ? &hard_->hook() : nullptr);
  if (out.num_samples > 0) {
    HARDKV_ASSERT(logits.dim(0) == out.num_samples);
    sampled = be.sample(logits, sample_rows(out));  // F32 [num_samples, vocab] -> tokens
  }
  be.release_scratch();
  return sampled;
}

}  // namespace hardkv
