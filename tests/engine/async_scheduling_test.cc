// Overlapped engine steps (EngineConfig::async_scheduling) on the CPU backend with the tiny model:
// step k + 1 is scheduled and queued before step k's tokens are applied, its new tokens standing
// as placeholders that the backend resolves. The reference is the same engine with overlap off
// (itself checked against a plain model loop in llm_test.cc): every output, log-probability,
// finish reason, streamed event and statistic that must not change is compared, across stop
// tokens, stop strings, length limits, preemption, prefix caching, chunked prefill and abort.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "hardkv/llm.h"
#include "kernels/backend.h"
#include "tiny_model.h"

namespace hardkv {
namespace {

EngineConfig config_with(bool async) {
  EngineConfig c = test::tiny_engine_config();
  c.async_scheduling = async;
  return c;
}

std::vector<std::vector<int32_t>> prompts_of(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> prompts(n);
  for (auto& p : prompts) {
    p.resize(2 + rng() % 30);
    for (auto& t : p) t = static_cast<int32_t>(rng() % 256);
  }
  return prompts;
}

// Per request: its stream of events, and its output.
struct EngineRun {
  std::map<int64_t, std::vector<StreamEvent>> events;
  std::map<int64_t, RequestOutput> outputs;
  EngineStats stats;
};

EngineRun run_all(const EngineConfig& config, const std::vector<std::vector<int32_t>>& prompts,
            const std::vector<SamplingParams>& params, int abort_after_steps = -1,
            int64_t abort_id = -1) {
  LLM llm(test::tiny_model_dir(), config);
  EngineRun run;
  for (size_t i = 0; i < prompts.size(); ++i) {
    llm.add_request(prompts[i], params[i],
                    [&run](const StreamEvent& ev) { run.events[ev.request_id].push_back(ev); });
  }
  int steps = 0;
  while (llm.has_unfinished()) {
    if (steps++ == abort_after_steps) {
      EXPECT_TRUE(llm.abort(abort_id));
    }
    for (RequestOutput& o : llm.step()) run.outputs[o.request_id] = std::move(o);
  }
  run.stats = llm.stats();
  return run;
}

std::string streamed_text(const std::vector<StreamEvent>& events) {
  std::string s;
  for (const StreamEvent& ev : events) s += ev.text;
  return s;
}

// Same outputs and events; the overlapped run really overlapped.
void expect_same(const EngineRun& sync, const EngineRun& overlapped) {
  ASSERT_EQ(sync.outputs.size(), overlapped.outputs.size());
  for (const auto& [id, ref] : sync.outputs) {
    const RequestOutput& got = overlapped.outputs.at(id);
    EXPECT_EQ(got.token_ids, ref.token_ids) << "request " << id;
    // Steps may batch differently (preemption, chunking), which moves float rounding a little.
    ASSERT_EQ(got.logprobs.size(), ref.logprobs.size()) << "request " << id;
    for (size_t i = 0; i < ref.logprobs.size(); ++i) {
      EXPECT_NEAR(got.logprobs[i], ref.logprobs[i], 1e-4) << "request " << id << " token " << i;
    }
    EXPECT_EQ(got.finish_reason, ref.finish_reason) << "request " << id;
    EXPECT_EQ(got.text, ref.text) << "request " << id;
    EXPECT_EQ(got.error, ref.error) << "request " << id;
    for (int32_t t : got.token_ids) EXPECT_GE(t, 0) << "a placeholder leaked, request " << id;
  }
  ASSERT_EQ(sync.events.size(), overlapped.events.size());
  for (const auto& [id, ref] : sync.events) {
    const std::vector<StreamEvent>& got = overlapped.events.at(id);
    ASSERT_EQ(got.size(), ref.size()) << "request " << id;
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_EQ(got[i].token_id, ref[i].token_id) << "request " << id << " event " << i;
      EXPECT_EQ(got[i].finished, ref[i].finished) << "request " << id << " event " << i;
    }
    EXPECT_EQ(streamed_text(got), streamed_text(ref)) << "request " << id;
  }
  EXPECT_EQ(sync.stats.num_overlapped_steps, 0);
  EXPECT_GT(overlapped.stats.num_overlapped_steps, 0);
  EXPECT_EQ(overlapped.stats.num_used_blocks_now, 0);
  EXPECT_EQ(sync.stats.num_used_blocks_now, 0);
}

// Greedy and seeded requests; every third one stops on a token that its unconstrained greedy
// output produces mid-way (so it ends by kStop while a next step is already queued).
std::vector<SamplingParams> mixed_params(const std::vector<std::vector<int32_t>>& prompts) {
  std::vector<SamplingParams> params(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplingParams& p = params[i];
    p.max_tokens = 6 + static_cast<int>(i % 5) * 4;
    p.ignore_eos = true;
    p.logprobs = i % 2 == 0;
    if (i % 2 == 1) {
      p.temperature = 0.8f;
      p.top_p = 0.9f;
      p.seed = 40 + static_cast<int64_t>(i);
    } else {
      p.temperature = 0;
    }
  }
  LLM probe(test::tiny_model_dir(), config_with(false));
  for (size_t i = 0; i < prompts.size(); i += 3) {
    std::vector<std::vector<int32_t>> one{prompts[i]};
    const auto out = probe.generate(one, params[i], false);
    if (out[0].token_ids.size() > 3) params[i].stop_token_ids = {out[0].token_ids[3]};
  }
  return params;
}

TEST(AsyncScheduling, SameOutputsAndEventsAsStepsInOrder) {
  const auto prompts = prompts_of(9, 5);
  const auto params = mixed_params(prompts);
  const EngineRun sync = run_all(config_with(false), prompts, params);
  const EngineRun overlapped = run_all(config_with(true), prompts, params);
  expect_same(sync, overlapped);
  int stopped = 0;
  for (const auto& [id, o] : overlapped.outputs) stopped += o.finish_reason == FinishReason::kStop;
  EXPECT_GT(stopped, 0) << "no request ended on a stop token: the test lost its point";
}

TEST(AsyncScheduling, SameUnderPreemptionChunkingAndPrefixCaching) {
  auto prompts = prompts_of(8, 9);
  prompts[1].resize(13, 42);  // at least three full blocks of 4 to share
  prompts[5] = prompts[1];    // shared prefixes for the cache
  prompts[6] = prompts[1];
  prompts[6].insert(prompts[6].end(), {7, 8, 9, 10, 11});
  const auto params = mixed_params(prompts);
  for (const int variant : {0, 1, 2}) {
    EngineConfig sc = config_with(false);
    if (variant == 0) sc.num_kv_blocks = 16;  // 64 slots for 8 requests: preemption
    if (variant == 1) sc.max_num_batched_tokens = 5;
    if (variant == 2) {
      sc.enable_prefix_caching = true;
      sc.max_num_seqs = 2;  // later requests start after earlier ones have cached blocks
    }
    EngineConfig ac = sc;
    ac.async_scheduling = true;
    const EngineRun sync = run_all(sc, prompts, params);
    const EngineRun overlapped = run_all(ac, prompts, params);
    SCOPED_TRACE("variant " + std::to_string(variant));
    expect_same(sync, overlapped);
    if (variant == 0) {
      EXPECT_GT(overlapped.stats.num_preemptions, 0);
    }
    if (variant == 2) {
      EXPECT_GT(overlapped.stats.prefix_hit_tokens, 0);
    }
  }
}

TEST(AsyncScheduling, StopStringsAndAbortBehaveAsInOrder) {
  const auto prompts = prompts_of(4, 21);
  std::vector<SamplingParams> params(prompts.size());
  for (auto& p : params) {
    p.temperature = 0;
    p.max_tokens = 30;
    p.ignore_eos = true;
  }
  {  // a stop string from the middle of request 0's text
    LLM probe(test::tiny_model_dir(), config_with(false));
    std::vector<std::vector<int32_t>> one{prompts[0]};
    const std::string text = probe.generate(one, params[0], false)[0].text;
    ASSERT_GE(text.size(), 6u);
    params[0].stop = {text.substr(text.size() / 2, 2)};
  }
  // Request 2 is aborted before the fourth step.
  const EngineRun sync = run_all(config_with(false), prompts, params, 3, 2);
  const EngineRun overlapped = run_all(config_with(true), prompts, params, 3, 2);
  EXPECT_EQ(overlapped.outputs.at(0).finish_reason, FinishReason::kStop);
  EXPECT_EQ(overlapped.outputs.at(2).finish_reason, FinishReason::kAbort);
  // Abort lands one step later in the overlapped engine's token count (its tokens arrive a step
  // later), so request 2 is compared by prefix; everything else exactly.
  const auto& a2 = overlapped.outputs.at(2).token_ids;
  const auto& s2 = sync.outputs.at(2).token_ids;
  ASSERT_LE(a2.size(), s2.size() + 1);
  const auto full = run_all(config_with(false), {prompts[2]}, {params[2]});
  const auto& whole = full.outputs.begin()->second.token_ids;
  EXPECT_TRUE(std::equal(a2.begin(), a2.end(), whole.begin())) << "aborted output not a prefix";
  for (int64_t id : {0, 1, 3}) {
    EXPECT_EQ(overlapped.outputs.at(id).token_ids, sync.outputs.at(id).token_ids) << id;
    EXPECT_EQ(overlapped.outputs.at(id).text, sync.outputs.at(id).text) << id;
    EXPECT_EQ(streamed_text(overlapped.events.at(id)), overlapped.outputs.at(id).text) << id;
  }
}

// The scheduler's half of it: advance() appends placeholders, schedule() keeps a sequence whose
// placeholder ends it by length out of the next step, resolve() fills the tokens in.
TEST(AsyncScheduling, SchedulerAdvanceScheduleResolve) {
  BlockManager blocks(64, 4, false);
  SchedulerConfig sc;
  Scheduler sched(sc, blocks);
  SamplingParams two;
  two.max_tokens = 2;
  two.ignore_eos = true;
  SamplingParams many = two;
  many.max_tokens = 10;
  sched.add(std::make_unique<Sequence>(0, std::vector<int32_t>{1, 2, 3}, many, 0.0), 0.0);
  sched.add(std::make_unique<Sequence>(1, std::vector<int32_t>{4, 5}, two, 0.0), 0.0);
  SchedulerOutput s1 = sched.schedule(0.0);
  ASSERT_EQ(s1.seqs.size(), 2u);
  sched.advance(s1);
  EXPECT_EQ(s1.seqs[0].seq->last_token(), -1);  // row 0's placeholder
  EXPECT_EQ(s1.seqs[1].seq->last_token(), -2);
  EXPECT_FALSE(s1.seqs[1].seq->final_token_pending);
  SchedulerOutput s2 = sched.schedule(0.0);  // step 2 runs on the placeholders
  ASSERT_EQ(s2.seqs.size(), 2u);
  EXPECT_EQ(s2.seqs[0].num_new_tokens, 1);
  sched.resolve(s1, std::vector<int32_t>{50, 60}, 0.0);
  EXPECT_EQ(s1.seqs[0].seq->last_token(), 50);
  EXPECT_EQ(s1.seqs[1].seq->last_token(), 60);
  sched.advance(s2);  // sequence 1's second token ends it by length whatever it is
  EXPECT_TRUE(s2.seqs[1].seq->final_token_pending);
  SchedulerOutput s3 = sched.schedule(0.0);
  ASSERT_EQ(s3.seqs.size(), 1u);
  EXPECT_EQ(s3.seqs[0].seq->seq_id, 0);
  sched.resolve(s2, std::vector<int32_t>{51, 61}, 0.0);
  const auto done = sched.take_finished();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]->seq_id, 1);
  EXPECT_EQ(done[0]->finish_reason, FinishReason::kLength);
  EXPECT_EQ(std::vector<int32_t>(done[0]->output_token_ids().begin(),
                                 done[0]->output_token_ids().end()),
            (std::vector<int32_t>{60, 61}));
}

// The CPU backend's placeholders: -(r + 1) embeds the latest sample_async's token of row r.
TEST(AsyncScheduling, CpuEmbeddingResolvesPlaceholders) {
  auto be = make_cpu_backend();
  const int64_t vocab = 6, hidden = 3;
  Tensor table = Tensor::empty(DType::kF32, {vocab, hidden});
  for (int64_t i = 0; i < vocab * hidden; ++i) table.data_as<float>()[i] = static_cast<float>(i);
  Tensor logits = Tensor::empty(DType::kF32, {2, vocab});
  for (int64_t i = 0; i < 2 * vocab; ++i) logits.data_as<float>()[i] = 0.f;
  logits.data_as<float>()[4] = 1.f;          // row 0 -> token 4
  logits.data_as<float>()[vocab + 1] = 1.f;  // row 1 -> token 1
  const int64_t ticket = be->sample_async(logits, SampleRows::greedy(2));
  std::vector<int32_t> id_values = {-2, 3, -1};
  Tensor ids = Tensor::view(id_values.data(), DType::kI32, {3}, Device::kCPU);
  Tensor out = Tensor::empty(DType::kF32, {3, hidden});
  be->embedding(ids, table, out);
  const float* o = out.data_as<float>();
  EXPECT_EQ(o[0], 1 * hidden);  // token 1's row starts at 1 * hidden
  EXPECT_EQ(o[hidden], 3 * hidden);
  EXPECT_EQ(o[2 * hidden], 4 * hidden);
  EXPECT_EQ(be->sample_wait(ticket).tokens, (std::vector<int32_t>{4, 1}));
  std::vector<int32_t> bad_values = {-3};  // row 2 was never sampled
  Tensor bad = Tensor::view(bad_values.data(), DType::kI32, {1}, Device::kCPU);
  Tensor out1 = Tensor::empty(DType::kF32, {1, hidden});
  EXPECT_THROW(be->embedding(bad, table, out1), Error);
}

}  // namespace
}  // namespace hardkv
