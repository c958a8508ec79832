// UTF-8 helpers and the byte-level alphabet against hand-written expectations (Unicode Table 3-7
// maximal subparts; GPT-2's bytes_to_unicode).
#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tiny_tokenizer.h"
#include "tokenizer/byte_level.h"

namespace hardkv {
namespace {

std::string lossy(const std::string& s) {
  std::string out;
  utf8::append_lossy(s, out, false);
  return out;
}

const std::string R = "\xEF\xBF\xBD";

TEST(Utf8, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(lossy("abc"), "abc");
  EXPECT_EQ(lossy("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(lossy("\xC0\xAF"), R + R);          // overlong lead C0
  EXPECT_EQ(lossy("\xE0\x80\x80"), R + R + R);  // E0 needs A0..BF next
  EXPECT_EQ(lossy("\xF0\x9F\xA6"), R);          // truncated 4-byte: one replacement
  EXPECT_EQ(lossy("\xF0\x9F\xA6x"), R + "x");
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(lossy("\xFF"), R);
  std::string held_out;
  EXPECT_EQ(utf8::append_lossy("a\xF0\x9F", held_out, true), 2u);
  EXPECT_EQ(held_out, "a");
  EXPECT_TRUE(utf8::is_valid("\xF0\x9F\xA6\x99"));
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));
}

TEST(Utf8, NormalizeNfcKeepsIllFormedBytes) {
  EXPECT_EQ(utf8::normalize("e\xCC\x81", utf8::NormalForm::kNFC), "\xC3\xA9");
  EXPECT_EQ(utf8::normalize("\xC3\xA9", utf8::NormalForm::kNFD), "e\xCC\x81");
  EXPECT_EQ(utf8::normalize("e\xCC\x81\xFF"
                            "e\xCC\x81",
                            utf8::NormalForm::kNFC),
            "\xC3\xA9\xFF\xC3\xA9");
  EXPECT_EQ(utf8::normalize("\xEF\xAC\x81", utf8::NormalForm::kNFKC), "fi");  // ligature ﬁ
}

TEST(ByteLevel, MatchesGpt2BytesToUnicode) {
  const ByteLevel& bl = ByteLevel::get();
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(bl.encode_byte(static_cast<uint8_t>(b)), test::byte_char(b)) << b;
    seen.insert(bl.encode_byte(static_cast<uint8_t>(b)));
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(bl.encode(" \n"), "\xC4\xA0\xC4\x8A");  // "ĠĊ"
  EXPECT_EQ(bl.decode("\xC4\xA0hi"), " hi");
  EXPECT_EQ(bl.decode("<|im_start|>"), "<|im_start|>");
  EXPECT_EQ(bl.decode("a b"), std::nullopt);  // a raw space is outside the alphabet
}

}  // namespace
}  // namespace hardkv
