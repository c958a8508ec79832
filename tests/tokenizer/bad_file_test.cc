// Malformed tokenizer files end in Error(kBadFile) (kUnsupported for valid but unhandled parts)
// whose message names the file and the problem.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "tiny_tokenizer.h"

namespace hardkv {
namespace {

using test::TempDir;

// Runs `load` and checks the error kind and that the message has every expected fragment.
void expect_error(const std::function<void()>& load, ErrorKind kind,
                  const std::vector<std::string>& fragments) {
  try {
    load();
    ADD_FAILURE() << "no error thrown; expected one mentioning " << fragments.front();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.message();
    for (const auto& f : fragments) {
      EXPECT_NE(e.message().find(f), std::string::npos) << "'" << f << "' not in: " << e.message();
    }
  }
}

nlohmann::json valid_json() {
  test::TinySpec spec;
  spec.merges = {{"a", "b"}};
  return test::tiny_tokenizer_json(spec);
}

void expect_bad_json(const nlohmann::json& j, ErrorKind kind, const std::string& problem) {
  TempDir dir;
  const std::string path = dir.write("tokenizer.json", j.dump());
  expect_error([&] { Tokenizer::from_file(path); }, kind, {path, problem});
}

TEST(BadTokenizerFile, ValidBaselineLoads) {
  TempDir dir;
  EXPECT_NO_THROW(Tokenizer::from_file(dir.write("tokenizer.json", valid_json().dump())));
}

TEST(BadTokenizerFile, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  expect_error([&] { Tokenizer::from_file(path); }, ErrorKind::kBadFile, {path, "cannot open"});
  expect_error([&] { Tokenizer::from_dir(dir.dir()); }, ErrorKind::kBadFile, {path, "cannot open"});
  expect_error([&] { Tokenizer::from_file(dir.dir()); }, ErrorKind::kBadFile,
               {dir.dir(), "not a regular file"});
}

TEST(BadTokenizerFile, NotJson) {
  TempDir dir;
  const std::string path = dir.write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
  expect_error([&] { Tokenizer::from_file(path); }, ErrorKind::kBadFile, {path, "not valid JSON"});
  const std::string array_path = dir.write("array.json", "[1, 2]");
  expect_error([&] { Tokenizer::from_file(array_path); }, ErrorKind::kBadFile,
               {array_path, "not a JSON object"});
}

TEST(BadTokenizerFile, MissingModelOrVocabOrMerges) {
  nlohmann::json j = valid_json();
  j.erase("model");
  expect_bad_json(j, ErrorKind::kBadFile, "no \"model\"");
  j = valid_json();
  j["model"].erase("vocab");
  expect_bad_json(j, ErrorKind::kBadFile, "\"vocab\"");
  j = valid_json();
  j["model"].erase("merges");
  expect_bad_json(j, ErrorKind::kBadFile, "\"merges\"");
  j = valid_json();
  j["model"]["vocab"]["Ġ"] = "not a number";
  expect_bad_json(j, ErrorKind::kBadFile, "non-integer id");
}

TEST(BadTokenizerFile, UnknownModelType) {
  nlohmann::json j = valid_json();
  j["model"]["type"] = "WordPiece";
  expect_bad_json(j, ErrorKind::kBadFile, "model type \"WordPiece\"");
  j["model"].erase("type");
  expect_bad_json(j, ErrorKind::kBadFile, "no \"type\"");
}

TEST(BadTokenizerFile, MergeReferencingUnknownToken) {
  nlohmann::json j = valid_json();
  j["model"]["merges"].push_back("a zzz");
  expect_bad_json(j, ErrorKind::kBadFile, "model.merges[1] references token \"zzz\"");
  j = valid_json();
  j["model"]["merges"].push_back(nlohmann::json::array({"qq", "a"}));
  expect_bad_json(j, ErrorKind::kBadFile, "model.merges[1] references token \"qq\"");
  j = valid_json();
  j["model"]["merges"].push_back("b c");  // "bc" is not in the vocab
  expect_bad_json(j, ErrorKind::kBadFile, "produces \"bc\"");
  j = valid_json();
  j["model"]["merges"].push_back("abc");
  expect_bad_json(j, ErrorKind::kBadFile, "model.merges[1]");
  j = valid_json();
  j["model"]["merges"].push_back(42);
  expect_bad_json(j, ErrorKind::kBadFile, "model.merges[1]");
}

TEST(BadTokenizerFile, BadAddedTokensAndPreTokenizer) {
  nlohmann::json j = valid_json();
  j["added_tokens"].push_back({{"content", "<x>"}});
  expect_bad_json(j, ErrorKind::kBadFile, "added_tokens[0] has no integer \"id\"");
  j = valid_json();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_bad_json(j, ErrorKind::kBadFile, "cannot compile pre-tokenizer regex");
  j = valid_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_bad_json(j, ErrorKind::kUnsupported, "pre_tokenizer type \"Whitespace\"");
  j = valid_json();
  j["pre_tokenizer"] = 42;
  expect_bad_json(j, ErrorKind::kBadFile, "pre_tokenizer");
  j = valid_json();
  j["pre_tokenizer"] = nullptr;
  j["decoder"] = nullptr;  // neither byte-level nor a decoder: hardkv cannot decode
  expect_bad_json(j, ErrorKind::kUnsupported, "without a decoder");
  j = valid_json();
  j["decoder"] = {{"type", "WordPiece"}};
  expect_bad_json(j, ErrorKind::kUnsupported, "decoder type \"WordPiece\"");
  j = valid_json();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_bad_json(j, ErrorKind::kUnsupported, "normalizer type \"Lowercase\"");
}

TEST(BadTokenizerFile, BadTokenizerConfig) {
  TempDir dir;
  dir.write("tokenizer.json", valid_json().dump());
  const std::string config = dir.write("tokenizer_config.json", "{ bad");
  expect_error([&] { Tokenizer::from_dir(dir.dir()); }, ErrorKind::kBadFile,
               {config, "not valid JSON"});
  dir.write("tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  expect_error([&] { Tokenizer::from_dir(dir.dir()); }, ErrorKind::kBadFile,
               {config, "eos_token \"<|nope|>\" is not a token"});
  dir.write("tokenizer_config.json", R"({"bos_token": 7})");
  expect_error([&] { Tokenizer::from_dir(dir.dir()); }, ErrorKind::kBadFile, {config, "bos_token"});
}

}  // namespace
}  // namespace hardkv
