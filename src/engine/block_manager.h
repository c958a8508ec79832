// BlockManager: the paged KV block pool of dense mode — block tables per sequence, reference
// counts, and hash-chain prefix caching over full blocks (freed cached blocks stay revivable
// until their storage is reused).
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "engine/kv_space.h"
#include "engine/sequence.h"

namespace hardkv {

// Prefix-cache and pool counters (monotonic except the *_now gauges).
struct BlockManagerStats {
  int64_t num_queried_tokens = 0;  // prompt tokens looked up in the prefix cache at admission
  int64_t num_hit_tokens = 0;      // of those, tokens served from cached blocks
  int64_t num_revived_blocks = 0;  // hits on blocks that were free (ref count 0) but still cached
  int num_used_blocks_now = 0;     // blocks with ref count > 0
  int num_cached_free_blocks_now = 0;  // free blocks that still hold a registered hash
  double hit_rate() const {
    return num_queried_tokens == 0 ? 0.0 : static_cast<double>(num_hit_tokens) / num_queried_tokens;
  }
};

// Contract. Sizes are in tokens of seq.token_ids; a sequence "needs" ceil(num_tokens /
// block_size) blocks: every token in token_ids, the last sampled one included, gets its K/V
// written by the step that runs it, so the block for token num_tokens - 1 must exist before that
// step. The check-then-act pairs are exact: can_allocate(seq) == true iff allocate(seq) succeeds,
// can_append(seq) == true iff may_append(seq) succeeds; a failing act throws kOutOfMemory and
// changes nothing. Hashes are registered only for full blocks whose K/V has been computed
// (commit()), so a block is never served from the cache before its contents exist.
class BlockManager : public KVSpace {
 public:
  BlockManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int num_blocks() const override { return static_cast<int>(blocks_.size()); }
  int block_size() const override { return block_size_; }

  // KVSpace (dense mode): reserves every token of the sequence (max_new / num_new unused).
  bool can_admit(const Sequence& seq, int) const override { return can_allocate(seq); }
  void admit(Sequence& seq, int) override { allocate(seq); }
  bool can_grow(const Sequence& seq, int) const override { return can_append(seq); }
  void grow(Sequence& seq, int) override { may_append(seq); }
  void on_computed(Sequence& seq) override { commit(seq); }
  bool holds(const Sequence& seq) const override { return !seq.block_table.empty(); }
  void release(Sequence& seq) override { free(seq); }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks with ref count 0 (cached or not): what allocation can take.
  int num_free_blocks() const { return static_cast<int>(free_list_.size()); }
  int num_used_blocks() const { return num_blocks() - num_free_blocks(); }
  int ref_count(int block_id) const { return blocks_[block_id].ref_count; }
  BlockManagerStats stats() const;

  int num_blocks_for(int num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }

  // Admission of a sequence with an empty block table: blocks for all its tokens, reusing cached
  // blocks for its longest cached prefix of full blocks (never the whole sequence: at least one
  // token is left to compute so that the step produces logits). Sets block_table,
  // num_computed_tokens = num_cached_tokens = the cached token count.
  bool can_allocate(const Sequence& seq) const;
  void allocate(Sequence& seq);

  // Growth of an admitted sequence to ceil(num_tokens / block_size) blocks (0 or 1 new block in
  // decode, where one token was appended since the last step).
  bool can_append(const Sequence& seq) const;
  void may_append(Sequence& seq);

  // Registers the hashes of seq's full blocks whose tokens all have K/V computed.
  void commit(Sequence& seq);

  // Drops seq's references (last block first, so shared prefixes are evicted last) and resets
  // its block table and computed-token counts.
  void free(Sequence& seq);

 private:
  struct Block {
    int ref_count = 0;
    bool hashed = false;     // hash/prev_hash/token_ids describe the stored K/V
    uint64_t hash = 0;       // H(prev_hash, token_ids)
    uint64_t prev_hash = 0;  // hash of the block before it in its sequence (0 for the first)
    std::vector<int32_t> token_ids;     // [block_size] when hashed
    std::list<int>::iterator free_pos;  // valid while ref_count == 0
  };

  // Block ids of seq's longest cached prefix (only full blocks, at most (num_tokens-1)/bs).
  std::vector<int> match_prefix(const Sequence& seq) const;
  int blocks_needed_for_allocation(const Sequence& seq, const std::vector<int>& hits) const;
  int take_free_block();  // pops the least recently freed block, dropping its cached identity
  void take_block(int block_id);     // removes a specific (revived) block from the free list
  void release_block(int block_id);  // drops one reference

  int block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  // Free blocks, eviction order first: unhashed blocks at the front, cached ones by age.
  std::list<int> free_list_;
  std::unordered_map<uint64_t, int> hash_to_block_;
  BlockManagerStats stats_;
};

// Hash of one full block chained on its predecessor's hash (xxHash3-64 seeded with prev_hash).
uint64_t block_hash(uint64_t prev_hash, const int32_t* token_ids, int block_size);

}  // namespace hardkv
