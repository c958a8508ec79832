// End-to-end tests of the HARD-KV flags of the `hardkv` binary: generate --kv-mode hard with
// --stats-out writes the expected JSON, no-eviction output equals dense, bench reports the mode,
// impossible combinations exit non-zero with a clear message.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"

namespace {

namespace fs = std::filesystem;

using Result = hardkv::testing::CliResult;
Result run(const std::string& args) { return hardkv::testing::run_hardkv(args); }

// Small HARD-KV settings for the tiny model: a ~70-token prompt gets compressed.
const char* kSmallHard =
    " --kv-mode hard --budget 24 --upper-budget 48 --window 8 --sinks 1 --interval 8"
    " --obs-window 8 --page-size 4";
const char* kPrompt =
    " -p 'The quick brown fox jumps over the lazy dog, then runs far away into the woods.'";

class HardKVCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("hardkv_hcli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    Result r = run("make-model --preset tiny --random --seed 3 --out " + (dir_ / "tiny").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string model() { return (dir_ / "tiny").string(); }
  static fs::path dir_;
};
fs::path HardKVCli::dir_;

TEST_F(HardKVCli, GenerateStatsOutHasSelectionMemoryAndTimes) {
  const fs::path stats = dir_ / "stats.json";
  Result r = run("generate -m " + model() + kPrompt + kSmallHard +
                 " --strategy rkv --allocation hard --max-tokens 40 --temperature 0"
                 " --ignore-eos --backend cpu --stats-out " +
                 stats.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(stats);
  ASSERT_TRUE(in.good()) << "no stats file";
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("kv_mode"), "hard");
  EXPECT_EQ(j.at("compression").at("strategy"), "rkv");
  EXPECT_EQ(j.at("compression").at("budget"), 24);
  const nlohmann::json& sel = j.at("selection");
  const int L = sel.at("num_layers"), H = sel.at("num_kv_heads");
  EXPECT_EQ(L, 2);  // the tiny preset
  EXPECT_EQ(H, 2);
  for (const char* key : {"kept_mean", "kept_last", "temperature_mean", "temperature_last"}) {
    ASSERT_EQ(sel.at(key).size(), static_cast<size_t>(L)) << key;
    ASSERT_EQ(sel.at(key)[0].size(), static_cast<size_t>(H)) << key;
  }
  EXPECT_GT(sel.at("events")[0].get<int>(), 0);
  EXPECT_GT(j.at("events").at("count").get<int>(), 0);
  EXPECT_GE(j.at("events").at("select_seconds").get<double>(), 0.0);
  EXPECT_GE(j.at("events").at("apply_seconds").get<double>(), 0.0);
  const nlohmann::json& mem = j.at("memory");
  const size_t steps = mem.at("step").size();
  EXPECT_GE(steps, 40u);  // one sample per engine step
  for (const char* key : {"dense_bytes", "condensed_bytes", "sparse_bytes", "total_bytes",
                          "dense_equivalent_bytes"}) {
    EXPECT_EQ(mem.at(key).size(), steps) << key;
  }
  // Somewhere during the run the condensed tier held tokens and the total was below dense.
  bool condensed = false, below = false;
  for (size_t i = 0; i < steps; ++i) {
    condensed |= mem["condensed_bytes"][i].get<int64_t>() > 0;
    below |= mem["total_bytes"][i].get<int64_t>() < mem["dense_equivalent_bytes"][i].get<int64_t>();
  }
  EXPECT_TRUE(condensed);
  EXPECT_TRUE(below);
}

TEST_F(HardKVCli, NoEvictionGenerateEqualsDense) {
  const std::string common = "generate -m " + model() + kPrompt +
                             " --max-tokens 20 --temperature 0 --ignore-eos --backend cpu";
  Result dense = run(common);
  Result hard = run(common + " --kv-mode hard --strategy snapkv --allocation hard --budget 512");
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  ASSERT_EQ(hard.exit_code, 0) << hard.err;
  EXPECT_EQ(hard.out, dense.out);
}

TEST_F(HardKVCli, BenchReportsKvMode) {
  Result r =
      run("bench -m " + model() +
          " --num-seqs 3 --input-len 40:60 --output-len 24 --json --backend cpu" + kSmallHard);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("kv_mode"), "hard");
  EXPECT_GT(j.at("kv_compression_events").get<int>(), 0);
}

TEST_F(HardKVCli, ImpossibleCombinationsExitWithMessage) {
  Result r = run("generate -m " + model() + " -p hi --kv-mode hard --budget 100 --window 128");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("budget"), std::string::npos) << r.err;

  r = run("generate -m " + model() + " -p hi --kv-mode hard --strategy nope");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;

  r = run("generate -m " + model() + " -p hi --kv-mode sparse");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("kv-mode"), std::string::npos) << r.err;
}

TEST_F(HardKVCli, HelpListsKvFlags) {
  for (const char* cmd : {"generate", "bench", "eval"}) {
    Result r = run(std::string(cmd) + " --help");
    ASSERT_EQ(r.exit_code, 0) << cmd;
    for (const char* flag :
         {"--kv-mode", "--strategy", "--allocation", "--budget", "--upper-budget", "--p-attn",
          "--window", "--sinks", "--interval", "--obs-window", "--page-size", "--rewrite-threshold",
          "--rewrite-every-time", "--stats-out"}) {
      EXPECT_NE(r.out.find(flag), std::string::npos) << cmd << " lacks " << flag;
    }
  }
}

}  // namespace
