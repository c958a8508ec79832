// 600 seeded random texts (scripts, whitespace kinds, digits, contractions, combining marks, emoji,
// special-token look-alikes) against the ids HuggingFace tokenizers 0.23.2 gives with the real
// Qwen3 and Llama-3 tokenizer.json files (data/hf_tokenizers_stress.json; data/make_hf_stress.js
// regenerates it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_assets.h"

namespace hardkv {
namespace {

nlohmann::json load_stress_cases() {
  const auto path =
      std::filesystem::path(__FILE__).parent_path() / "data/hf_tokenizers_stress.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return in.good() ? nlohmann::json::parse(in) : nlohmann::json::object();
}

void check_against_hf(const std::string& name) {
  const Tokenizer* tok = test::real_tokenizer(name);
  ASSERT_NE(tok, nullptr);
  const nlohmann::json data = load_stress_cases();
  ASSERT_TRUE(data.contains("cases"));
  ASSERT_EQ(data["cases"].size(), 600u);
  int num_mismatches = 0;
  for (const auto& c : data["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> expected = c[name].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok->encode(text);
    if (ids != expected && ++num_mismatches <= 5) {
      ADD_FAILURE() << name << ": " << nlohmann::json(text).dump() << " differs from HF tokenizers";
    }
    // Llama-3 has no normalizer, so decoding must give the text back byte for byte.
    if (name == "llama3") {
      EXPECT_EQ(tok->decode(ids), text);
    }
  }
  EXPECT_EQ(num_mismatches, 0) << name;
}

TEST(HfStress, Qwen3MatchesHfTokenizers) { check_against_hf("qwen3"); }

TEST(HfStress, Llama3MatchesHfTokenizers) { check_against_hf("llama3"); }

}  // namespace
}  // namespace hardkv
