// HeadwiseKV: tier bookkeeping, accounting and attention metadata (see headwise_kv.h).
#include "kv/headwise_kv.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace hardkv::kv {

void HeadwiseKVConfig::validate() const {
  HARDKV_CHECK(num_layers >= 1, kInvalidArgument, "num_layers is {}, must be >= 1", num_layers);
  HARDKV_CHECK(num_kv_heads >= 1 && num_q_heads >= num_kv_heads && num_q_heads % num_kv_heads == 0,
               kInvalidArgument,
               "num_q_heads {} must be a positive multiple of num_kv_heads {} (GQA)", num_q_heads,
               num_kv_heads);
  HARDKV_CHECK(head_dim >= 1, kInvalidArgument, "head_dim is {}, must be >= 1", head_dim);
  HARDKV_CHECK(page_size >= 1, kInvalidArgument, "page_size is {}, must be >= 1", page_size);
  HARDKV_CHECK(num_pages >= 1, kInvalidArgument, "num_pages is {}, must be >= 1", num_pages);
  HARDKV_CHECK(obs_window >= 1, kInvalidArgument, "obs_window is {}, must be >= 1", obs_window);
  HARDKV_CHECK(kv_elem_bytes >= 1, kInvalidArgument, "kv_elem_bytes is {}, must be >= 1",
               kv_elem_bytes);
}

HeadwiseKV::HeadwiseKV(HeadwiseKVConfig config, DenseBlockAllocator& dense)
    : config_(config), dense_(&dense) {
  config_.validate();
  for (int l = 0; l < config_.num_layers; ++l) {
    pools_.push_back(std::make_unique<HeadPagePool>(config_.num_pages, config_.page_size,
                                                    config_.head_dim, config_.store_data));
  }
}

HeadwiseKV::~HeadwiseKV() {
  std::vector<int64_t> ids;
  for (const auto& [id, s] : seqs_) ids.push_back(id);
  for (int64_t id : ids) free_sequence(id);  // return dense blocks to the engine's pool
}

SequenceKV& HeadwiseKV::seq(int64_t seq_id) {
  auto it = seqs_.find(seq_id);
  HARDKV_CHECK(it != seqs_.end(), kInvalidArgument, "sequence {} is not in the HARD-KV cache",
               seq_id);
  return *it->second;
}

const SequenceKV& HeadwiseKV::seq(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  HARDKV_CHECK(it != seqs_.end(), kInvalidArgument, "sequence {} is not in the HARD-KV cache",
               seq_id);
  return *it->second;
}

const SequenceKV& HeadwiseKV::sequence(int64_t seq_id) const { return seq(seq_id); }

void HeadwiseKV::check_head(int layer_idx, int kv_head) const {
  HARDKV_CHECK(layer_idx >= 0 && layer_idx < config_.num_layers && kv_head >= 0 &&
                   kv_head < config_.num_kv_heads,
               kInvalidArgument, "(layer {}, kv-head {}) is outside [{}, {}]", layer_idx, kv_head,
               config_.num_layers, config_.num_kv_heads);
}

HeadPages& HeadwiseKV::mutable_head(SequenceKV& s, int layer_idx, int kv_head) {
  check_head(layer_idx, kv_head);
  return s.heads[static_cast<size_t>(layer_idx) * config_.num_kv_heads + kv_head];
}

const HeadPages& HeadwiseKV::head(int64_t seq_id, int layer_idx, int kv_head) const {
  check_head(layer_idx, kv_head);
  return seq(seq_id).heads[static_cast<size_t>(layer_idx) * config_.num_kv_heads + kv_head];
}

void HeadwiseKV::add_sequence(int64_t seq_id) {
  bump();
  HARDKV_CHECK(!has_sequence(seq_id), kInvalidArgument, "sequence {} is already in the cache",
               seq_id);
  auto s = std::make_unique<SequenceKV>(ObsQueries(config_.num_layers, config_.obs_window,
                                                   config_.num_q_heads, config_.head_dim,
                                                   config_.store_data));
  s->heads.resize(static_cast<size_t>(config_.num_layers) * config_.num_kv_heads);
  s->masks = compress::HeadMaskSet(config_.num_layers, config_.num_kv_heads, 0);
  seqs_.emplace(seq_id, std::move(s));
}

void HeadwiseKV::free_sequence(int64_t seq_id) {
  bump();
  SequenceKV& s = seq(seq_id);
  for (int32_t b : s.dense_blocks) dense_->free_block(b);
  for (int l = 0; l < config_.num_layers; ++l) {
    for (int h = 0; h < config_.num_kv_heads; ++h) {
      for (int32_t p : mutable_head(s, l, h).pages) pools_[l]->free_page(p);
    }
  }
  seqs_.erase(seq_id);
}

// --- dense tier ----------------------------------------------------------------------------------

int HeadwiseKV::dense_blocks_needed(int64_t seq_id, int num_new) const {
  const SequenceKV& s = seq(seq_id);
  HARDKV_CHECK(num_new >= 0, kInvalidArgument, "cannot append {} tokens", num_new);
  const int bs = dense_->block_size();
  const int tokens = s.num_tokens + num_new - s.dense_base;  // table tokens needed
  const int blocks = (tokens + bs - 1) / bs;
  return std::max(0, blocks - static_cast<int>(s.dense_blocks.size()));
}

bool HeadwiseKV::can_append(int64_t seq_id, int num_new) const {
  return dense_blocks_needed(seq_id, num_new) <= dense_->num_free_blocks();
}

std::vector<int32_t> HeadwiseKV::append_tokens(int64_t seq_id, int num_new) {
  SequenceKV& s = seq(seq_id);
  const int need = dense_blocks_needed(seq_id, num_new);
  HARDKV_CHECK(need <= dense_->num_free_blocks(), kOutOfMemory,
               "sequence {}: {} new tokens need {} dense blocks, {} are free", seq_id, num_new,
               need, dense_->num_free_blocks());
  for (int i = 0; i < need; ++i) s.dense_blocks.push_back(dense_->allocate_block());
  std::vector<int32_t> slots;
  slots.reserve(num_new);
  for (int i = 0; i < num_new; ++i) {
    ++s.num_tokens;
    slots.push_back(dense_slot(seq_id, s.num_tokens - 1));
  }
  if (num_new == 1) ++s.steps_since_event;
  return slots;
}

int32_t HeadwiseKV::dense_slot(int64_t seq_id, int position) const {
  const SequenceKV& s = seq(seq_id);
  HARDKV_CHECK(position >= s.dense_begin && position < s.num_tokens, kInvalidArgument,
               "sequence {}: position {} is not in the dense tier [{}, {})", seq_id, position,
               s.dense_begin, s.num_tokens);
  const int bs = dense_->block_size();
  const int t = position - s.dense_base;
  return s.dense_blocks[t / bs] * bs + t % bs;
}

void HeadwiseKV::retire_dense_before(int64_t seq_id, int new_begin) {
  SequenceKV& s = seq(seq_id);
  HARDKV_CHECK(new_begin >= s.dense_begin && new_begin <= s.num_tokens, kInvalidArgument,
               "sequence {}: cannot retire the dense tier up to {} (dense tier is [{}, {}))",
               seq_id, new_begin, s.dense_begin, s.num_tokens);
  s.dense_begin = new_begin;
  const int bs = dense_->block_size();
  int drop = 0;
  while (drop < static_cast<int>(s.dense_blocks.size()) &&
         s.dense_base + (drop + 1) * bs <= s.dense_begin) {
    dense_->free_block(s.dense_blocks[drop]);
    ++drop;
  }
  s.dense_blocks.erase(s.dense_blocks.begin(), s.dense_blocks.begin() + drop);
  s.dense_base += drop * bs;
}

// --- condensed + sparse tiers
// ----------------------------------------------------------------------

int32_t HeadwiseKV::append_condensed(int64_t seq_id, int layer_idx, int kv_head, int32_t position,
                                     const float* k, const float* v, float accumulated) {
  SequenceKV& s = seq(seq_id);
  HeadPages& hp = mutable_head(s, layer_idx, kv_head);
  HARDKV_CHECK(hp.positions.empty() || hp.positions.back() < position, kInternal,
               "condensed positions must increase: {} after {}", position,
               hp.positions.empty() ? -1 : hp.positions.back());
  const int n = hp.num_stored();
  const int P = config_.page_size;
  HeadPagePool& pool = *pools_[layer_idx];
  if (n % P == 0) hp.pages.push_back(pool.allocate_page());
  const int32_t page = hp.pages[n / P];
  if (config_.store_data) {
    HARDKV_CHECK(k != nullptr && v != nullptr, kInvalidArgument,
                 "condensed append at position {} without K/V rows", position);
    std::memcpy(pool.k_row(page, n % P), k, sizeof(float) * config_.head_dim);
    std::memcpy(pool.v_row(page, n % P), v, sizeof(float) * config_.head_dim);
  }
  hp.positions.push_back(position);
  hp.accumulated.push_back(accumulated);
  if (s.masks.num_tokens() < n + 1) {  // grow every row geometrically
    s.masks.resize(std::max<int64_t>(n + 1, 2 * s.masks.num_tokens()));
  }
  return page * P + n % P;
}

void HeadwiseKV::set_masked(int64_t seq_id, int layer_idx, int kv_head, int stored_idx,
                            bool masked) {
  bump();
  SequenceKV& s = seq(seq_id);
  HeadPages& hp = mutable_head(s, layer_idx, kv_head);
  HARDKV_CHECK(stored_idx >= 0 && stored_idx < hp.num_stored(), kInvalidArgument,
               "stored token {} is outside the head's {} tokens", stored_idx, hp.num_stored());
  const bool was = s.masks.test(layer_idx, kv_head, stored_idx);
  if (was == masked) return;
  if (masked) {
    s.masks.set(layer_idx, kv_head, stored_idx);
    ++hp.num_masked;
  } else {
    s.masks.clear(layer_idx, kv_head, stored_idx);
    --hp.num_masked;
  }
}

void HeadwiseKV::set_accumulated(int64_t seq_id, int layer_idx, int kv_head, int stored_idx,
                                 float value) {
  HeadPages& hp = mutable_head(seq(seq_id), layer_idx, kv_head);
  HARDKV_CHECK(stored_idx >= 0 && stored_idx < hp.num_stored(), kInvalidArgument,
               "stored token {} is outside the head's {} tokens", stored_idx, hp.num_stored());
  hp.accumulated[stored_idx] = value;
}

bool HeadwiseKV::is_masked(int64_t seq_id, int layer_idx, int kv_head, int stored_idx) const {
  const SequenceKV& s = seq(seq_id);
  check_head(layer_idx, kv_head);
  return s.masks.test(layer_idx, kv_head, stored_idx);
}

void HeadwiseKV::set_head_state(int64_t seq_id, int layer_idx, int kv_head,
                                std::span<const uint8_t> keep, std::span<const float> accumulated,
                                int64_t& newly_masked, int64_t& unmasked) {
  SequenceKV& s = seq(seq_id);
  HeadPages& hp = mutable_head(s, layer_idx, kv_head);
  const int n = hp.num_stored();
  HARDKV_CHECK(static_cast<int>(keep.size()) == n && static_cast<int>(accumulated.size()) == n,
               kInvalidArgument, "head state for {} / {} tokens, the head stores {}", keep.size(),
               accumulated.size(), n);
  int masked = 0;
  for (int i = 0; i < n; ++i) {
    const bool was = s.masks.test(layer_idx, kv_head, i);
    const bool now = keep[i] == 0;
    newly_masked += now && !was;
    unmasked += was && !now;
    if (now != was) {
      if (now) {
        s.masks.set(layer_idx, kv_head, i);
      } else {
        s.masks.clear(layer_idx, kv_head, i);
      }
    }
    masked += now;
  }
  hp.num_masked = masked;
  std::copy(accumulated.begin(), accumulated.end(), hp.accumulated.begin());
}

void HeadwiseKV::reserve_masks(int64_t seq_id, int num_stored) {
  SequenceKV& s = seq(seq_id);
  if (s.masks.num_tokens() < num_stored) {
    s.masks.resize(std::max<int64_t>(num_stored, 2 * s.masks.num_tokens()));
  }
}

int HeadwiseKV::rewrite_head(int64_t seq_id, int layer_idx, int kv_head,
                             std::vector<std::pair<int32_t, int32_t>>* moves) {
  bump();
  SequenceKV& s = seq(seq_id);
  HeadPages& hp = mutable_head(s, layer_idx, kv_head);
  HeadPagePool& pool = *pools_[layer_idx];
  const int P = config_.page_size;
  const size_t row_bytes = sizeof(float) * config_.head_dim;
  int w = 0;  // write index <= read index, so compaction in place never overwrites unread tokens
  for (int i = 0; i < hp.num_stored(); ++i) {
    if (s.masks.test(layer_idx, kv_head, i)) continue;
    if (w != i) {
      if (config_.store_data) {
        std::memcpy(pool.k_row(hp.pages[w / P], w % P), pool.k_row(hp.pages[i / P], i % P),
                    row_bytes);
        std::memcpy(pool.v_row(hp.pages[w / P], w % P), pool.v_row(hp.pages[i / P], i % P),
                    row_bytes);
      }
      if (moves != nullptr) moves->emplace_back(i, w);
      hp.positions[w] = hp.positions[i];
      hp.accumulated[w] = hp.accumulated[i];
    }
    ++w;
  }
  hp.positions.resize(w);
  hp.accumulated.resize(w);
  const int keep_pages = pages_for(w);
  const int freed = static_cast<int>(hp.pages.size()) - keep_pages;
  for (size_t p = keep_pages; p < hp.pages.size(); ++p) pool.free_page(hp.pages[p]);
  hp.pages.resize(keep_pages);
  s.masks.clear_row(layer_idx, kv_head);
  hp.num_masked = 0;
  return freed;
}

void HeadwiseKV::note_event(int64_t seq_id) {
  bump();
  SequenceKV& s = seq(seq_id);
  s.steps_since_event = 0;
  ++s.num_events;
}

bool HeadwiseKV::due_for_compression(int64_t seq_id, int budget, int interval) const {
  const SequenceKV& s = seq(seq_id);
  if (s.num_tokens <= budget) return false;
  return s.num_events == 0 || s.steps_since_event >= interval;
}

// --- accounting
// ------------------------------------------------------------------------------------

KVMemoryUsage HeadwiseKV::usage(int64_t seq_id) const {
  const SequenceKV& s = seq(seq_id);
  const int64_t bpth = config_.bytes_per_token_head();
  KVMemoryUsage u;
  u.dense_blocks = static_cast<int64_t>(s.dense_blocks.size());
  u.dense_bytes =
      u.dense_blocks * dense_->block_size() * config_.num_layers * config_.num_kv_heads * bpth;
  for (const HeadPages& hp : s.heads) {
    u.condensed_pages += static_cast<int64_t>(hp.pages.size());
    u.stored_tokens += hp.num_stored();
    u.masked_tokens += hp.num_masked;
  }
  u.condensed_bytes = u.condensed_pages * config_.page_size * bpth;
  u.sparse_bytes = u.masked_tokens * bpth;
  u.mask_bytes =
      static_cast<int64_t>(config_.num_layers) * config_.num_kv_heads * s.masks.words_per_row() * 8;
  return u;
}

KVMemoryUsage HeadwiseKV::total_usage() const {
  KVMemoryUsage t;
  for (const auto& [id, s] : seqs_) {
    const KVMemoryUsage u = usage(id);
    t.dense_blocks += u.dense_blocks;
    t.dense_bytes += u.dense_bytes;
    t.condensed_pages += u.condensed_pages;
    t.condensed_bytes += u.condensed_bytes;
    t.stored_tokens += u.stored_tokens;
    t.masked_tokens += u.masked_tokens;
    t.sparse_bytes += u.sparse_bytes;
    t.mask_bytes += u.mask_bytes;
  }
  return t;
}

// --- attention metadata
// ---------------------------------------------------------------------------

TieredAttentionMeta HeadwiseKV::build_attention_meta(std::span<const int64_t> seq_ids,
                                                     std::span<const int32_t> q_lens,
                                                     bool with_condensed) const {
  HARDKV_CHECK(seq_ids.size() == q_lens.size(), kInvalidArgument,
               "{} sequences but {} query lengths", seq_ids.size(), q_lens.size());
  TieredAttentionMeta m;
  const int S = static_cast<int>(seq_ids.size());
  const int L = config_.num_layers, H = config_.num_kv_heads;
  m.num_seqs = S;
  m.num_layers = L;
  m.num_kv_heads = H;
  m.page_size = config_.page_size;
  m.dense_block_size = dense_->block_size();
  m.query_indptr.push_back(0);
  m.dense_block_indptr.push_back(0);
  for (int i = 0; i < S; ++i) {
    const SequenceKV& s = seq(seq_ids[i]);
    const int dense_len = s.num_tokens - s.dense_begin;
    HARDKV_CHECK(q_lens[i] >= 0 && q_lens[i] <= dense_len, kInvalidArgument,
                 "sequence {}: {} new tokens but only {} in the dense tier", seq_ids[i], q_lens[i],
                 dense_len);
    m.query_indptr.push_back(m.query_indptr.back() + q_lens[i]);
    m.dense_block_indices.insert(m.dense_block_indices.end(), s.dense_blocks.begin(),
                                 s.dense_blocks.end());
    m.dense_block_indptr.push_back(static_cast<int32_t>(m.dense_block_indices.size()));
    m.dense_start.push_back(s.dense_begin - s.dense_base);
    m.dense_len.push_back(dense_len);
    m.max_query_len = std::max(m.max_query_len, q_lens[i]);
    m.max_dense_len = std::max(m.max_dense_len, dense_len);
  }
  m.num_tokens = m.query_indptr.back();
  if (!with_condensed) return m;
  m.page_indptr.push_back(0);
  m.mask_indptr.push_back(0);
  for (int l = 0; l < L; ++l) {
    for (int i = 0; i < S; ++i) {
      const SequenceKV& s = seq(seq_ids[i]);
      for (int h = 0; h < H; ++h) {
        const HeadPages& hp = s.heads[static_cast<size_t>(l) * H + h];
        m.page_indices.insert(m.page_indices.end(), hp.pages.begin(), hp.pages.end());
        m.page_indptr.push_back(static_cast<int32_t>(m.page_indices.size()));
        m.cond_len.push_back(hp.num_stored());
        m.max_cond_len = std::max(m.max_cond_len, hp.num_stored());
        const int words = (hp.num_stored() + 63) / 64;
        if (words > 0) {
          const uint64_t* row = s.masks.row(l, h);
          m.mask_words.insert(m.mask_words.end(), row, row + words);
        }
        m.mask_indptr.push_back(static_cast<int32_t>(m.mask_words.size()));
      }
    }
  }
  return m;
}

}  // namespace hardkv::kv
