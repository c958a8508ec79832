// IncrementalDetokenizer: ids fed one at a time concatenate to decode(ids), and no piece is
// ill-formed UTF-8 or ends inside a character.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_assets.h"
#include "tiny_tokenizer.h"

namespace hardkv {
namespace {

using Ids = std::vector<int32_t>;

// Plain UTF-8 validator (RFC 3629: no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::vector<std::string> stream(const Tokenizer& tok, const Ids& ids, bool skip_special = false) {
  IncrementalDetokenizer detok(tok, skip_special);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(detok.push(id));
  pieces.push_back(detok.flush());
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string s;
  for (const auto& p : pieces) s += p;
  return s;
}

std::vector<std::string> sample_texts() {
  std::vector<std::string> texts = {"🦙🚀 (normal) 😶‍🌫️ ✅",
                                    "我想在apple工作1314151天～",
                                    "日本語のテキストと한국어",
                                    "Ελληνικά, Български, ქართული, ភាសាខ្មែរ",
                                    "naïve café Ångström",
                                    "<|im_start|>user\n🦙?<|im_end|>",
                                    "math: ∑ᵢ xᵢ² ≤ ∞ and 𝔽₂"};
  // The vectors' texts too.
  const std::string inp = test::read_file(test::asset_path("vocab/ggml-vocab-qwen2.gguf.inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    texts.push_back(inp.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + sep.size();
  }
  return texts;
}

TEST(IncrementalDetokenizer, StreamedPiecesEqualDecodeAndAreValidUtf8) {
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer* tok = test::real_tokenizer(name);
    ASSERT_NE(tok, nullptr);
    int num_held_back = 0;
    for (const std::string& text : sample_texts()) {
      const Ids ids = tok->encode(text);
      for (bool skip : {false, true}) {
        const auto pieces = stream(*tok, ids, skip);
        EXPECT_EQ(join(pieces), tok->decode(ids, skip)) << name << ": " << text;
        for (size_t i = 0; i < pieces.size(); ++i) {
          EXPECT_TRUE(valid_utf8(pieces[i])) << name << ": piece " << i << " of " << text;
          if (i + 1 < pieces.size() && pieces[i].empty()) ++num_held_back;
        }
      }
    }
    // Emoji and CJK split across byte-level tokens: some pushes must have held bytes back.
    EXPECT_GT(num_held_back, 0) << name;
  }
}

TEST(IncrementalDetokenizer, HoldsPartialCharactersAndReplacesBadBytes) {
  test::TempDir dir;
  const Tokenizer tok = test::load_tiny(test::TinySpec{}, dir);  // byte tokens only: id = byte
  // U+1F999 (🦙) = F0 9F A6 99, fed byte by byte.
  IncrementalDetokenizer detok(tok);
  EXPECT_EQ(detok.push(0xF0), "");
  EXPECT_EQ(detok.push(0x9F), "");
  EXPECT_EQ(detok.push(0xA6), "");
  EXPECT_EQ(detok.push(0x99), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(detok.push('a'), "a");
  // A lead byte followed by ASCII: the lead is ill-formed and becomes U+FFFD at once.
  EXPECT_EQ(detok.push(0xE6), "");
  EXPECT_EQ(detok.push('b'),
            "\xEF\xBF\xBD"
            "b");
  // A stray continuation byte.
  EXPECT_EQ(detok.push(0x80), "\xEF\xBF\xBD");
  // A truncated character at the end is flushed as one U+FFFD.
  EXPECT_EQ(detok.push(0xE6), "");
  EXPECT_EQ(detok.push(0x97), "");
  EXPECT_EQ(detok.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(detok.flush(), "");
  // The same ids through decode give the same text.
  const Ids ids = {0xF0, 0x9F, 0xA6, 0x99, 'a', 0xE6, 'b', 0x80, 0xE6, 0x97};
  EXPECT_EQ(tok.decode(ids),
            "\xF0\x9F\xA6\x99"
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(join(stream(tok, ids)), tok.decode(ids));
  // Surrogate code points (ED A0..BF) are ill-formed: ED then A0 are two replacements.
  EXPECT_EQ(tok.decode(Ids{0xED, 0xA0, 0x80}), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace hardkv
