// HeadMaskSet (see head_mask_set.h).
#include "compress/head_mask_set.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace hardkv::compress {

namespace {

int64_t words_for(int64_t num_tokens) { return (num_tokens + 63) / 64; }

}  // namespace

HeadMaskSet::HeadMaskSet(int num_layers, int num_kv_heads, int64_t num_tokens)
    : num_layers_(num_layers), num_kv_heads_(num_kv_heads) {
  HARDKV_CHECK(num_layers >= 1 && num_kv_heads >= 1 && num_tokens >= 0, kInvalidArgument,
               "mask set needs num_layers, num_kv_heads >= 1 and num_tokens >= 0 (got {}, {}, {})",
               num_layers, num_kv_heads, num_tokens);
  resize(num_tokens);
}

void HeadMaskSet::resize(int64_t num_tokens) {
  HARDKV_CHECK(num_tokens >= 0, kInvalidArgument, "mask size {} is negative", num_tokens);
  const int64_t new_words = words_for(num_tokens);
  const int64_t rows = static_cast<int64_t>(num_layers_) * num_kv_heads_;
  std::vector<uint64_t> words(static_cast<size_t>(rows * new_words), 0);
  const int64_t copy_words = std::min(new_words, words_per_row_);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(words_.begin() + r * words_per_row_, copy_words, words.begin() + r * new_words);
  }
  if (num_tokens < num_tokens_ && num_tokens % 64 != 0) {  // drop the bits past the new end
    const uint64_t keep = (uint64_t{1} << (num_tokens % 64)) - 1;
    for (int64_t r = 0; r < rows; ++r) words[r * new_words + new_words - 1] &= keep;
  }
  words_ = std::move(words);
  words_per_row_ = new_words;
  num_tokens_ = num_tokens;
}

const uint64_t* HeadMaskSet::row(int layer_idx, int head_idx) const {
  HARDKV_CHECK(
      layer_idx >= 0 && layer_idx < num_layers_ && head_idx >= 0 && head_idx < num_kv_heads_,
      kInvalidArgument, "mask row (layer {}, head {}) is outside [{}, {}]", layer_idx, head_idx,
      num_layers_, num_kv_heads_);
  return words_.data() +
         (static_cast<int64_t>(layer_idx) * num_kv_heads_ + head_idx) * words_per_row_;
}

uint64_t* HeadMaskSet::mutable_row(int layer_idx, int head_idx) {
  return const_cast<uint64_t*>(std::as_const(*this).row(layer_idx, head_idx));
}

void HeadMaskSet::check_token(int64_t token_idx) const {
  HARDKV_CHECK(token_idx >= 0 && token_idx < num_tokens_, kInvalidArgument,
               "token {} is outside the mask's {} tokens", token_idx, num_tokens_);
}

void HeadMaskSet::set(int layer_idx, int head_idx, int64_t token_idx) {
  check_token(token_idx);
  mutable_row(layer_idx, head_idx)[token_idx / 64] |= uint64_t{1} << (token_idx % 64);
}

void HeadMaskSet::clear(int layer_idx, int head_idx, int64_t token_idx) {
  check_token(token_idx);
  mutable_row(layer_idx, head_idx)[token_idx / 64] &= ~(uint64_t{1} << (token_idx % 64));
}

bool HeadMaskSet::test(int layer_idx, int head_idx, int64_t token_idx) const {
  check_token(token_idx);
  return (row(layer_idx, head_idx)[token_idx / 64] >> (token_idx % 64)) & 1;
}

void HeadMaskSet::clear_row(int layer_idx, int head_idx) {
  std::fill_n(mutable_row(layer_idx, head_idx), words_per_row_, 0);
}

void HeadMaskSet::clear_all() { std::fill(words_.begin(), words_.end(), 0); }

int64_t HeadMaskSet::count(int layer_idx, int head_idx) const {
  const uint64_t* words = row(layer_idx, head_idx);
  int64_t n = 0;
  for (int64_t w = 0; w < words_per_row_; ++w) n += __builtin_popcountll(words[w]);
  return n;
}

int64_t HeadMaskSet::count_all() const {
  int64_t n = 0;
  for (uint64_t w : words_) n += __builtin_popcountll(w);
  return n;
}

std::vector<int64_t> HeadMaskSet::set_indices(int layer_idx, int head_idx) const {
  std::vector<int64_t> out;
  for_each_set(layer_idx, head_idx, [&](int64_t t) { out.push_back(t); });
  return out;
}

}  // namespace hardkv::compress
