// End-to-end tests of `hardkv eval` on a random tiny model: the printed line and the three files
// agree on the counts, HARD-KV flags label the method and budget in summary.json, and a bad
// dataset row or sample count exits non-zero naming what was wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"

namespace {

namespace fs = std::filesystem;
using Result = hardkv::testing::CliResult;
Result run(const std::string& args) { return hardkv::testing::run_hardkv(args); }

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("hardkv_eval_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    Result r = run("make-model --preset tiny --random --seed 9 --out " + (dir_ / "tiny").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream d(dir_ / "data.jsonl");
    d << R"({"id": "p1", "problem": "What is two plus two? Think it through.", "answer": "4"})"
      << "\n\n"  // a blank line is skipped
      << R"({"id": "p2", "problem": "Which is larger, 3 or 5?", "answer": 5})" << "\n";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string common(const std::string& out) {
    return "eval --model " + (dir_ / "tiny").string() + " --dataset " +
           (dir_ / "data.jsonl").string() + " --backend cpu --max-tokens 8 --out-dir " +
           (dir_ / out).string();
  }
  static fs::path dir_;
};
fs::path EvalCli::dir_;

TEST_F(EvalCli, WritesSamplesAndSummaries) {
  Result r = run(common("dense") + " --samples 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A random model writes no \boxed{}: nothing is correct.
  EXPECT_NE(r.out.find("full, budget full: accuracy 0.0000 ± 0.0000 (0/6 samples, 2 problems)"),
            std::string::npos)
      << r.out;
  std::ifstream lines(dir_ / "dense" / "samples.jsonl");
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("id"), n < 3 ? "p1" : "p2");
    EXPECT_EQ(j.at("sample"), n % 3);
    EXPECT_LE(j.at("num_tokens").get<int>(), 8);
  }
  EXPECT_EQ(n, 6);
  std::ifstream js(dir_ / "dense" / "summary.json");
  const nlohmann::json j = nlohmann::json::parse(js);
  EXPECT_EQ(j.at("num_samples"), 6);
  EXPECT_EQ(j.at("samples_per_problem"), 3);
  EXPECT_EQ(j.at("method"), "full");
  EXPECT_TRUE(j.at("budget_tokens").is_null());
  EXPECT_TRUE(fs::exists(dir_ / "dense" / "summary.md"));
}

TEST_F(EvalCli, HardKvFlagsLabelTheRun) {
  Result r = run(common("hard") +
                 " --kv-mode hard --strategy rkv --allocation hard --budget 24 --upper-budget 48"
                 " --window 8 --sinks 1 --interval 8 --obs-window 8 --page-size 4 --stats-out " +
                 (dir_ / "hard_stats.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rkv/hard, budget 24 (cap 48)"), std::string::npos) << r.out;
  std::ifstream js(dir_ / "hard" / "summary.json");
  const nlohmann::json j = nlohmann::json::parse(js);
  EXPECT_EQ(j.at("kv_mode"), "hard");
  EXPECT_EQ(j.at("method"), "rkv/hard");
  EXPECT_EQ(j.at("budget_tokens"), 24);
  std::ifstream st(dir_ / "hard_stats.json");
  EXPECT_EQ(nlohmann::json::parse(st).at("kv_mode"), "hard");
}

TEST_F(EvalCli, BadInputsExitNonZero) {
  std::ofstream(dir_ / "bad.jsonl") << R"({"problem": "no answer"})" << "\n";
  Result r = run("eval --model " + (dir_ / "tiny").string() + " --dataset " +
                 (dir_ / "bad.jsonl").string() + " --out-dir " + (dir_ / "bad").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.jsonl:1"), std::string::npos) << r.err;
  Result s = run(common("zero") + " --samples 0");
  EXPECT_NE(s.exit_code, 0);
  EXPECT_NE(s.err.find("--samples"), std::string::npos) << s.err;
}

}  // namespace
