// End-to-end tests of the `hardkv` binary: make-model -> generate, help text, and one-line errors
// with a non-zero exit code on broken checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.h"

namespace {

namespace fs = std::filesystem;

using Result = hardkv::testing::CliResult;
Result run(const std::string& args) { return hardkv::testing::run_hardkv(args); }

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("hardkv_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    Result r = run("make-model --preset tiny --random --seed 3 --out " + (dir_ / "tiny").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static fs::path model() { return dir_ / "tiny"; }
  // A copy of the tiny model whose model.safetensors gets damaged by the test.
  static fs::path damaged_copy(const std::string& name) {
    fs::path d = dir_ / name;
    fs::remove_all(d);
    fs::copy(model(), d);
    return d;
  }
  static fs::path dir_;
};
fs::path Cli::dir_;

TEST_F(Cli, GenerateStreamsDeterministicGreedyText) {
  const std::string args = "generate -m " + model().string() +
                           " -p 'Hello there' --max-tokens 24 --temperature 0 --backend cpu";
  Result a = run(args), b = run(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_GT(a.out.size(), 1u);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.err, "");
}

TEST_F(Cli, SeededSamplingIsReproducible) {
  const std::string args = "generate -m " + model().string() +
                           " -p 'Hi' --max-tokens 16 --temperature 0.9 --top-k 50 --seed 11";
  Result a = run(args), b = run(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST_F(Cli, HelpDescribesEveryGenerateFlag) {
  Result r = run("generate --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--model", "--prompt", "--max-tokens", "--temperature", "--top-k",
                           "--top-p", "--min-p", "--seed", "--stop", "--ignore-eos"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST_F(Cli, TruncatedCheckpointGivesOneLineErrorNamingTheFile) {
  fs::path d = damaged_copy("truncated");
  const fs::path st = d / "model.safetensors";
  fs::resize_file(st, fs::file_size(st) / 2);
  Result r = run("generate -m " + d.string() + " -p hi --max-tokens 4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("hardkv: error: ", 0), 0u) << r.err;
}

TEST_F(Cli, CorruptedHeaderGivesOneLineErrorNamingTheFile) {
  fs::path d = damaged_copy("corrupted");
  std::fstream f(d / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(8);
  f.write("#garbage#", 9);
  f.close();
  Result r = run("generate -m " + d.string() + " -p hi --max-tokens 4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("JSON"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(Cli, MissingModelDirectoryIsNamed) {
  Result r = run("generate -m /nonexistent/model -p hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/model"), std::string::npos) << r.err;
}

}  // namespace
