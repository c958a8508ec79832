// BlockManager: pool bookkeeping, prefix matching and the check-then-act pairs.
#include "engine/block_manager.h"

#include <xxhash.h>

#include <algorithm>

#include "core/error.h"

namespace hardkv {

uint64_t block_hash(uint64_t prev_hash, const int32_t* token_ids, int block_size) {
  return XXH3_64bits_withSeed(token_ids, sizeof(int32_t) * static_cast<size_t>(block_size),
                              prev_hash);
}

BlockManager::BlockManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : block_size_(block_size), prefix_caching_(enable_prefix_caching), blocks_(num_blocks) {
  HARDKV_CHECK(num_blocks > 0, kInvalidArgument, "KV pool needs at least one block, got {}",
               num_blocks);
  HARDKV_CHECK(block_size > 0, kInvalidArgument, "KV block size must be > 0, got {}", block_size);
  for (int i = 0; i < num_blocks; ++i) {
    blocks_[i].free_pos = free_list_.insert(free_list_.end(), i);
  }
}

BlockManagerStats BlockManager::stats() const {
  BlockManagerStats s = stats_;
  s.num_used_blocks_now = num_used_blocks();
  s.num_cached_free_blocks_now = 0;
  for (int id : free_list_) s.num_cached_free_blocks_now += blocks_[id].hashed ? 1 : 0;
  return s;
}

std::vector<int> BlockManager::match_prefix(const Sequence& seq) const {
  std::vector<int> hits;
  if (!prefix_caching_) return hits;
  // Leave at least one token uncached: the admission step must run something to get logits.
  const int max_blocks = (seq.num_tokens() - 1) / block_size_;
  uint64_t prev = 0;
  for (int i = 0; i < max_blocks; ++i) {
    const int32_t* tokens = seq.token_ids.data() + static_cast<size_t>(i) * block_size_;
    const uint64_t h = block_hash(prev, tokens, block_size_);
    auto it = hash_to_block_.find(h);
    if (it == hash_to_block_.end()) break;
    const Block& b = blocks_[it->second];
    // Confirm: a hash hit counts only when the stored block holds these very tokens after the
    // same predecessor.
    if (!b.hashed || b.hash != h || b.prev_hash != prev ||
        !std::equal(b.token_ids.begin(), b.token_ids.end(), tokens)) {
      break;
    }
    hits.push_back(it->second);
    prev = h;
  }
  return hits;
}

int BlockManager::blocks_needed_for_allocation(const Sequence& seq,
                                               const std::vector<int>& hits) const {
  // Free blocks consumed = misses + revived hits (hits on blocks in use cost nothing).
  int in_use_hits = 0;
  for (int id : hits) in_use_hits += blocks_[id].ref_count > 0 ? 1 : 0;
  return num_blocks_for(seq.num_tokens()) - in_use_hits;
}

bool BlockManager::can_allocate(const Sequence& seq) const {
  HARDKV_ASSERT(seq.block_table.empty());
  return blocks_needed_for_allocation(seq, match_prefix(seq)) <= num_free_blocks();
}

void BlockManager::allocate(Sequence& seq) {
  HARDKV_ASSERT(seq.block_table.empty());
  HARDKV_ASSERT(seq.num_tokens() > 0);
  const std::vector<int> hits = match_prefix(seq);
  const int needed = blocks_needed_for_allocation(seq, hits);
  HARDKV_CHECK(needed <= num_free_blocks(), kOutOfMemory,
               "sequence {} needs {} free KV blocks, {} are free", seq.seq_id, needed,
               num_free_blocks());
  // Hits first: a revived block must leave the free list before misses pop from it.
  for (int id : hits) {
    Block& b = blocks_[id];
    if (b.ref_count == 0) {
      take_block(id);
      ++stats_.num_revived_blocks;
    }
    ++b.ref_count;
    seq.block_table.push_back(id);
  }
  const int total = num_blocks_for(seq.num_tokens());
  while (static_cast<int>(seq.block_table.size()) < total) {
    seq.block_table.push_back(take_free_block());
  }
  const int cached_tokens = static_cast<int>(hits.size()) * block_size_;
  seq.num_cached_tokens = cached_tokens;
  seq.num_computed_tokens = cached_tokens;
  seq.num_hashed_blocks = static_cast<int>(hits.size());
  if (prefix_caching_) {
    stats_.num_queried_tokens += seq.num_tokens();
    stats_.num_hit_tokens += cached_tokens;
  }
}

bool BlockManager::can_append(const Sequence& seq) const {
  const int missing = num_blocks_for(seq.num_tokens()) - static_cast<int>(seq.block_table.size());
  return missing <= num_free_blocks();
}

void BlockManager::may_append(Sequence& seq) {
  HARDKV_ASSERT(!seq.block_table.empty());
  const int total = num_blocks_for(seq.num_tokens());
  const int missing = total - static_cast<int>(seq.block_table.size());
  HARDKV_CHECK(missing <= num_free_blocks(), kOutOfMemory,
               "sequence {} needs {} more KV blocks, {} are free", seq.seq_id, missing,
               num_free_blocks());
  while (static_cast<int>(seq.block_table.size()) < total) {
    seq.block_table.push_back(take_free_block());
  }
}

void BlockManager::commit(Sequence& seq) {
  if (!prefix_caching_) return;
  const int full =
      std::min(seq.num_computed_tokens / block_size_, static_cast<int>(seq.block_table.size()));
  for (int i = seq.num_hashed_blocks; i < full; ++i) {
    const uint64_t prev = i == 0 ? 0 : blocks_[seq.block_table[i - 1]].hash;
    const int32_t* tokens = seq.token_ids.data() + static_cast<size_t>(i) * block_size_;
    const uint64_t h = block_hash(prev, tokens, block_size_);
    Block& b = blocks_[seq.block_table[i]];
    if (b.hashed) {
      // Came from the cache: same content by construction.
      HARDKV_ASSERT(b.hash == h);
      continue;
    }
    b.hashed = true;
    b.hash = h;
    b.prev_hash = prev;
    b.token_ids.assign(tokens, tokens + block_size_);
    // An identical block computed by another sequence in the same step keeps the entry.
    hash_to_block_.try_emplace(h, seq.block_table[i]);
  }
  seq.num_hashed_blocks = std::max(seq.num_hashed_blocks, full);
}

void BlockManager::free(Sequence& seq) {
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) release_block(*it);
  seq.block_table.clear();
  seq.num_computed_tokens = 0;
  seq.num_cached_tokens = 0;
  seq.num_hashed_blocks = 0;
}

int BlockManager::take_free_block() {
  HARDKV_ASSERT(!free_list_.empty());
  const int id = free_list_.front();
  free_list_.pop_front();
  Block& b = blocks_[id];
  HARDKV_ASSERT(b.ref_count == 0);
  if (b.hashed) {
    // Its storage is about to be overwritten: forget the cached identity.
    auto it = hash_to_block_.find(b.hash);
    if (it != hash_to_block_.end() && it->second == id) hash_to_block_.erase(it);
    b.hashed = false;
    b.token_ids.clear();
  }
  b.ref_count = 1;
  return id;
}

void BlockManager::take_block(int block_id) {
  Block& b = blocks_[block_id];
  HARDKV_ASSERT(b.ref_count == 0);
  free_list_.erase(b.free_pos);
}

void BlockManager::release_block(int block_id) {
  Block& b = blocks_[block_id];
  HARDKV_ASSERT(b.ref_count > 0);
  if (--b.ref_count > 0) return;
  // Uncached blocks are reused first; cached ones wait at the back, revivable until then.
  b.free_pos = b.hashed ? free_list_.insert(free_list_.end(), block_id)
                        : free_list_.insert(free_list_.begin(), block_id);
}

}  // namespace hardkv
