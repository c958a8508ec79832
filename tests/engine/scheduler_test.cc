// Scheduler driven by a fake model that reads its inputs back from a simulated paged KV pool:
// random arrivals, lengths, aborts and a tiny pool. Every request must finish (with the output a
// plain reference loop predicts) or be aborted/rejected, and at the end every block is free.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace hardkv {
namespace {

constexpr int32_t kVocab = 37;
constexpr int32_t kEos = 0;

// The fake model's next token from the whole context (tokens at positions 0..n-1).
int32_t next_token(const std::vector<int32_t>& context) {
  uint64_t h = 1469598103934665603ull;
  for (size_t p = 0; p < context.size(); ++p) {
    h = (h ^ static_cast<uint64_t>(context[p] + 1) * (p + 7)) * 1099511628211ull;
  }
  return static_cast<int32_t>(h % kVocab);
}

// Simulated KV pool: slot -> (token, position) written by the step that ran that token.
struct FakeKv {
  FakeKv(int num_blocks, int block_size)
      : block_size(block_size),
        tokens(num_blocks * block_size, -1),
        positions(num_blocks * block_size, -1) {}
  int block_size;
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
};

// Runs one scheduled step like a model would: stores K/V of the new tokens into their slots, then
// for sampling sequences reads the whole context back through the block table.
std::vector<int32_t> run_fake_step(const SchedulerOutput& out, FakeKv& kv, int max_batched) {
  EXPECT_LE(out.num_tokens, max_batched);
  std::vector<int32_t> sampled;
  int total = 0;
  for (const ScheduledSeq& s : out.seqs) {
    const Sequence& seq = *s.seq;
    EXPECT_GT(s.num_new_tokens, 0);
    total += s.num_new_tokens;
    const int begin = seq.num_computed_tokens;
    const int end = begin + s.num_new_tokens;
    EXPECT_LE(end, seq.num_tokens());
    EXPECT_GE(static_cast<int>(seq.block_table.size()) * kv.block_size, end);
    for (int p = begin; p < end; ++p) {
      const int slot = seq.block_table[p / kv.block_size] * kv.block_size + p % kv.block_size;
      kv.tokens[slot] = seq.token_ids[p];
      kv.positions[slot] = p;
    }
    EXPECT_EQ(s.sample, end == seq.num_tokens());
    if (!s.sample) continue;
    std::vector<int32_t> context(end);
    for (int p = 0; p < end; ++p) {
      const int slot = seq.block_table[p / kv.block_size] * kv.block_size + p % kv.block_size;
      EXPECT_EQ(kv.positions[slot], p) << "seq " << seq.seq_id << " reads a stale slot";
      context[p] = kv.tokens[slot];
    }
    sampled.push_back(next_token(context));
  }
  EXPECT_EQ(total, out.num_tokens);
  return sampled;
}

struct Expected {
  std::vector<int32_t> output;  // the reference output
  FinishReason reason;
};

// Reference: the plain generation loop with the same stop rules.
Expected reference(std::vector<int32_t> tokens, int max_tokens, int max_seq_len, bool ignore_eos) {
  Expected e;
  const size_t prompt = tokens.size();
  while (true) {
    const int32_t t = next_token(tokens);
    tokens.push_back(t);
    e.output.push_back(t);
    if (!ignore_eos && t == kEos) {
      e.reason = FinishReason::kStop;
      break;
    }
    if (static_cast<int>(e.output.size()) >= max_tokens ||
        static_cast<int>(tokens.size()) >= max_seq_len) {
      e.reason = FinishReason::kLength;
      break;
    }
  }
  (void)prompt;
  return e;
}

struct Scenario {
  int num_blocks;
  int block_size;
  int max_num_seqs;
  int max_batched;
  int max_model_len;
  bool prefix_caching;
  uint32_t seed;
};

void run_scenario(const Scenario& sc, int64_t* preemptions_out, int64_t* hits_out,
                  int* completed_out) {
  BlockManager bm(sc.num_blocks, sc.block_size, sc.prefix_caching);
  SchedulerConfig cfg;
  cfg.max_num_seqs = sc.max_num_seqs;
  cfg.max_num_batched_tokens = sc.max_batched;
  cfg.max_model_len = sc.max_model_len;
  cfg.eos_token_ids = {kEos};
  Scheduler sched(cfg, bm);
  FakeKv kv(sc.num_blocks, sc.block_size);
  std::mt19937 rng(sc.seed);

  const int num_requests = 60;
  std::map<int64_t, Sequence> requests;  // what was submitted (copies)
  std::map<int64_t, FinishReason> outcome;
  std::map<int64_t, std::vector<int32_t>> outputs;
  int64_t next_id = 0;
  int steps = 0;
  std::vector<int32_t> shared_prefix(3 * sc.block_size);
  for (auto& t : shared_prefix) t = 1 + rng() % (kVocab - 1);

  while (next_id < num_requests || sched.has_unfinished()) {
    ASSERT_LT(++steps, 20000) << "no progress: deadlock?";
    // Random arrivals (some empty, some too long, many sharing a prefix).
    while (next_id < num_requests && rng() % 3 == 0) {
      const int len = static_cast<int>(rng() % (sc.max_model_len + 4));
      std::vector<int32_t> prompt;
      if (rng() % 2) prompt.assign(shared_prefix.begin(), shared_prefix.end());
      while (static_cast<int>(prompt.size()) < len) prompt.push_back(1 + rng() % (kVocab - 1));
      prompt.resize(len);
      SamplingParams p;
      p.max_tokens = 1 + static_cast<int>(rng() % 12);
      p.ignore_eos = rng() % 2;
      requests.emplace(next_id, Sequence(next_id, prompt, p, 0));
      sched.add(std::make_unique<Sequence>(next_id, prompt, p, 0), steps);
      ++next_id;
    }
    // Random aborts of live requests.
    if (rng() % 10 == 0 && next_id > 0) {
      const int64_t victim = static_cast<int64_t>(rng() % next_id);
      if (sched.find(victim)) {
        ASSERT_TRUE(sched.finish(victim, FinishReason::kAbort, steps));
      }
    }
    if (sched.has_unfinished()) {
      SchedulerOutput out = sched.schedule(steps);
      ASSERT_FALSE(out.empty()) << "live requests but an empty step";
      std::vector<int32_t> sampled = run_fake_step(out, kv, sc.max_batched);
      ASSERT_EQ(static_cast<int>(sampled.size()), out.num_samples);
      sched.postprocess(out, sampled, steps);
      ASSERT_LE(sched.num_running(), sc.max_num_seqs);
    }
    for (auto& seq : sched.take_finished()) {
      ASSERT_TRUE(seq->is_finished());
      ASSERT_TRUE(seq->block_table.empty());
      ASSERT_FALSE(outcome.count(seq->seq_id)) << "finished twice";
      outcome[seq->seq_id] = seq->finish_reason;
      outputs[seq->seq_id].assign(seq->output_token_ids().begin(), seq->output_token_ids().end());
      if (seq->finish_reason == FinishReason::kError) {
        ASSERT_FALSE(seq->error.empty());
      }
    }
  }
  ASSERT_EQ(static_cast<int>(outcome.size()), num_requests) << "a request was dropped";
  const int max_seq_len = std::min(sc.max_model_len, sc.num_blocks * sc.block_size);
  int completed = 0;
  for (auto& [id, req] : requests) {
    const FinishReason r = outcome[id];
    const int n = req.num_prompt_tokens;
    if (n == 0 || n >= max_seq_len) {
      EXPECT_EQ(r, FinishReason::kError) << "request " << id << " with prompt " << n;
      continue;
    }
    if (r == FinishReason::kAbort) continue;
    ++completed;
    Expected e =
        reference(req.token_ids, req.params.max_tokens, max_seq_len, req.params.ignore_eos);
    EXPECT_EQ(r, e.reason) << "request " << id;
    EXPECT_EQ(outputs[id], e.output) << "request " << id;
  }
  *completed_out += completed;
  EXPECT_EQ(bm.num_free_blocks(), sc.num_blocks);
  for (int b = 0; b < sc.num_blocks; ++b) EXPECT_EQ(bm.ref_count(b), 0);
  *preemptions_out += sched.num_preemptions();
  *hits_out += bm.stats().num_hit_tokens;
}

TEST(Scheduler, RandomisedTinyPoolEveryRequestAccountedFor) {
  int64_t preemptions = 0, hits = 0;
  int completed = 0;
  for (uint32_t seed = 0; seed < 12; ++seed) {
    const int bs = 1 + static_cast<int>(seed % 4);
    Scenario sc{/*num_blocks=*/(12 + static_cast<int>(seed % 4) * 4) / bs + 2,
                bs,
                /*max_num_seqs=*/1 + static_cast<int>(seed % 5),
                /*max_batched=*/1 + static_cast<int>(seed * 7 % 23),
                /*max_model_len=*/20,
                /*prefix_caching=*/seed % 3 != 2,
                seed};
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    run_scenario(sc, &preemptions, &hits, &completed);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(preemptions, 0) << "the preemption path was never exercised";
  EXPECT_GT(hits, 0) << "the prefix cache was never hit";
  EXPECT_GT(completed, 12 * 60 / 4) << "too few requests ran to completion to mean anything";
}

TEST(Scheduler, RejectsPromptsThatCanNeverRun) {
  BlockManager bm(4, 4, true);  // 16 tokens of KV
  SchedulerConfig cfg;
  cfg.max_model_len = 100;
  Scheduler sched(cfg, bm);
  EXPECT_EQ(sched.max_seq_len(), 16);
  sched.add(std::make_unique<Sequence>(0, std::vector<int32_t>{}, SamplingParams{}, 0), 0);
  sched.add(std::make_unique<Sequence>(1, std::vector<int32_t>(16, 3), SamplingParams{}, 0), 0);
  sched.add(std::make_unique<Sequence>(2, std::vector<int32_t>(15, 3), SamplingParams{}, 0), 0);
  auto done = sched.take_finished();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0]->finish_reason, FinishReason::kError);
  EXPECT_NE(done[0]->error.find("empty"), std::string::npos);
  EXPECT_EQ(done[1]->finish_reason, FinishReason::kError);
  EXPECT_NE(done[1]->error.find("KV cache"), std::string::npos);
  EXPECT_EQ(sched.num_waiting(), 1);
}

TEST(Scheduler, ChunksPrefillUnderTheTokenBudget) {
  BlockManager bm(16, 4, false);
  SchedulerConfig cfg;
  cfg.max_num_batched_tokens = 5;
  Scheduler sched(cfg, bm);
  sched.add(std::make_unique<Sequence>(0, std::vector<int32_t>(12, 3), SamplingParams{}, 0), 0);
  std::vector<int> chunks;
  for (int i = 0; i < 3; ++i) {
    SchedulerOutput out = sched.schedule(0);
    ASSERT_EQ(out.seqs.size(), 1u);
    chunks.push_back(out.seqs[0].num_new_tokens);
    EXPECT_EQ(out.seqs[0].sample, i == 2);
    std::vector<int32_t> sampled(out.num_samples, 5);
    sched.postprocess(out, sampled, 0);
  }
  EXPECT_EQ(chunks, (std::vector<int>{5, 5, 2}));
}

TEST(Scheduler, PreemptsTheYoungestFirst) {
  BlockManager bm(3, 2, false);
  SchedulerConfig cfg;
  Scheduler sched(cfg, bm);
  SamplingParams p;
  p.max_tokens = 100;
  p.ignore_eos = true;
  cfg.eos_token_ids = {};
  for (int i = 0; i < 3; ++i) {
    sched.add(std::make_unique<Sequence>(i, std::vector<int32_t>{1, 2}, p, 0), 0);
  }
  // Step 1: three prefills of 2 tokens fill the 3 blocks.
  SchedulerOutput out = sched.schedule(0);
  ASSERT_EQ(out.seqs.size(), 3u);
  sched.postprocess(out, std::vector<int32_t>{7, 7, 7}, 0);
  // Step 2: each needs a third slot -> a new block; the youngest (id 2) is preempted for id 0,
  // then id 1 preempts itself.
  out = sched.schedule(1);
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].seq->seq_id, 0);
  EXPECT_EQ(out.num_preempted, 2);
  EXPECT_EQ(sched.num_waiting(), 2);
  EXPECT_EQ(sched.find(2)->metrics.num_preemptions, 1);
  EXPECT_EQ(sched.find(1)->metrics.num_preemptions, 1);
  EXPECT_EQ(sched.find(2)->num_computed_tokens, 0);
}

}  // namespace
}  // namespace hardkv
