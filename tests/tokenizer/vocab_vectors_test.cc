// llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf.inp/.out, produced with HF tokenizers):
// qwen2 vectors against the Qwen3 tokenizer.json, llama-bpe vectors against Llama-3's. Every case
// must match, and decode(encode(text)) must give the text back.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "test_assets.h"

namespace hardkv {
namespace {

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads the vectors as llama.cpp's tests/test-tokenizer-0.cpp does: texts are separated by
// "\n__ggml_vocab_test__\n"; the .out file has one line of space-separated ids per text.
std::vector<VocabCase> read_vocab_cases(const std::string& base) {
  const std::string inp = test::read_file(test::asset_path(base + ".inp"));
  const std::string out = test::read_file(test::asset_path(base + ".out"));
  std::vector<std::string> texts;
  const std::string sep = "\n__ggml_vocab_test__\n";
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> id_lines;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::vector<int32_t> ids;
    for (int32_t id; fields >> id;) ids.push_back(id);
    id_lines.push_back(std::move(ids));
  }
  EXPECT_EQ(texts.size(), id_lines.size()) << base << ": .inp and .out disagree on the case count";
  std::vector<VocabCase> cases;
  for (size_t i = 0; i < std::min(texts.size(), id_lines.size()); ++i) {
    cases.push_back({texts[i], id_lines[i]});
  }
  return cases;
}

void check_vocab(const std::string& tokenizer_name, const std::string& vocab_name) {
  const Tokenizer* tok = test::real_tokenizer(tokenizer_name);
  ASSERT_NE(tok, nullptr);
  const auto cases = read_vocab_cases("vocab/ggml-vocab-" + vocab_name + ".gguf");
  ASSERT_GE(cases.size(), 40u) << "too few vectors: are the test assets complete?";
  for (size_t i = 0; i < cases.size(); ++i) {
    const VocabCase& c = cases[i];
    const std::vector<int32_t> ids = tok->encode(c.text);
    EXPECT_EQ(ids, c.ids) << vocab_name << " case " << i << ": \"" << c.text << "\"";
    EXPECT_EQ(tok->decode(ids), c.text) << vocab_name << " case " << i;
  }
}

TEST(VocabVectors, Qwen2VectorsWithQwen3Tokenizer) { check_vocab("qwen3", "qwen2"); }

TEST(VocabVectors, LlamaBpeVectorsWithLlama3Tokenizer) { check_vocab("llama3", "llama-bpe"); }

}  // namespace
}  // namespace hardkv
