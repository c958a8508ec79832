// Small hand-written tokenizer.json files: merges as strings and as pairs, merge order against a
// plain-loop BPE reference, ignore_merges, added tokens (longest match, lstrip/rstrip,
// normalized), NFC, the GPT-2 ByteLevel regex, Split behaviours and TemplateProcessing.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tiny_tokenizer.h"

namespace hardkv {
namespace {

using test::byte_char;
using test::TempDir;
using test::TinyAdded;
using test::TinySpec;
using Ids = std::vector<int32_t>;

// Merges giving ids 256.. in this order: he, ll, hell, hello, Ġw, or, Ġwor.
TinySpec hello_spec() {
  TinySpec spec;
  spec.merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"},
                 {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}};
  return spec;
}

TEST(TinyTokenizer, MergesAsStringsAndAsPairsGiveTheSameIds) {
  TempDir dir;
  TinySpec spec = hello_spec();
  const Tokenizer as_strings = test::load_tiny(spec, dir, "strings.json");
  spec.merges_as_pairs = true;
  const Tokenizer as_pairs = test::load_tiny(spec, dir, "pairs.json");
  // hello -> "hello"(259); " world" -> "Ġwor"(262) "l" "d".
  const Ids expected = {259, 262, 108, 100};
  EXPECT_EQ(as_strings.encode("hello world"), expected);
  EXPECT_EQ(as_pairs.encode("hello world"), expected);
  for (const char* text : {"hello", "help hell hello world!", "ollo whorl", ""}) {
    EXPECT_EQ(as_strings.encode(text), as_pairs.encode(text)) << text;
    EXPECT_EQ(as_pairs.decode(as_pairs.encode(text)), text);
  }
  EXPECT_EQ(as_pairs.vocab_size(), 263);
  EXPECT_EQ(as_pairs.token_to_id("Ġwor"), 262);
  EXPECT_EQ(as_pairs.id_to_token(259), "hello");
  EXPECT_EQ(as_pairs.id_to_token(100000), "");
}

TEST(TinyTokenizer, LowerRankMergesFirstAndLeftmostOnTies) {
  TempDir dir;
  TinySpec spec;
  spec.merges = {{"b", "c"}, {"a", "b"}, {"x", "x"}, {"xx", "xx"}};
  const Tokenizer tok = test::load_tiny(spec, dir);
  const int32_t bc = 256, xx = 258, xxxx = 259;
  EXPECT_EQ(tok.encode("abc"), (Ids{'a', bc}));  // "b c" outranks "a b"
  EXPECT_EQ(tok.encode("ab"), (Ids{257}));
  EXPECT_EQ(tok.encode("xxx"), (Ids{xx, 'x'}));  // leftmost pair first
  EXPECT_EQ(tok.encode("xxxx"), (Ids{xxxx}));
  EXPECT_EQ(tok.encode("xxxxx"), (Ids{xxxx, 'x'}));
}

TEST(TinyTokenizer, RepeatedMergeTakesItsLastRank) {
  // HF tokenizers 0.23 gives [a, bc] here: the second "a b" (rank 2) replaces the first.
  TempDir dir;
  TinySpec spec;
  spec.merges = {{"a", "b"}, {"b", "c"}, {"a", "b"}};  // ab = 256, bc = 257
  EXPECT_EQ(test::load_tiny(spec, dir).encode("abc"), (Ids{'a', 257}));
}

TEST(TinyTokenizer, BytesMissingFromTheVocabAreDroppedOrUnk) {
  // Vocabulary a..h and <unk> only; expected ids are what HF tokenizers 0.23 gives.
  nlohmann::json j = test::tiny_tokenizer_json(TinySpec{});
  nlohmann::json vocab = nlohmann::json::object();
  for (int i = 0; i < 8; ++i) vocab[std::string(1, static_cast<char>('a' + i))] = i;
  vocab["<unk>"] = 8;
  j["model"]["vocab"] = vocab;
  TempDir dir;
  EXPECT_EQ(Tokenizer::from_file(dir.write("none.json", j.dump())).encode("a!b zc"),
            (Ids{0, 1, 2}));
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(Tokenizer::from_file(dir.write("unk.json", j.dump())).encode("a!b zc"),
            (Ids{0, 8, 1, 8, 8, 2}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(Tokenizer::from_file(dir.write("fuse.json", j.dump())).encode("a!b zc"),
            (Ids{0, 8, 1, 8, 2}));
}

// Plain-loop BPE: repeatedly merge the lowest-ranked adjacent pair, leftmost on ties.
Ids reference_bpe(const std::string& word,
                  const std::vector<std::pair<std::string, std::string>>& merges,
                  const Tokenizer& tok) {
  std::vector<std::string> symbols;
  for (char c : word) symbols.push_back(byte_char(static_cast<uint8_t>(c)));
  while (true) {
    size_t best_rank = merges.size(), best_pos = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      for (size_t r = 0; r < best_rank; ++r) {
        if (merges[r].first == symbols[i] && merges[r].second == symbols[i + 1]) {
          best_rank = r;
          best_pos = i;
          break;
        }
      }
    }
    if (best_rank == merges.size()) break;
    symbols[best_pos] += symbols[best_pos + 1];
    symbols.erase(symbols.begin() + best_pos + 1);
  }
  Ids ids;
  for (const auto& s : symbols) ids.push_back(*tok.token_to_id(s));
  return ids;
}

TEST(TinyTokenizer, MergeLoopMatchesPlainLoopReferenceOnRandomWords) {
  TempDir dir;
  TinySpec spec;
  spec.merges = {{"a", "b"},   {"b", "a"},   {"a", "a"},  {"ab", "a"},   {"c", "c"},
                 {"ab", "ab"}, {"ba", "c"},  {"aa", "b"}, {"cc", "a"},   {"b", "b"},
                 {"bb", "bb"}, {"a", "bab"}, {"ba", "b"}, {"abab", "c"}, {"aa", "aa"}};
  const Tokenizer tok = test::load_tiny(spec, dir);
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string word;
    const int len = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) word.push_back("abc"[rng() % 3]);
    ASSERT_EQ(tok.encode(word), reference_bpe(word, spec.merges, tok)) << word;
  }
}

TEST(TinyTokenizer, IgnoreMergesEmitsAWholePreTokenFoundInTheVocab) {
  TempDir dir;
  TinySpec spec;
  spec.merges = {{"a", "b"}};
  spec.extra_vocab = {"abc"};  // not reachable through merges
  const int32_t ab = 256, abc = 257;
  EXPECT_EQ(test::load_tiny(spec, dir, "a.json").encode("abc"), (Ids{ab, 'c'}));
  spec.ignore_merges = true;
  EXPECT_EQ(test::load_tiny(spec, dir, "b.json").encode("abc"), (Ids{abc}));
}

TEST(TinyTokenizer, AddedTokensSplitTheTextLongestMatchFirst) {
  TempDir dir;
  TinySpec spec = hello_spec();  // ids 256..262
  spec.added = {{"<|endoftext|>"},   {"<|im_start|>"}, {"<|im_end|>"}, {"<think>", false},
                {"</think>", false}, {"<x>", false},   {"<x>y", false}};
  const Tokenizer tok = test::load_tiny(spec, dir);
  const int32_t eot = 263, im_start = 264, im_end = 265, think = 266, end_think = 267, x = 268,
                xy = 269;
  EXPECT_EQ(tok.encode("<|im_start|>hello<|im_end|>"), (Ids{im_start, 259, im_end}));
  EXPECT_EQ(tok.encode("hello<|endoftext|><|endoftext|> world"),
            (Ids{259, eot, eot, 262, 'l', 'd'}));
  EXPECT_EQ(tok.encode("<think>\n</think>"), (Ids{think, '\n', end_think}));
  EXPECT_EQ(tok.encode("<x>yz <x>z"), (Ids{xy, 'z', 32, x, 'z'}));
  EXPECT_EQ(tok.encode("<|im_start"), (Ids{'<', '|', 'i', 'm', '_', 's', 't', 'a', 'r', 't'}));
  EXPECT_TRUE(tok.is_special(im_start));
  EXPECT_FALSE(tok.is_special(think));
  EXPECT_FALSE(tok.is_special(259));
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), im_end);
  EXPECT_EQ(tok.id_to_token(end_think), "</think>");
  EXPECT_EQ(tok.vocab_size(), 270);
  const Ids ids = {im_start, 259, im_end, think, 262};
  EXPECT_EQ(tok.decode(ids), "<|im_start|>hello<|im_end|><think> wor");
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "hello<think> wor");
}

TEST(TinyTokenizer, AddedTokenLstripAndRstripSwallowWhitespace) {
  TempDir dir;
  TinySpec spec;
  spec.added = {{"<m>", true, /*lstrip=*/true, /*rstrip=*/true}, {"<l>", true, /*lstrip=*/true}};
  const Tokenizer tok = test::load_tiny(spec, dir);
  const int32_t m = 256, l = 257;
  EXPECT_EQ(tok.encode("a  <m>  b"), (Ids{'a', m, 'b'}));
  // "  b" after <l> pre-tokenises as " " and " b" (Qwen2 regex).
  EXPECT_EQ(tok.encode("a \t<l>  b"), (Ids{'a', l, 32, 32, 'b'}));
}

TEST(TinyTokenizer, NormalizedAddedTokensMatchTheNormalisedText) {
  TempDir dir;
  TinySpec spec;
  spec.normalizer = {{"type", "NFC"}};
  spec.added = {{"\xC3\xA9t\xC3\xA9", /*special=*/false, false, false, /*normalized=*/true}};
  const Tokenizer tok = test::load_tiny(spec, dir);
  EXPECT_EQ(tok.encode("e\xCC\x81te\xCC\x81"), (Ids{256}));  // decomposed "été"
  EXPECT_EQ(tok.encode("\xC3\xA9t\xC3\xA9"), (Ids{256}));
}

TEST(TinyTokenizer, NfcNormalizerComposesBeforeBpe) {
  TempDir dir;
  TinySpec spec;
  spec.merges = {{byte_char(0xC3), byte_char(0xA9)}};  // "é" = C3 A9 -> id 256
  const Tokenizer plain = test::load_tiny(spec, dir, "plain.json");
  spec.normalizer = {{"type", "NFC"}};
  const Tokenizer nfc = test::load_tiny(spec, dir, "nfc.json");
  const std::string composed = "caf\xC3\xA9", decomposed = "cafe\xCC\x81";
  EXPECT_EQ(nfc.encode(decomposed), (Ids{'c', 'a', 'f', 256}));
  EXPECT_EQ(nfc.encode(composed), (Ids{'c', 'a', 'f', 256}));
  EXPECT_EQ(plain.encode(decomposed), (Ids{'c', 'a', 'f', 'e', 0xCC, 0x81}));
  EXPECT_EQ(nfc.decode(nfc.encode(decomposed)), composed);
}

TEST(TinyTokenizer, ByteLevelGpt2RegexAndPrefixSpace) {
  TempDir dir;
  TinySpec spec = hello_spec();
  spec.merges.push_back({"'", "M"});  // 263
  const Tokenizer qwen_style = test::load_tiny(spec, dir, "qwen.json");
  spec.pre_tokenizer = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  const Tokenizer gpt2 = test::load_tiny(spec, dir, "gpt2.json");
  // Qwen2's contraction group is case-insensitive, GPT-2's is not.
  EXPECT_EQ(qwen_style.encode("I'M"), (Ids{'I', 263}));
  EXPECT_EQ(gpt2.encode("I'M"), (Ids{32, 'I', '\'', 'M'}));  // prefix space -> " I", "'", "M"
  EXPECT_EQ(gpt2.encode("hello world"), (Ids{32, 259, 262, 'l', 'd'}));
  EXPECT_EQ(gpt2.encode(" hello"), (Ids{32, 259}));  // no second prefix space
}

Ids encode_with_split(const std::string& behavior, bool invert, const std::string& text,
                      const nlohmann::json& pattern = {{"String", " "}}) {
  TempDir dir;
  TinySpec spec = hello_spec();
  spec.merges.push_back({"Ġ", "Ġ"});  // 263
  spec.pre_tokenizer = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  return test::load_tiny(spec, dir).encode(text);
}

TEST(TinyTokenizer, SplitBehaviours) {
  // "world" alone is w + "or" + l + d; " world" is "Ġwor" + l + d.
  EXPECT_EQ(encode_with_split("Removed", false, "hello world"), (Ids{259, 'w', 261, 'l', 'd'}));
  EXPECT_EQ(encode_with_split("Isolated", false, "hello world"),
            (Ids{259, 32, 'w', 261, 'l', 'd'}));
  EXPECT_EQ(encode_with_split("MergedWithPrevious", false, "hello world"),
            (Ids{259, 32, 'w', 261, 'l', 'd'}));
  EXPECT_EQ(encode_with_split("MergedWithNext", false, "hello world"), (Ids{259, 262, 'l', 'd'}));
  EXPECT_EQ(encode_with_split("Isolated", false, "a  b"), (Ids{'a', 32, 32, 'b'}));
  EXPECT_EQ(encode_with_split("Contiguous", false, "a  b"), (Ids{'a', 263, 'b'}));
  // Inverted: the letter runs are the kept pieces, the rest is removed.
  EXPECT_EQ(encode_with_split("Removed", true, "hello world", {{"Regex", "\\p{L}+"}}),
            (Ids{259, 'w', 261, 'l', 'd'}));
}

TEST(TinyTokenizer, TemplateProcessingAddsTokensWithAddSpecialTokens) {
  TempDir dir;
  TinySpec spec = hello_spec();
  spec.added = {{"<s>"}, {"</s>"}};  // 263, 264
  nlohmann::json tp = {{"type", "TemplateProcessing"},
                       {"single",
                        {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                         {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                         {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
                       {"pair", nlohmann::json::array()},
                       {"special_tokens",
                        {{"<s>", {{"id", "<s>"}, {"ids", {263}}, {"tokens", {"<s>"}}}},
                         {"</s>", {{"id", "</s>"}, {"ids", {264}}, {"tokens", {"</s>"}}}}}}};
  spec.post_processor = tp;
  const Tokenizer plain_template = test::load_tiny(spec, dir, "a.json");
  EXPECT_EQ(plain_template.encode("hello", true), (Ids{263, 259, 264}));
  EXPECT_EQ(plain_template.encode("hello", false), (Ids{259}));
  // Llama-3.1 writes Sequence[ByteLevel, TemplateProcessing].
  spec.post_processor = {{"type", "Sequence"},
                         {"processors", {{{"type", "ByteLevel"}, {"trim_offsets", false}}, tp}}};
  EXPECT_EQ(test::load_tiny(spec, dir, "b.json").encode("hello", true), (Ids{263, 259, 264}));
}

TEST(TinyTokenizer, IllFormedUtf8InputKeepsEveryByte) {
  TempDir dir;
  const Tokenizer tok = test::load_tiny(hello_spec(), dir);
  const std::string text = "hello \xFF\xC3 world\xE2\x82";
  const Ids ids = tok.encode(text);
  // Every byte is encoded: the ids are bytes or merges of bytes; decode replaces the bad ones.
  EXPECT_EQ(tok.decode(ids), "hello \xEF\xBF\xBD\xEF\xBF\xBD world\xEF\xBF\xBD");
}

TEST(TinyTokenizer, FromDirReadsTokenizerConfig) {
  TempDir dir;
  TinySpec spec = hello_spec();
  spec.added = {{"<|endoftext|>"}, {"<|im_start|>"}, {"<|im_end|>"}};  // 263..265
  dir.write("tokenizer.json", test::tiny_tokenizer_json(spec).dump());
  dir.write("tokenizer_config.json",
            R"({"bos_token": null, "eos_token": {"content": "<|im_end|>", "special": true},
                "chat_template": "{{ '<|im_start|>' }}{{ '<|im_end|>' }}"})");
  const Tokenizer tok = Tokenizer::from_dir(dir.dir());
  EXPECT_EQ(tok.bos_id(), std::nullopt);
  EXPECT_EQ(tok.eos_id(), 265);
  EXPECT_EQ(tok.chat_template(), "{{ '<|im_start|>' }}{{ '<|im_end|>' }}");
  EXPECT_EQ(tok.encode("hello", true), (Ids{259}));  // no BOS
  // A directory without tokenizer_config.json loads too.
  TempDir bare;
  bare.write("tokenizer.json", test::tiny_tokenizer_json(spec).dump());
  const Tokenizer bare_tok = Tokenizer::from_dir(bare.dir());
  EXPECT_EQ(bare_tok.eos_id(), std::nullopt);
  EXPECT_EQ(bare_tok.chat_template(), "");
}

}  // namespace
}  // namespace hardkv
