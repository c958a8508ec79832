// Compression event executor (see compression_event.h): select every layer first (read-only),
// check the page pools, then apply masks, rewrites and appends, and retire the dense tier.
#include "kv/compression_event.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>

#include "core/error.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace hardkv::kv {

namespace {

bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

int pages_delta(const EventHeadPlan& hplan, const HeadPages& hp, int page_size) {
  const int stored = hp.num_stored() - (hplan.rewrite ? hplan.num_masked_after : 0);
  const int pages = (stored + static_cast<int>(hplan.append.size()) + page_size - 1) / page_size;
  return pages - static_cast<int>(hp.pages.size());
}

// The K row (or V row, from dense.v) of position pos, kv-head h in the dense view.
const float* dense_row(const HeadwiseKV& kv, int64_t seq_id, const DenseKVView& dense,
                       const float* base, int pos, int h) {
  const HeadwiseKVConfig& cfg = kv.config();
  int64_t slot = kv.dense_slot(seq_id, pos);
  if (!dense.block_remap.empty()) {
    const int32_t local = dense.block_remap.at(slot / dense.block_size);
    HARDKV_CHECK(local >= 0, kInternal, "dense block {} of sequence {} was not copied",
                 slot / dense.block_size, seq_id);
    slot = static_cast<int64_t>(local) * dense.block_size + slot % dense.block_size;
  }
  return base + (slot * cfg.num_kv_heads + h) * cfg.head_dim;
}

}  // namespace

EventCandidates event_candidates(const HeadwiseKV& kv, int64_t seq_id, int sinks, int window) {
  const HeadwiseKVConfig& cfg = kv.config();
  const SequenceKV& s = kv.sequence(seq_id);
  EventCandidates c;
  const int window_begin = std::max(0, s.num_tokens - window);
  c.dense_to = std::max(s.dense_begin, window_begin);  // the dense tier keeps [dense_to, N)
  c.dense_from = std::min(std::max(s.dense_begin, sinks), c.dense_to);
  c.cond_begin.resize(static_cast<size_t>(cfg.num_layers) * cfg.num_kv_heads);
  for (int l = 0; l < cfg.num_layers; ++l) {
    for (int h = 0; h < cfg.num_kv_heads; ++h) {
      const std::vector<int32_t>& pos = kv.head(seq_id, l, h).positions;
      c.cond_begin[static_cast<size_t>(l) * cfg.num_kv_heads + h] =
          static_cast<int32_t>(std::lower_bound(pos.begin(), pos.end(), sinks) - pos.begin());
    }
  }
  return c;
}

EventPlan plan_compression_event(const HeadwiseKV& kv, int64_t seq_id, const DenseKVView& dense,
                                 const compress::Compressor& compressor,
                                 const CompressionEventOptions& options) {
  const HeadwiseKVConfig& cfg = kv.config();
  const compress::CompressionConfig& cc = compressor.config();
  const int L = cfg.num_layers, H = cfg.num_kv_heads, D = cfg.head_dim;
  const int group = cfg.num_q_heads / cfg.num_kv_heads;
  const bool has_data = cfg.store_data;
  const PrecomputedScores* pre = options.precomputed;
  HARDKV_CHECK(
      !has_data || (static_cast<int>(dense.k.size()) == L && static_cast<int>(dense.v.size()) == L),
      kInvalidArgument, "dense KV view has {} / {} layers, the cache has {}", dense.k.size(),
      dense.v.size(), L);
  HARDKV_CHECK(has_data || pre != nullptr, kInvalidArgument,
               "a cache that stores no K/V data needs precomputed scores for its events");
  const bool pre_redundancy = pre != nullptr && !pre->redundancy.empty();
  const bool needs_keys = compressor.strategy().needs_keys() && !pre_redundancy;
  if (pre != nullptr) {
    HARDKV_CHECK(static_cast<int>(pre->attn.size()) == L * H &&
                     (!needs_keys || static_cast<int>(pre->keys.size()) == L * H) &&
                     (!pre_redundancy || static_cast<int>(pre->redundancy.size()) == L * H),
                 kInvalidArgument,
                 "precomputed scores cover {} attention / {} key / {} redundancy segments, the "
                 "event needs {}",
                 pre->attn.size(), pre->keys.size(), pre->redundancy.size(), L * H);
  }
  const SequenceKV& s = kv.sequence(seq_id);
  const EventCandidates cand = event_candidates(kv, seq_id, cc.sinks, cc.window);
  const int move_end = cand.dense_to;  // the dense tier keeps [move_end, N)
  EventPlan plan;
  plan.seq_id = seq_id;
  plan.move_end = move_end;
  plan.heads.resize(L);
  CompressionEventResult& result = plan.result;

  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_select = Clock::now();
  // Phase 1: select (no mutation). Layers are independent: they run in parallel on large events.
  for (int l = 0; l < L; ++l) {
    HARDKV_CHECK(s.obs.count(l) >= 1, kInvalidArgument,
                 "sequence {}: layer {} has no observation queries; push post-RoPE queries to "
                 "the observation buffer before compressing",
                 seq_id, l);
  }
  result.layers.resize(L);
  std::vector<int64_t> layer_candidates(L, 0), layer_dropped(L, 0);
  auto select_layer = [&](int l) {
    const int num_obs = s.obs.count(l);
    std::vector<float> q_obs(pre == nullptr ? static_cast<size_t>(H) * num_obs * group * D : 0);
    std::vector<std::vector<float>> keys(H);
    std::vector<std::vector<int32_t>> positions(H);
    std::vector<std::vector<int>> source(H);  // stored index, or -1 - dense position
    std::vector<std::vector<float>> acc(H);   // h2o state of each candidate (0 when new)
    std::vector<compress::HeadInput> inputs(H);
    const HeadPagePool& pool = kv.page_pool(l);
    const bool host_keys = pre == nullptr;  // else the precomputed keys, if any are needed
    for (int h = 0; h < H; ++h) {
      const int segment = l * H + h;
      float* qh = nullptr;  // this head's observation queries (host scoring only)
      if (pre == nullptr) {
        qh = q_obs.data() + static_cast<size_t>(h) * num_obs * group * D;
        s.obs.gather_group(l, h, group, qh);
      }
      const HeadPages& hp = kv.head(seq_id, l, h);
      const int P = cfg.page_size;
      for (int i = cand.cond_begin[segment]; i < hp.num_stored(); ++i) {
        if (host_keys) {
          const float* k = pool.k_row(hp.pages[i / P], i % P);
          keys[h].insert(keys[h].end(), k, k + D);
        }
        positions[h].push_back(hp.positions[i]);
        source[h].push_back(i);
        acc[h].push_back(hp.accumulated[i]);
      }
      for (int p = cand.dense_from; p < move_end; ++p) {
        if (host_keys) {
          const float* k = dense_row(kv, seq_id, dense, dense.k[l], p, h);
          keys[h].insert(keys[h].end(), k, k + D);
        }
        positions[h].push_back(p);
        source[h].push_back(-1 - p);
        acc[h].push_back(0.0f);
      }
      compress::HeadInput& in = inputs[h];
      const size_t n = positions[h].size();
      if (pre != nullptr) {
        HARDKV_CHECK(
            pre->attn[segment].size() == n && (!needs_keys || pre->keys[segment].size() == n * D),
            kInvalidArgument,
            "sequence {} layer {} kv-head {}: {} candidates, precomputed {} attention "
            "values / {} key floats",
            seq_id, l, h, n, pre->attn[segment].size(), needs_keys ? pre->keys[segment].size() : 0);
        in.true_attn = pre->attn[segment].data();
        if (needs_keys) in.keys = pre->keys[segment].data();
        if (pre_redundancy) {
          HARDKV_CHECK(pre->redundancy[segment].size() == n, kInvalidArgument,
                       "sequence {} layer {} kv-head {}: {} candidates, {} precomputed redundancy "
                       "values",
                       seq_id, l, h, n, pre->redundancy[segment].size());
          in.redundancy = pre->redundancy[segment].data();
          in.redundancy_threshold = pre->redundancy_threshold;
        }
      } else {
        in.q_obs = qh;
        in.keys = keys[h].data();
      }
      in.positions = positions[h].data();
      in.accumulated = acc[h].data();
      in.num_obs = num_obs;
      in.group_size = group;
      in.head_dim = D;
      in.num_candidates = static_cast<int>(positions[h].size());
      layer_candidates[l] += in.num_candidates;
    }
    result.layers[l] = compressor.compress_layer(l, inputs);
    const compress::LayerCompression& lc = result.layers[l];

    plan.heads[l].resize(H);
    for (int h = 0; h < H; ++h) {
      const HeadPages& hp = kv.head(seq_id, l, h);
      EventHeadPlan& hplan = plan.heads[l][h];
      hplan.keep_stored.assign(hp.num_stored(), 0);
      for (int i = 0; i < hp.num_stored(); ++i) hplan.keep_stored[i] = hp.positions[i] < cc.sinks;
      hplan.stored_acc = hp.accumulated;
      std::vector<uint8_t> kept(source[h].size(), 0);
      const std::vector<int32_t>& kept_idx = lc.heads[h].kept;
      const bool carries = !lc.accumulated[h].empty();  // h2o: new state of every kept candidate
      for (size_t k = 0; k < kept_idx.size(); ++k) {
        kept[kept_idx[k]] = 1;
        if (carries) acc[h][kept_idx[k]] = lc.accumulated[h][k];
      }
      for (int p = s.dense_begin; p < std::min(cc.sinks, move_end); ++p) {
        hplan.append.push_back(p);  // sinks still in the dense tier move unconditionally
        hplan.append_acc.push_back(0.0f);
      }
      for (size_t c = 0; c < source[h].size(); ++c) {
        const int src = source[h][c];
        if (src >= 0) {
          hplan.keep_stored[src] = kept[c];
          hplan.stored_acc[src] = acc[h][c];  // masked tokens keep their earlier state
        } else if (kept[c]) {
          hplan.append.push_back(-1 - src);
          hplan.append_acc.push_back(acc[h][c]);
        } else {
          ++layer_dropped[l];
        }
      }
      for (uint8_t k : hplan.keep_stored) hplan.num_masked_after += k == 0;
      const int stored = hp.num_stored();
      hplan.rewrite =
          hplan.num_masked_after > 0 && (cc.rewrite_every_time || options.memory_pressure ||
                                         hplan.num_masked_after > cc.rewrite_threshold * stored);
    }
  };
  std::vector<std::exception_ptr> errors(L);
  // Small (test) events stay serial; so does a plan made inside a caller's parallel region.
  const bool parallel = L > 1 && s.num_tokens >= 1024 && !in_parallel_region();
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int l = 0; l < L; ++l) {
    try {
      select_layer(l);
    } catch (...) {
      errors[l] = std::current_exception();  // no exception may leave an OpenMP region
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  for (int l = 0; l < L; ++l) {
    result.num_candidates += layer_candidates[l];
    result.tokens_dropped += layer_dropped[l];
  }

  result.select_seconds = std::chrono::duration<double>(Clock::now() - t_select).count();
  return plan;
}

CompressionEventResult apply_compression_event(HeadwiseKV& kv, EventPlan& plan,
                                               const DenseKVView& dense,
                                               const CompressionEventOptions& options) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_apply = Clock::now();
  const HeadwiseKVConfig& cfg = kv.config();
  const int L = cfg.num_layers, H = cfg.num_kv_heads;
  const bool has_data = cfg.store_data;
  const int64_t seq_id = plan.seq_id;
  HARDKV_CHECK(static_cast<int>(plan.heads.size()) == L, kInvalidArgument,
               "event plan has {} layers, the cache has {}", plan.heads.size(), L);
  // Phase 2: the page pools must hold the result; under pressure, rewrite every masked head.
  for (int l = 0; l < L; ++l) {
    if (options.memory_pressure) {
      for (EventHeadPlan& hplan : plan.heads[l]) hplan.rewrite = hplan.num_masked_after > 0;
    }
    auto net_pages = [&] {
      int64_t net = 0;
      for (int h = 0; h < H; ++h) {
        net += pages_delta(plan.heads[l][h], kv.head(seq_id, l, h), cfg.page_size);
      }
      return net;
    };
    const int free_pages = kv.page_pool(l).num_free_pages();
    if (net_pages() > free_pages) {
      for (EventHeadPlan& hplan : plan.heads[l]) hplan.rewrite = hplan.num_masked_after > 0;
    }
    HARDKV_CHECK(net_pages() <= free_pages, kOutOfMemory,
                 "sequence {}: compression needs {} more head-pages in layer {}, {} are free; "
                 "raise the page count or lower the budget",
                 seq_id, net_pages(), l, free_pages);
  }

  // Phase 3: apply. Per layer, masks and rewrites first (they only free pages), then appends.
  // Layers touch disjoint pools, heads and mask rows (grown up front), so large events apply
  // them in parallel.
  CompressionEventResult result = std::move(plan.result);
  if (!has_data) result.moves.assign(L, {});
  int max_stored = 0;
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) {
      max_stored = std::max(max_stored, kv.head(seq_id, l, h).num_stored() +
                                            static_cast<int>(plan.heads[l][h].append.size()));
    }
  }
  kv.reserve_masks(seq_id, max_stored);
  struct LayerCounts {
    int64_t masked = 0, unmasked = 0, rewrites = 0, pages_freed = 0, appended = 0;
  };
  std::vector<LayerCounts> counts(L);
  auto apply_layer = [&](int l) {
    LayerCounts& c = counts[l];
    std::vector<float> k_rows, v_rows;
    for (int h = 0; h < H; ++h) {
      const EventHeadPlan& hplan = plan.heads[l][h];
      kv.set_head_state(seq_id, l, h, hplan.keep_stored, hplan.stored_acc, c.masked, c.unmasked);
      if (!hplan.rewrite) continue;
      if (has_data) {
        c.pages_freed += kv.rewrite_head(seq_id, l, h);
      } else {
        HeadRewriteMoves m;
        m.kv_head = h;
        m.pages = kv.head(seq_id, l, h).pages;
        std::vector<std::pair<int32_t, int32_t>> moves;
        c.pages_freed += kv.rewrite_head(seq_id, l, h, &moves);
        for (const auto& [src, dst] : moves) {
          m.src.push_back(src);
          m.dst.push_back(dst);
        }
        if (!m.src.empty()) result.moves[l].rewrites.push_back(std::move(m));
      }
      ++c.rewrites;
    }
    for (int h = 0; h < H; ++h) {
      const EventHeadPlan& hplan = plan.heads[l][h];
      for (size_t a = 0; a < hplan.append.size(); ++a) {
        const int32_t p = hplan.append[a];
        if (has_data) {
          const float* k = dense_row(kv, seq_id, dense, dense.k[l], p, h);
          const float* v = dense_row(kv, seq_id, dense, dense.v[l], p, h);
          kv.append_condensed(seq_id, l, h, p, k, v, hplan.append_acc[a]);
        } else {
          const int32_t row =
              kv.append_condensed(seq_id, l, h, p, nullptr, nullptr, hplan.append_acc[a]);
          result.moves[l].appends.push_back({h, kv.dense_slot(seq_id, p), row});
        }
        ++c.appended;
      }
    }
  };
  const SequenceKV& s = kv.sequence(seq_id);
  std::vector<std::exception_ptr> errors(L);
  const bool parallel = L > 1 && s.num_tokens >= 1024;  // small (test) events stay serial
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int l = 0; l < L; ++l) {
    try {
      apply_layer(l);
    } catch (...) {
      errors[l] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  for (const LayerCounts& c : counts) {
    result.tokens_masked += c.masked;
    result.tokens_unmasked += c.unmasked;
    result.num_rewrites += c.rewrites;
    result.pages_freed += c.pages_freed;
    result.tokens_appended += c.appended;
  }
  const int64_t blocks_before = static_cast<int64_t>(s.dense_blocks.size());
  kv.retire_dense_before(seq_id, plan.move_end);
  result.dense_blocks_freed = blocks_before - static_cast<int64_t>(s.dense_blocks.size());
  kv.note_event(seq_id);
  result.apply_seconds = std::chrono::duration<double>(Clock::now() - t_apply).count();
  return result;
}

CompressionEventResult run_compression_event(HeadwiseKV& kv, int64_t seq_id,
                                             const DenseKVView& dense,
                                             const compress::Compressor& compressor,
                                             const CompressionEventOptions& options) {
  EventPlan plan = plan_compression_event(kv, seq_id, dense, compressor, options);
  return apply_compression_event(kv, plan, dense, options);
}

}  // namespace hardkv::kv
