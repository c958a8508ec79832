// HeadMaskSet: the sparse tier's packed bit masks, one row per (layer, kv-head) over a sequence's
// stored tokens (bit t = stored token t of that head is masked, i.e. stored but deselected).
#pragma once

#include <cstdint>
#include <vector>

namespace hardkv::compress {

// Layout: words_ [num_layers, num_kv_heads, words_per_row] uint64; token t of a row is bit t % 64
// of word t / 64. On a little-endian host the bytes of a row are therefore exactly FlashInfer's
// packbits(bitorder="little") of that row. Bits at or past num_tokens are always zero.
class HeadMaskSet {
 public:
  HeadMaskSet() = default;
  HeadMaskSet(int num_layers, int num_kv_heads, int64_t num_tokens);

  int num_layers() const { return num_layers_; }
  int num_kv_heads() const { return num_kv_heads_; }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t words_per_row() const { return words_per_row_; }

  // Grows or shrinks every row to num_tokens; new bits are clear, dropped bits are forgotten.
  void resize(int64_t num_tokens);

  void set(int layer_idx, int head_idx, int64_t token_idx);
  void clear(int layer_idx, int head_idx, int64_t token_idx);
  bool test(int layer_idx, int head_idx, int64_t token_idx) const;
  void clear_row(int layer_idx, int head_idx);
  void clear_all();

  int64_t count(int layer_idx, int head_idx) const;  // set bits of the row
  int64_t count_all() const;                         // set bits of every row

  // Calls f(token_idx) for every set bit of the row, in increasing token order.
  template <typename F>
  void for_each_set(int layer_idx, int head_idx, F&& f) const {
    const uint64_t* words = row(layer_idx, head_idx);
    for (int64_t w = 0; w < words_per_row_; ++w) {
      for (uint64_t bits = words[w]; bits != 0; bits &= bits - 1) {
        f(w * 64 + __builtin_ctzll(bits));
      }
    }
  }
  std::vector<int64_t> set_indices(int layer_idx, int head_idx) const;

  const uint64_t* row(int layer_idx, int head_idx) const;  // [words_per_row]

 private:
  uint64_t* mutable_row(int layer_idx, int head_idx);
  void check_token(int64_t token_idx) const;

  int num_layers_ = 0;
  int num_kv_heads_ = 0;
  int64_t num_tokens_ = 0;
  int64_t words_per_row_ = 0;
  std::vector<uint64_t> words_;  // [num_layers, num_kv_heads, words_per_row]
};

}  // namespace hardkv::compress
