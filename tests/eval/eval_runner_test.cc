// The eval runner (src/eval/eval_runner.h): requests are the problems in ChatML written out here
// with per-request seeds and clamped lengths; grading sums hand-made outputs into the accuracy,
// interval, mean length and truncations computed here; the files hold them; an end-to-end run on a
// random tiny model returns exactly what LLM::generate gives for the same prompts and seeds.
#include "eval/eval_runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "hardkv/llm.h"
#include "model/random_checkpoint.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hardkv::eval {
namespace {

namespace fs = std::filesystem;

const fs::path& work_dir() {  // a random "tiny" checkpoint (byte-level tokenizer) + scratch files
  static const fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("hardkv_eval_runner_" + std::to_string(getpid()));
    fs::remove_all(p);
    RandomCheckpointOptions opt;
    opt.seed = 21;
    opt.dtype = DType::kF32;
    write_random_checkpoint(model_preset("tiny"), (p / "model").string(), opt);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(
          fs::temp_directory_path() / ("hardkv_eval_runner_" + std::to_string(getpid())), ec);
    });
    return p;
  }();
  return dir;
}

std::string chatml(const std::string& problem) {
  return "<|im_start|>user\n" + problem + "<|im_end|>\n<|im_start|>assistant\n";
}

// Tokens of chatml(problem) under the byte-level tokenizer: one per byte, one per special token.
int chatml_tokens(const std::string& problem) {
  const std::string s = chatml(problem);
  return static_cast<int>(s.size() - 2 * std::string("<|im_start|>").size() -
                          std::string("<|im_end|>").size()) +
         3;
}

std::vector<DatasetRow> two_rows() {
  return {{"a", "What is 3 + 4?", "7"}, {"b", "Half of one, please, as a fraction.", "\\frac12"}};
}

TEST(BuildEvalRequests, ChatPromptsSeedsAndClampedLengths) {
  const Tokenizer tok = Tokenizer::from_dir((work_dir() / "model").string());
  const ChatTemplate chat = ChatTemplate::detect(tok.chat_template());
  SamplingParams sp;
  sp.seed = 10;
  sp.max_tokens = 1000;
  const std::vector<DatasetRow> rows = two_rows();
  const int max_model_len = 64;
  const std::vector<EvalRequest> q = build_eval_requests(rows, 3, sp, chat, tok, max_model_len);
  ASSERT_EQ(q.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const int r = i / 3;
    EXPECT_EQ(q[i].row_idx, r);
    EXPECT_EQ(q[i].sample_idx, i % 3);
    EXPECT_EQ(q[i].prompt, chatml(rows[r].problem));
    EXPECT_EQ(q[i].params.seed, 10 + i);
    EXPECT_EQ(q[i].params.max_tokens, max_model_len - chatml_tokens(rows[r].problem)) << i;
  }
  sp.seed = -1;
  sp.max_tokens = 5;  // below the context left: kept
  const std::vector<EvalRequest> u = build_eval_requests(rows, 1, sp, chat, tok, max_model_len);
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[1].params.seed, -1);
  EXPECT_EQ(u[1].params.max_tokens, 5);
  // A prompt longer than the context still asks for one token (the engine reports the error).
  const std::vector<EvalRequest> l = build_eval_requests(rows, 1, sp, chat, tok, 10);
  EXPECT_EQ(l[0].params.max_tokens, 1);
  EXPECT_THROW(build_eval_requests(rows, 0, sp, chat, tok, 64), Error);
}

RequestOutput output(const std::string& text, int num_tokens, FinishReason reason) {
  RequestOutput o;
  o.text = text;
  o.token_ids.assign(num_tokens, 1);
  o.finish_reason = reason;
  return o;
}

TEST(GradeEval, SummaryAndFilesFromHandMadeOutputs) {
  const fs::path out = work_dir() / "grade";
  fs::create_directories(out);
  EvalOptions o;
  o.out_dir = out.string();
  o.num_samples = 2;
  o.method_label = "rkv/hard";
  o.budget_label = "128 (cap 256)";
  const std::vector<DatasetRow> rows = two_rows();
  std::vector<EvalRequest> q(4);
  for (int i = 0; i < 4; ++i) {
    q[i].row_idx = i / 2;
    q[i].sample_idx = i % 2;
  }
  const std::vector<RequestOutput> outs = {
      output("so it is \\boxed{7}.", 10, FinishReason::kStop),         // correct
      output("\\boxed{8}", 20, FinishReason::kStop),                   // wrong
      output("one half: \\boxed{0.5}", 30, FinishReason::kStop),       // correct (= \frac12)
      output("no box, cut off at the limit", 40, FinishReason::kLength)};  // wrong, truncated
  const EvalSummary s = grade_eval(o, rows, q, outs);
  EXPECT_EQ(s.num_problems, 2);
  EXPECT_EQ(s.num_samples, 4);
  EXPECT_EQ(s.num_correct, 2);
  EXPECT_DOUBLE_EQ(s.accuracy, 0.5);
  EXPECT_NEAR(s.ci95, 1.96 * std::sqrt(0.5 * 0.5 / 4), 1e-12);
  EXPECT_DOUBLE_EQ(s.mean_generated_tokens, 25.0);
  EXPECT_EQ(s.num_truncated, 1);

  std::ifstream lines(out / "samples.jsonl");
  std::vector<nlohmann::json> rows_out;
  for (std::string line; std::getline(lines, line);) rows_out.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows_out.size(), 4u);
  const int scores[] = {1, 0, 1, 0};
  const char* extracted[] = {"7", "8", "0.5", ""};
  const char* ids[] = {"a", "a", "b", "b"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(rows_out[i].at("id"), ids[i]);
    EXPECT_EQ(rows_out[i].at("sample"), i % 2);
    EXPECT_EQ(rows_out[i].at("score"), scores[i]) << i;
    EXPECT_EQ(rows_out[i].at("extracted"), extracted[i]) << i;
    EXPECT_EQ(rows_out[i].at("num_tokens"), 10 * (i + 1));
  }
  EXPECT_EQ(rows_out[3].at("finish_reason"), "length");

  std::ifstream js(out / "summary.json");
  const nlohmann::json j = nlohmann::json::parse(js);
  EXPECT_EQ(j.at("method"), "rkv/hard");
  EXPECT_EQ(j.at("num_correct"), 2);
  EXPECT_EQ(j.at("samples_per_problem"), 2);
  EXPECT_DOUBLE_EQ(j.at("accuracy").get<double>(), 0.5);
  std::ifstream md_in(out / "summary.md");
  std::stringstream md;
  md << md_in.rdbuf();
  EXPECT_NE(md.str().find("| rkv/hard | 128 (cap 256) | 0.500 | 0.490 | 25.0 | 1 |"),
            std::string::npos)
      << md.str();

  EXPECT_THROW(grade_eval(o, rows, q, std::vector<RequestOutput>(3)), Error);
}

TEST(RunEval, OutputsEqualDirectGenerateWithTheSameSeeds) {
  const fs::path dir = work_dir();
  {
    std::ofstream d(dir / "data.jsonl");
    d << R"({"id": 1, "problem": "Count to three.", "answer": "3"})" << "\n";
    d << R"({"id": 2, "problem": "Name a colour.", "answer": "red"})" << "\n";
    d << R"({"id": 3, "problem": "Not used (--limit 2).", "answer": "0"})" << "\n";
  }
  EvalOptions o;
  o.model_dir = (dir / "model").string();
  o.dataset_path = (dir / "data.jsonl").string();
  o.out_dir = (dir / "run").string();
  o.num_samples = 2;
  o.limit = 2;
  o.sampling.temperature = 0.8f;
  o.sampling.top_k = 50;
  o.sampling.seed = 5;
  o.sampling.max_tokens = 12;
  o.engine.backend = "cpu";
  o.engine.num_kv_blocks = 128;
  o.engine.kv_block_size = 4;
  const EvalSummary s = run_eval(o);
  EXPECT_EQ(s.num_problems, 2);
  EXPECT_EQ(s.num_samples, 4);

  std::vector<std::string> prompts = {chatml("Count to three."), chatml("Count to three."),
                                      chatml("Name a colour."), chatml("Name a colour.")};
  std::vector<SamplingParams> params(4, o.sampling);
  for (int i = 0; i < 4; ++i) params[i].seed = 5 + i;
  LLM llm(o.model_dir, o.engine);
  const std::vector<RequestOutput> ref = llm.generate(prompts, params, false);

  std::ifstream lines(dir / "run" / "samples.jsonl");
  int i = 0;
  double tokens = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    ASSERT_LT(i, 4);
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("id"), i < 2 ? "1" : "2");
    EXPECT_EQ(j.at("text"), ref[i].text) << i;
    EXPECT_EQ(j.at("num_tokens"), ref[i].token_ids.size()) << i;
    tokens += static_cast<double>(ref[i].token_ids.size());
  }
  EXPECT_EQ(i, 4);
  EXPECT_DOUBLE_EQ(s.mean_generated_tokens, tokens / 4);
  EXPECT_NE(ref[0].text, ref[1].text);  // the two samples of a problem use different seeds
}

}  // namespace
}  // namespace hardkv::eval
