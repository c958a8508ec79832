// End-to-end tests of the engine through the CLI: several prompts with --json (input order,
// batch invariance against single runs), --prompts-file, a bad request beside good ones, and
// `hardkv bench --json`.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.h"

namespace {

namespace fs = std::filesystem;
using hardkv::testing::run_hardkv;

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

class EngineCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("hardkv_ecli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    auto r = run_hardkv("make-model --preset tiny --random --seed 5 --out " + model());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string model() { return (dir_ / "tiny").string(); }
  static std::string gen(const std::string& extra) {
    return "generate -m " + model() + " --backend cpu --max-tokens 12 --temperature 0 --json" +
           extra;
  }
  static fs::path dir_;
};
fs::path EngineCli::dir_;

TEST_F(EngineCli, SeveralPromptsAnswerInInputOrderAndMatchSingleRuns) {
  const std::vector<std::string> prompts = {"alpha beta", "x", "a much longer prompt here"};
  std::string flags;
  for (const auto& p : prompts) flags += " -p '" + p + "'";
  auto together = run_hardkv(gen(flags));
  ASSERT_EQ(together.exit_code, 0) << together.err;
  auto lines = json_lines(together.out);
  ASSERT_EQ(lines.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(lines[i].at("index"), i);
    for (const char* key : {"text", "token_ids", "finish_reason", "metrics"}) {
      EXPECT_TRUE(lines[i].contains(key)) << key;
    }
    EXPECT_EQ(lines[i].at("token_ids").size(), 12u);
    auto alone = run_hardkv(gen(" -p '" + prompts[i] + "'"));
    ASSERT_EQ(alone.exit_code, 0) << alone.err;
    auto alone_lines = json_lines(alone.out);
    ASSERT_EQ(alone_lines.size(), 1u);
    EXPECT_EQ(alone_lines[0].at("token_ids"), lines[i].at("token_ids")) << prompts[i];
    EXPECT_EQ(alone_lines[0].at("text"), lines[i].at("text"));
  }
}

TEST_F(EngineCli, PromptsFileEqualsRepeatedPromptFlags) {
  const fs::path file = dir_ / "prompts.jsonl";
  std::ofstream(file) << "{\"prompt\": \"one two\"}\n{\"prompt\": \"three\"}\n";
  auto from_file = run_hardkv(gen(" --prompts-file " + file.string()));
  auto from_flags = run_hardkv(gen(" -p 'one two' -p three"));
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  auto a = json_lines(from_file.out), b = json_lines(from_flags.out);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(a[i].at("token_ids"), b[i].at("token_ids"));
}

TEST_F(EngineCli, BadRequestGetsAnErrorWhileTheOthersComplete) {
  auto r = run_hardkv(gen(" -p '' -p 'fine prompt' --top-p 1"));
  EXPECT_NE(r.exit_code, 0);  // the command reports that a request failed
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("finish_reason"), "error");
  EXPECT_NE(lines[0].at("error").get<std::string>().find("empty prompt"), std::string::npos);
  EXPECT_EQ(lines[1].at("finish_reason"), "length");
  EXPECT_EQ(lines[1].at("token_ids").size(), 12u);
}

TEST_F(EngineCli, BenchJsonCountsTheWorkload) {
  auto r = run_hardkv("bench -m " + model() +
                      " --backend cpu --num-seqs 6 --input-len 5:20 --output-len 4:9 --seed 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  const auto& j = lines[0];
  EXPECT_EQ(j.at("requests"), 6);
  EXPECT_EQ(j.at("errors"), 0);
  EXPECT_GE(j.at("output_tokens").get<int>(), 6 * 4);  // ignore_eos: every request runs to its length
  EXPECT_LE(j.at("output_tokens").get<int>(), 6 * 9);
  EXPECT_GT(j.at("output_tokens_per_s").get<double>(), 0.0);
}

}  // namespace
