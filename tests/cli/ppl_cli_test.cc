// End-to-end tests of `hardkv ppl`: dense and no-eviction HARD-KV runs write the same perplexity,
// the JSON's perplexity is exp(mean NLL) over its chunks, a small budget changes it, and bad
// lengths exit non-zero with a message naming the flag.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"

namespace {

namespace fs = std::filesystem;
using Result = hardkv::testing::CliResult;
Result run(const std::string& args) { return hardkv::testing::run_hardkv(args); }

const char* kHard =
    " --kv-mode hard --strategy snapkv --allocation uniform --window 4 --sinks 1 --interval 4"
    " --obs-window 4 --page-size 4";

class PplCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("hardkv_ppl_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    Result r = run("make-model --preset tiny --random --seed 5 --out " + (dir_ / "tiny").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string text;  // ASCII: one token per byte with the make-model tokenizer
    for (int i = 0; i < 130; ++i) text += static_cast<char>('a' + (i * 11 + i / 5) % 26);
    std::ofstream(dir_ / "text.txt") << text;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string common(const std::string& out) {
    return "ppl --model " + (dir_ / "tiny").string() + " --text " + (dir_ / "text.txt").string() +
           " --chunk-len 40 --prompt-len 6 --backend cpu --out-dir " + (dir_ / out).string();
  }
  static nlohmann::json read_json(const std::string& out) {
    std::ifstream in(dir_ / out / "ppl.json");
    return nlohmann::json::parse(in);
  }
  static fs::path dir_;
};
fs::path PplCli::dir_;

TEST_F(PplCli, DenseAndNoEvictionHardAgreeAndJsonIsConsistent) {
  Result d = run(common("dense"));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NE(d.out.find("full, budget full: perplexity"), std::string::npos) << d.out;
  Result h = run(common("hard") + kHard + " --budget 64 --upper-budget 128");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find("snapkv/uniform, budget 64"), std::string::npos) << h.out;
  const nlohmann::json jd = read_json("dense"), jh = read_json("hard");
  EXPECT_EQ(jd.at("num_chunks"), 3);  // 130 tokens, chunks of 40
  EXPECT_EQ(jd.at("num_scored"), 3 * 34);
  EXPECT_EQ(jh.at("kv_mode"), "hard");
  EXPECT_NEAR(jh.at("perplexity").get<double>(), jd.at("perplexity").get<double>(),
              1e-6 * jd.at("perplexity").get<double>());
  double nll = 0;
  for (const auto& c : jd.at("chunks")) nll += c.at("nll_sum").get<double>();
  EXPECT_NEAR(jd.at("perplexity").get<double>(), std::exp(nll / (3 * 34)), 1e-9);
  EXPECT_TRUE(fs::exists(dir_ / "dense" / "ppl.md"));
}

TEST_F(PplCli, SmallBudgetChangesPerplexity) {
  Result d = run(common("dense2"));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  Result h = run(common("small") + kHard + " --budget 10 --upper-budget 20");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_GT(std::abs(read_json("small").at("nll_sum").get<double>() -
                     read_json("dense2").at("nll_sum").get<double>()),
            1e-3);
}

TEST_F(PplCli, BadLengthsExitNonZero) {
  Result r = run(common("bad") + " --prompt-len 40");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--prompt-len"), std::string::npos) << r.err;
  Result t = run("ppl --model " + (dir_ / "tiny").string() + " --text " +
                 (dir_ / "text.txt").string() + " --chunk-len 500 --backend cpu");
  EXPECT_NE(t.exit_code, 0);
  EXPECT_NE(t.err.find("fewer than one chunk"), std::string::npos) << t.err;
  Result m = run("ppl --model " + (dir_ / "tiny").string() + " --text /nonexistent.txt");
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE(m.err.find("cannot open"), std::string::npos) << m.err;
}

}  // namespace
