// EngineConfig::validate names the bad field; the engine's derived limits never change the config.
#include "hardkv/engine_config.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "hardkv/llm.h"
#include "tiny_model.h"

namespace hardkv {
namespace {

void expect_invalid(const EngineConfig& c, const std::string& field) {
  try {
    c.validate();
    ADD_FAILURE() << "no error for bad " << field;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(e.message().find(field), std::string::npos) << e.message();
  }
}

TEST(EngineConfig, DefaultsAreNanoVllmsAndValid) {
  EngineConfig c;
  EXPECT_EQ(c.max_num_batched_tokens, 16384);
  EXPECT_EQ(c.max_num_seqs, 512);
  EXPECT_EQ(c.max_model_len, 4096);
  EXPECT_FLOAT_EQ(c.gpu_memory_utilization, 0.9f);
  EXPECT_NO_THROW(c.validate());
}

TEST(EngineConfig, ValidateNamesTheBadField) {
  EngineConfig c;
  c.max_num_seqs = 0;
  expect_invalid(c, "max_num_seqs");
  c = EngineConfig{};
  c.max_num_batched_tokens = -3;
  expect_invalid(c, "max_num_batched_tokens");
  c = EngineConfig{};
  c.gpu_memory_utilization = 1.5f;
  expect_invalid(c, "gpu_memory_utilization");
  c = EngineConfig{};
  c.kv_block_size = 0;
  expect_invalid(c, "kv_block_size");
  c = EngineConfig{};
  c.num_kv_blocks = 0;
  expect_invalid(c, "num_kv_blocks");
  c = EngineConfig{};
  c.backend = "tpu";
  expect_invalid(c, "backend");
}

TEST(EngineConfig, PoolBoundsTheSequenceLengthWithoutDeadlock) {
  EngineConfig c;
  c.backend = "cpu";
  c.kv_block_size = 4;
  c.num_kv_blocks = 4;  // 16 tokens of KV in all
  LLM llm(test::tiny_model_dir(), c);
  EXPECT_EQ(llm.stats().max_model_len, 16);
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = 100;
  std::vector<std::vector<int32_t>> prompts = {std::vector<int32_t>(10, 65),
                                               std::vector<int32_t>(12, 66)};
  auto outs = llm.generate(prompts, p, false);
  EXPECT_EQ(outs[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(outs[0].token_ids.size(), 6u);
  EXPECT_EQ(outs[1].finish_reason, FinishReason::kLength);
  EXPECT_EQ(outs[1].token_ids.size(), 4u);
  // One params per prompt or one for all: anything else is a caller error.
  std::vector<SamplingParams> two(2, p), three(3, p);
  EXPECT_NO_THROW(llm.generate(prompts, two, false));
  EXPECT_THROW(llm.generate(prompts, three, false), Error);
}

}  // namespace
}  // namespace hardkv
