// Test harness for the HARD-KV tiers: a HeadwiseKV over a DenseBlockPool with host dense storage,
// plus an independent shadow — the true K/V of every position, the observation rows, and each
// head's expected stored/masked positions, updated by re-deriving every event from the spec with
// the (separately tested) Compressor — and a plain-loop attention over the expected token sets.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "compress/compressor.h"
#include "kv/compression_event.h"
#include "kv/headwise_kv.h"
#include "kv/model_hooks.h"
#include "kv/tiered_attention.h"

namespace hardkv::kv::testing {

struct Dims {
  int layers = 2;
  int kv_heads = 2;
  int q_heads = 4;
  int head_dim = 8;
  int block_size = 4;
  int page_size = 4;
  int num_blocks = 512;
  int num_pages = 2048;
};

inline compress::CompressionConfig test_config(int budget, int window, int sinks,
                                               const std::string& strategy = "attn",
                                               const std::string& allocation = "uniform") {
  compress::CompressionConfig c;
  c.strategy = strategy;
  c.allocation = allocation;
  c.budget = budget;
  c.upper_budget = budget * 2;
  c.window = window;
  c.sinks = sinks;
  c.obs_window = 6;
  c.interval = 8;
  return c;
}

class Sim {
 public:
  struct Seq {
    std::vector<std::vector<float>> k, v;             // [L] flat [n, Hkv, D] true K/V
    std::vector<std::deque<std::vector<float>>> obs;  // [L] last obs_window rows [Hq * D]
    std::vector<std::vector<int>> stored;             // [L * Hkv] expected condensed positions
    std::vector<std::set<int>> masked;                // [L * Hkv] expected masked positions
    std::vector<std::map<int, float>> acc;  // [L * Hkv] h2o state by position (0 if absent)
    int n = 0;
    int dense_begin = 0;
  };

  Sim(Dims d, compress::CompressionConfig cc, uint32_t seed)
      : d_(d),
        cc_(cc),
        pool_(d.num_blocks, d.block_size),
        kv_(make_config(d, cc), pool_),
        compressor_(cc, d.layers),
        rng_(seed) {
    const size_t n = static_cast<size_t>(d.num_blocks) * d.block_size * d.kv_heads * d.head_dim;
    dense_k_.assign(d.layers, std::vector<float>(n, 0.0f));
    dense_v_.assign(d.layers, std::vector<float>(n, 0.0f));
  }

  static HeadwiseKVConfig make_config(const Dims& d, const compress::CompressionConfig& cc) {
    HeadwiseKVConfig c;
    c.num_layers = d.layers;
    c.num_kv_heads = d.kv_heads;
    c.num_q_heads = d.q_heads;
    c.head_dim = d.head_dim;
    c.page_size = d.page_size;
    c.num_pages = d.num_pages;
    c.obs_window = cc.obs_window;
    return c;
  }

  HeadwiseKV& kv() { return kv_; }
  DenseBlockPool& pool() { return pool_; }
  const Dims& dims() const { return d_; }
  Seq& seq(int64_t id) { return seqs_.at(id); }
  std::mt19937& rng() { return rng_; }

  void add(int64_t id) {
    kv_.add_sequence(id);
    Seq s;
    s.k.resize(d_.layers);
    s.v.resize(d_.layers);
    s.obs.resize(d_.layers);
    s.stored.resize(d_.layers * d_.kv_heads);
    s.masked.resize(d_.layers * d_.kv_heads);
    s.acc.resize(d_.layers * d_.kv_heads);
    seqs_[id] = std::move(s);
  }

  void free(int64_t id) {
    kv_.free_sequence(id);
    seqs_.erase(id);
  }

  // Appends n tokens with random K/V (written to the dense storage at the returned slots) and n
  // random observation rows per layer. key_fn, when given, overrides the key of (pos, layer, head).
  template <typename KeyFn>
  void append(int64_t id, int n, KeyFn&& key_fn) {
    Seq& s = seqs_.at(id);
    const std::vector<int32_t> slots = kv_.append_tokens(id, n);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int row = d_.kv_heads * d_.head_dim;
    for (int l = 0; l < d_.layers; ++l) {
      for (int t = 0; t < n; ++t) {
        const int pos = s.n + t;
        for (int h = 0; h < d_.kv_heads; ++h) {
          std::vector<float> k(d_.head_dim), v(d_.head_dim);
          for (float& x : k) x = nd(rng_);
          for (float& x : v) x = nd(rng_);
          key_fn(pos, l, h, k);
          s.k[l].insert(s.k[l].end(), k.begin(), k.end());
          s.v[l].insert(s.v[l].end(), v.begin(), v.end());
          std::copy(k.begin(), k.end(),
                    dense_k_[l].begin() + static_cast<int64_t>(slots[t]) * row + h * d_.head_dim);
          std::copy(v.begin(), v.end(),
                    dense_v_[l].begin() + static_cast<int64_t>(slots[t]) * row + h * d_.head_dim);
        }
      }
      std::vector<float> q(static_cast<size_t>(n) * d_.q_heads * d_.head_dim);
      for (float& x : q) x = 2.0f * nd(rng_);
      push_obs(id, l, q, n);
    }
    s.n += n;
  }
  void append(int64_t id, int n) {
    append(id, n, [](int, int, int, std::vector<float>&) {});
  }

  // Observation rows q [n, Hq, D] for layer l, to the cache and to the shadow.
  void push_obs(int64_t id, int l, const std::vector<float>& q, int n) {
    Seq& s = seqs_.at(id);
    const std::vector<int64_t> ids = {id};
    const std::vector<int32_t> indptr = {0, n};
    push_observations(kv_, ids, indptr, l, q.data());
    const int row = d_.q_heads * d_.head_dim;
    for (int r = 0; r < n; ++r) {
      s.obs[l].emplace_back(q.begin() + r * row, q.begin() + (r + 1) * row);
      if (static_cast<int>(s.obs[l].size()) > cc_.obs_window) s.obs[l].pop_front();
    }
  }

  DenseKVView view() const {
    DenseKVView v;
    for (int l = 0; l < d_.layers; ++l) {
      v.k.push_back(dense_k_[l].data());
      v.v.push_back(dense_v_[l].data());
    }
    return v;
  }

  // Runs the event on the cache and re-derives it on the shadow from the spec; checks that the
  // compressor saw the same candidates (same kept lists).
  CompressionEventResult event(int64_t id, CompressionEventOptions options = {}) {
    const CompressionEventResult got = run_compression_event(kv_, id, view(), compressor_, options);
    Seq& s = seqs_.at(id);
    const int D = d_.head_dim, group = d_.q_heads / d_.kv_heads;
    const int move_end = std::max(s.dense_begin, s.n - cc_.window);
    for (int l = 0; l < d_.layers; ++l) {
      std::vector<std::vector<float>> keys(d_.kv_heads), qs(d_.kv_heads);
      std::vector<std::vector<int32_t>> pos(d_.kv_heads);
      std::vector<std::vector<float>> acc(d_.kv_heads);
      std::vector<compress::HeadInput> in(d_.kv_heads);
      for (int h = 0; h < d_.kv_heads; ++h) {
        for (int p : s.stored[l * d_.kv_heads + h]) {
          if (p >= cc_.sinks) pos[h].push_back(p);
        }
        for (int p = std::max(s.dense_begin, cc_.sinks); p < move_end; ++p) pos[h].push_back(p);
        for (int p : pos[h]) {
          const float* k = key(id, l, p, h);
          keys[h].insert(keys[h].end(), k, k + D);
          const auto it = s.acc[l * d_.kv_heads + h].find(p);
          acc[h].push_back(it == s.acc[l * d_.kv_heads + h].end() ? 0.0f : it->second);
        }
        for (const std::vector<float>& row : s.obs[l]) {
          qs[h].insert(qs[h].end(), row.begin() + h * group * D, row.begin() + (h + 1) * group * D);
        }
        in[h].q_obs = qs[h].data();
        in[h].keys = keys[h].data();
        in[h].positions = pos[h].data();
        in[h].accumulated = acc[h].data();
        in[h].num_obs = static_cast<int>(s.obs[l].size());
        in[h].group_size = group;
        in[h].head_dim = D;
        in[h].num_candidates = static_cast<int>(pos[h].size());
      }
      const compress::LayerCompression lc = compressor_.compress_layer(l, in);
      for (int h = 0; h < d_.kv_heads; ++h) {
        EXPECT_EQ(lc.heads[h].kept, got.layers[l].heads[h].kept) << "layer " << l << " head " << h;
        std::set<int> kept;
        for (size_t k = 0; k < lc.heads[h].kept.size(); ++k) {
          const int p = pos[h][lc.heads[h].kept[k]];
          kept.insert(p);
          if (!lc.accumulated[h].empty()) s.acc[l * d_.kv_heads + h][p] = lc.accumulated[h][k];
        }
        std::vector<int>& stored = s.stored[l * d_.kv_heads + h];
        std::set<int>& masked = s.masked[l * d_.kv_heads + h];
        masked.clear();
        for (int p : stored) {
          if (p >= cc_.sinks && !kept.count(p)) masked.insert(p);
        }
        const bool rewrite =
            !masked.empty() &&
            (cc_.rewrite_every_time || options.memory_pressure ||
             static_cast<double>(masked.size()) > cc_.rewrite_threshold * stored.size());
        if (rewrite) {
          std::erase_if(stored, [&](int p) { return masked.count(p) != 0; });
          masked.clear();
        }
        for (int p = s.dense_begin; p < std::min(cc_.sinks, move_end); ++p) stored.push_back(p);
        for (int p = std::max(s.dense_begin, cc_.sinks); p < move_end; ++p) {
          if (kept.count(p)) stored.push_back(p);
        }
      }
    }
    s.dense_begin = move_end;
    return got;
  }

  // Checks the cache's condensed positions and masks against the shadow.
  void expect_tiers_match(int64_t id) {
    Seq& s = seqs_.at(id);
    for (int l = 0; l < d_.layers; ++l) {
      for (int h = 0; h < d_.kv_heads; ++h) {
        const HeadPages& hp = kv_.head(id, l, h);
        const std::vector<int>& stored = s.stored[l * d_.kv_heads + h];
        ASSERT_EQ(std::vector<int>(hp.positions.begin(), hp.positions.end()), stored)
            << "layer " << l << " head " << h;
        const std::map<int, float>& acc = s.acc[l * d_.kv_heads + h];
        for (size_t i = 0; i < stored.size(); ++i) {
          EXPECT_EQ(kv_.is_masked(id, l, h, static_cast<int>(i)),
                    s.masked[l * d_.kv_heads + h].count(stored[i]) != 0);
          const auto it = acc.find(stored[i]);
          EXPECT_EQ(hp.accumulated[i], it == acc.end() ? 0.0f : it->second);
        }
        EXPECT_EQ(hp.pages.size(), (stored.size() + d_.page_size - 1) / d_.page_size);
      }
    }
    EXPECT_EQ(kv_.sequence(id).dense_begin, s.dense_begin);
  }

  // Positions (l, h) of sequence id attends to: stored minus masked, then the dense tier.
  std::vector<int> attended(int64_t id, int l, int h) {
    Seq& s = seqs_.at(id);
    std::vector<int> out;
    for (int p : s.stored[l * d_.kv_heads + h]) {
      if (!s.masked[l * d_.kv_heads + h].count(p)) out.push_back(p);
    }
    for (int p = s.dense_begin; p < s.n; ++p) out.push_back(p);
    return out;
  }

  const float* key(int64_t id, int l, int pos, int h) {
    return seqs_.at(id).k[l].data() + (static_cast<int64_t>(pos) * d_.kv_heads + h) * d_.head_dim;
  }
  const float* value(int64_t id, int l, int pos, int h) {
    return seqs_.at(id).v[l].data() + (static_cast<int64_t>(pos) * d_.kv_heads + h) * d_.head_dim;
  }

  std::vector<float> random_q(int rows) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(rows) * d_.q_heads * d_.head_dim);
    for (float& x : q) x = nd(rng_);
    return q;
  }

  // Tiered attention of layer l for the last q_lens[i] tokens of ids[i].
  std::vector<float> tiered(const std::vector<int64_t>& ids, const std::vector<int32_t>& q_lens,
                            int l, const std::vector<float>& q) {
    const TieredAttentionMeta meta = kv_.build_attention_meta(ids, q_lens);
    std::vector<float> out(q.size(), std::nanf(""));
    tiered_attention_layer(kv_, meta, l, q.data(), dense_k_[l].data(), dense_v_[l].data(),
                           1.0f / std::sqrt(static_cast<float>(d_.head_dim)), out.data());
    return out;
  }

  // Plain-loop reference over the shadow's attended sets and true K/V, causal by position.
  std::vector<float> reference(const std::vector<int64_t>& ids, const std::vector<int32_t>& q_lens,
                               int l, const std::vector<float>& q) {
    const int D = d_.head_dim, group = d_.q_heads / d_.kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    std::vector<float> out(q.size());
    int row = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const int n = seqs_.at(ids[i]).n;
      for (int j = 0; j < q_lens[i]; ++j, ++row) {
        const int qpos = n - q_lens[i] + j;
        for (int hq = 0; hq < d_.q_heads; ++hq) {
          const int h = hq / group;
          const float* qv = q.data() + (static_cast<int64_t>(row) * d_.q_heads + hq) * D;
          std::vector<int> ps;
          for (int p : attended(ids[i], l, h)) {
            if (p <= qpos) ps.push_back(p);
          }
          std::vector<double> w(ps.size());
          double mx = -1e300;
          for (size_t t = 0; t < ps.size(); ++t) {
            double dot = 0;
            const float* k = key(ids[i], l, ps[t], h);
            for (int e = 0; e < D; ++e) dot += static_cast<double>(qv[e]) * k[e];
            w[t] = dot * scale;
            mx = std::max(mx, w[t]);
          }
          double den = 0;
          for (double& x : w) den += (x = std::exp(x - mx));
          float* o = out.data() + (static_cast<int64_t>(row) * d_.q_heads + hq) * D;
          for (int e = 0; e < D; ++e) {
            double acc = 0;
            for (size_t t = 0; t < ps.size(); ++t)
              acc += w[t] / den * value(ids[i], l, ps[t], h)[e];
            o[e] = static_cast<float>(acc);
          }
        }
      }
    }
    return out;
  }

  // Max |tiered - reference| over every layer for the given batch (fresh random queries).
  double max_error(const std::vector<int64_t>& ids, const std::vector<int32_t>& q_lens) {
    int rows = 0;
    for (int32_t x : q_lens) rows += x;
    double err = 0;
    for (int l = 0; l < d_.layers; ++l) {
      const std::vector<float> q = random_q(rows);
      const std::vector<float> got = tiered(ids, q_lens, l, q);
      const std::vector<float> want = reference(ids, q_lens, l, q);
      for (size_t i = 0; i < got.size(); ++i) {
        err = std::max(err, std::isfinite(got[i]) ? std::abs(double(got[i]) - want[i]) : 1e30);
      }
    }
    return err;
  }

 private:
  Dims d_;
  compress::CompressionConfig cc_;
  DenseBlockPool pool_;
  HeadwiseKV kv_;
  compress::Compressor compressor_;
  std::mt19937 rng_;
  std::vector<std::vector<float>> dense_k_, dense_v_;  // [L] [num_blocks, bs, Hkv, D]
  std::map<int64_t, Seq> seqs_;
};

}  // namespace hardkv::kv::testing
