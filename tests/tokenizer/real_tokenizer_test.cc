// The real Qwen3 and Llama-3 tokenizer.json files: added/special tokens written in the text, NFC
// under Qwen, Llama-3's BOS with add_special_tokens, config-derived ids, long and odd inputs,
// encoding speed (100 KB well under a second) and concurrent encodes.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_assets.h"

namespace hardkv {
namespace {

using Ids = std::vector<int32_t>;

TEST(RealTokenizer, QwenSpecialTokensInText) {
  const Tokenizer* tok = test::real_tokenizer("qwen3");
  ASSERT_NE(tok, nullptr);
  // <|im_start|>=151644 user=872 \n=198 hi=6023 <|im_end|>=151645 (Qwen2/3 vocabulary).
  EXPECT_EQ(tok->encode("<|im_start|>user\nhi<|im_end|>"), (Ids{151644, 872, 198, 6023, 151645}));
  EXPECT_EQ(tok->encode("<think>\n\n</think>\n\n"), (Ids{151667, 271, 151668, 271}));
  EXPECT_TRUE(tok->is_special(151644));
  EXPECT_FALSE(tok->is_special(151667));  // <think> is an added, non-special token
  EXPECT_FALSE(tok->is_special(872));
  EXPECT_EQ(tok->decode(Ids{151644, 872, 198, 6023, 151645}, /*skip_special_tokens=*/true),
            "user\nhi");
  EXPECT_EQ(tok->vocab_size(), 151669);
  EXPECT_EQ(tok->token_to_id("<|endoftext|>"), 151643);
  EXPECT_EQ(tok->id_to_token(198), "Ċ");
}

TEST(RealTokenizer, UnparsedSpecialTokensEncodeAsText) {
  const Tokenizer* tok = test::real_tokenizer("qwen3");
  ASSERT_NE(tok, nullptr);
  // With parse_special_tokens = false "<|im_start|>" is text ("<|", "im", "_start", "|>" under the
  // Qwen2 regex); the non-special added token <think> still matches.
  Ids expected;
  for (const char* piece : {"<|", "im", "_start", "|>", "user"}) {
    const Ids ids = tok->encode(piece);
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  expected.push_back(151667);
  const Ids ids = tok->encode("<|im_start|>user<think>", false, /*parse_special_tokens=*/false);
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151644), 0);
  EXPECT_EQ(tok->decode(ids), "<|im_start|>user<think>");
}

TEST(RealTokenizer, QwenNfcMakesDecomposedTextEncodeLikeComposed) {
  const Tokenizer* qwen = test::real_tokenizer("qwen3");
  const Tokenizer* llama = test::real_tokenizer("llama3");
  ASSERT_NE(qwen, nullptr);
  ASSERT_NE(llama, nullptr);
  const std::string composed = "caf\xC3\xA9 na\xC3\xAFve \xC3\x85ngstr\xC3\xB6m";
  const std::string decomposed = "cafe\xCC\x81 nai\xCC\x88ve A\xCC\x8Angstro\xCC\x88m";
  EXPECT_EQ(qwen->encode(decomposed), qwen->encode(composed));
  EXPECT_EQ(qwen->decode(qwen->encode(decomposed)), composed);
  // Llama-3 has no normalizer: the decomposed bytes stay and tokenise differently.
  EXPECT_NE(llama->encode(decomposed), llama->encode(composed));
  EXPECT_EQ(llama->decode(llama->encode(decomposed)), decomposed);
}

TEST(RealTokenizer, Llama3AddsBosWithAddSpecialTokens) {
  const Tokenizer* llama = test::real_tokenizer("llama3");
  const Tokenizer* qwen = test::real_tokenizer("qwen3");
  ASSERT_NE(llama, nullptr);
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(llama->bos_id(), 128000);
  EXPECT_EQ(llama->eos_id(), 128001);
  EXPECT_EQ(llama->encode("Hello world", /*add_special_tokens=*/true), (Ids{128000, 9906, 1917}));
  EXPECT_EQ(llama->encode("Hello world", /*add_special_tokens=*/false), (Ids{9906, 1917}));
  EXPECT_EQ(llama->encode("<|begin_of_text|>Hi"), (Ids{128000, 13347}));
  // Qwen3 has no BOS.
  EXPECT_EQ(qwen->bos_id(), std::nullopt);
  EXPECT_EQ(qwen->eos_id(), 151645);
  EXPECT_EQ(qwen->encode("Hello world", true), qwen->encode("Hello world", false));
}

TEST(RealTokenizer, LongRunsRoundTrip) {
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer* tok = test::real_tokenizer(name);
    ASSERT_NE(tok, nullptr);
    for (const std::string& text :
         {std::string(20000, ' '), std::string(20000, 'a'), std::string(5000, '7'),
          std::string(3000, '\n') + "x", std::string("\t \n") + std::string(4000, '!') + " ."}) {
      const auto start = std::chrono::steady_clock::now();
      const Ids ids = tok->encode(text);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_EQ(tok->decode(ids), text) << name;
      EXPECT_LT(seconds, 1.0) << name << ": a " << text.size() << "-byte run took " << seconds;
    }
  }
}

// ~100 KB of mixed text: words of several scripts, numbers, punctuation, code and whitespace.
std::string mixed_text(size_t bytes, uint32_t seed) {
  static const std::vector<std::string> words = {
      "the",    "inference", "engine",    "Tokenizer",  "don't",
      "we'll",  "KV-cache",  "attention", "Привет",     "мир",
      "日本語", "テキスト",  "我想在",    "工作",       "Ελληνικά",
      "naïve",  "café",      "🦙",      "🚀",          "😶‍🌫️",
      "✅",      "1314151",   "3.14159",   "2024-11-22", "x_i",
      "->",     "{}",        "();",       "    ",       "\t",
      "\n",     "\n\n",      "  ",        "!!!",        "?",
      "...",    "'s",        "I'M",       "<html>",     "</div>"};
  std::mt19937 rng(seed);
  std::string text;
  while (text.size() < bytes) {
    text += words[rng() % words.size()];
    if (rng() % 3 != 0) text += ' ';
    if (rng() % 7 == 0) text += std::to_string(rng() % 100000);
  }
  return text;
}

TEST(RealTokenizer, Encodes100KilobytesWellUnderASecond) {
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer* tok = test::real_tokenizer(name);
    ASSERT_NE(tok, nullptr);
    const std::string text = mixed_text(100 * 1024, 42);
    const auto start = std::chrono::steady_clock::now();
    const Ids ids = tok->encode(text);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: encoded %zu bytes into %zu tokens in %.1f ms (cold cache)\n", name,
                text.size(), ids.size(), seconds * 1e3);
    EXPECT_LT(seconds, 1.0) << name;
    EXPECT_EQ(tok->decode(ids), text);  // the text is NFC already
    EXPECT_GT(ids.size(), text.size() / 8);
  }
}

TEST(RealTokenizer, ConcurrentEncodesAgree) {
  const Tokenizer* tok = test::real_tokenizer("qwen3");
  ASSERT_NE(tok, nullptr);
  std::vector<std::string> texts;
  for (uint32_t seed = 0; seed < 8; ++seed) texts.push_back(mixed_text(8 * 1024, seed));
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(tok->encode(t));
  std::vector<std::thread> threads;
  std::vector<int> num_wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t idx = (i + t) % texts.size();
          if (tok->encode(texts[idx]) != expected[idx]) ++num_wrong[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(num_wrong[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace hardkv
