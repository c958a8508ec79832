// HeadMaskSet against a std::vector<bool> per row under random operations, resizing, and the byte
// layout of packbits(bitorder="little").
#include "compress/head_mask_set.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"

namespace hardkv::compress {
namespace {

TEST(HeadMaskSet, MatchesBoolVectorsUnderRandomOperations) {
  const int layers = 3, heads = 4;
  int64_t tokens = 130;
  HeadMaskSet masks(layers, heads, tokens);
  std::vector<std::vector<bool>> ref(layers * heads, std::vector<bool>(tokens, false));
  std::mt19937 rng(11);
  for (int step = 0; step < 5000; ++step) {
    const int l = rng() % layers, h = rng() % heads;
    std::vector<bool>& row = ref[l * heads + h];
    const int op = rng() % 100;
    if (op == 0) {  // resize: grow or shrink
      tokens = 1 + rng() % 300;
      masks.resize(tokens);
      for (auto& r : ref) r.resize(tokens, false);
    } else if (op == 1) {
      masks.clear_row(l, h);
      row.assign(tokens, false);
    } else {
      const int64_t t = rng() % tokens;
      if (op % 2 == 0) {
        masks.set(l, h, t);
        row[t] = true;
      } else {
        masks.clear(l, h, t);
        row[t] = false;
      }
    }
    if (step % 97 == 0) {
      int64_t all = 0;
      for (int ll = 0; ll < layers; ++ll) {
        for (int hh = 0; hh < heads; ++hh) {
          const std::vector<bool>& r = ref[ll * heads + hh];
          std::vector<int64_t> want;
          for (int64_t t = 0; t < tokens; ++t) {
            if (r[t]) want.push_back(t);
            ASSERT_EQ(masks.test(ll, hh, t), r[t]);
          }
          EXPECT_EQ(masks.count(ll, hh), static_cast<int64_t>(want.size()));
          EXPECT_EQ(masks.set_indices(ll, hh), want);
          all += want.size();
        }
      }
      EXPECT_EQ(masks.count_all(), all);
    }
  }
}

TEST(HeadMaskSet, ShrinkForgetsBitsPastTheEnd) {
  HeadMaskSet masks(1, 1, 100);
  masks.set(0, 0, 70);
  masks.set(0, 0, 99);
  masks.resize(71);
  masks.resize(100);
  EXPECT_EQ(masks.set_indices(0, 0), (std::vector<int64_t>{70}));
}

TEST(HeadMaskSet, BytesAreLittleEndianPackbits) {
  HeadMaskSet masks(2, 2, 20);
  for (int64_t t : {0, 3, 8, 15, 19}) masks.set(1, 0, t);
  // Reference packbits(bitorder="little"): byte b holds tokens 8b..8b+7, token 8b+i in bit i.
  std::vector<uint8_t> want(3, 0);
  for (int64_t t : {0, 3, 8, 15, 19}) want[t / 8] |= uint8_t(1u << (t % 8));
  uint8_t got[3];
  std::memcpy(got, masks.row(1, 0), 3);
  EXPECT_EQ(std::vector<uint8_t>(got, got + 3), want);
  EXPECT_EQ(masks.count(0, 0) + masks.count(0, 1) + masks.count(1, 1), 0);
}

TEST(HeadMaskSet, RejectsOutOfRange) {
  HeadMaskSet masks(2, 2, 10);
  EXPECT_THROW(masks.set(0, 0, 10), Error);
  EXPECT_THROW(masks.set(2, 0, 1), Error);
  EXPECT_THROW(masks.test(0, -1, 1), Error);
}

}  // namespace
}  // namespace hardkv::compress
