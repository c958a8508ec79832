// A cache that keeps only the layout (store_data = false, the device mode): given the true
// attention precomputed outside (here a plain loop) it makes the same decisions as the reference
// cache, and the K/V moves it records, applied by a plain loop to a shadow "device" pool, leave
// every stored token's rows equal to the reference cache's.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "kv/compression_event.h"
#include "kv_sim.h"

namespace hardkv::kv {
namespace {

using testing::Dims;
using testing::Sim;
using testing::test_config;

// The reference (Sim, host data) and a layout-only twin fed the same appends.
class Twin {
 public:
  Twin(const Dims& d, const compress::CompressionConfig& cc)
      : d_(d),
        cc_(cc),
        sim_(d, cc, 77),
        pool_(d.num_blocks, d.block_size),
        meta_(config(d, cc), pool_),
        compressor_(cc, d.layers) {
    const size_t rows = static_cast<size_t>(d.num_pages) * d.page_size * d.head_dim;
    dev_k_.assign(d.layers, std::vector<float>(rows, NAN));
    dev_v_.assign(d.layers, std::vector<float>(rows, NAN));
  }
  static HeadwiseKVConfig config(const Dims& d, const compress::CompressionConfig& cc) {
    HeadwiseKVConfig c = Sim::make_config(d, cc);
    c.store_data = false;
    return c;
  }

  void add(int64_t id) {
    sim_.add(id);
    meta_.add_sequence(id);
  }
  void append(int64_t id, int n) {
    const int before = sim_.kv().sequence(id).num_tokens;
    sim_.append(id, n);
    const std::vector<int32_t> slots = meta_.append_tokens(id, n);
    for (int t = 0; t < n; ++t) ASSERT_EQ(slots[t], sim_.kv().dense_slot(id, before + t));
    const std::vector<int64_t> ids = {id};
    const std::vector<int32_t> indptr = {0, n};
    for (int l = 0; l < d_.layers; ++l) push_observations(meta_, ids, indptr, l, nullptr);
  }

  // Plain-loop true attention (and keys) over the twin's candidates, in event order.
  PrecomputedScores precompute(int64_t id) {
    const EventCandidates c = event_candidates(meta_, id, cc_.sinks, cc_.window);
    const Sim::Seq& s = sim_.seq(id);
    const int H = d_.kv_heads, D = d_.head_dim, group = d_.q_heads / H;
    PrecomputedScores pre;
    pre.attn.resize(static_cast<size_t>(d_.layers) * H);
    pre.keys.resize(pre.attn.size());
    for (int l = 0; l < d_.layers; ++l) {
      for (int h = 0; h < H; ++h) {
        std::vector<int> pos;
        const HeadPages& hp = meta_.head(id, l, h);
        for (int i = c.cond_begin[l * H + h]; i < hp.num_stored(); ++i) {
          pos.push_back(hp.positions[i]);
        }
        for (int p = c.dense_from; p < c.dense_to; ++p) pos.push_back(p);
        std::vector<double> mean(pos.size(), 0.0);
        int rows = 0;
        for (const std::vector<float>& q_row : s.obs[l]) {
          for (int g = 0; g < group; ++g, ++rows) {
            const float* q = q_row.data() + (h * group + g) * D;
            std::vector<double> z(pos.size());
            double z_max = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < pos.size(); ++j) {
              const float* k = s.k[l].data() + (static_cast<size_t>(pos[j]) * H + h) * D;
              double dot = 0.0;
              for (int e = 0; e < D; ++e) dot += static_cast<double>(q[e]) * k[e];
              z[j] = dot / std::sqrt(static_cast<double>(D));
              z_max = std::max(z_max, z[j]);
            }
            for (double& x : z) sum += (x = std::exp(x - z_max));
            for (size_t j = 0; j < pos.size(); ++j) mean[j] += z[j] / sum;
          }
        }
        std::vector<float>& a = pre.attn[l * H + h];
        std::vector<float>& keys = pre.keys[l * H + h];
        for (size_t j = 0; j < pos.size(); ++j) {
          a.push_back(static_cast<float>(mean[j] / rows));
          const float* k = s.k[l].data() + (static_cast<size_t>(pos[j]) * H + h) * D;
          keys.insert(keys.end(), k, k + D);
        }
      }
    }
    return pre;
  }

  // One event on both; the twin's moves go to the shadow pool.
  void event(int64_t id) {
    const PrecomputedScores pre = precompute(id);
    CompressionEventOptions opt;
    opt.precomputed = &pre;
    const CompressionEventResult got = run_compression_event(meta_, id, {}, compressor_, opt);
    const CompressionEventResult want = sim_.event(id);
    ASSERT_EQ(got.moves.size(), static_cast<size_t>(d_.layers));
    EXPECT_EQ(got.tokens_appended, want.tokens_appended);
    EXPECT_EQ(got.num_rewrites, want.num_rewrites);
    moves_seen_ += got.tokens_appended;
    const DenseKVView dense = sim_.view();
    const int P = d_.page_size, D = d_.head_dim, H = d_.kv_heads;
    for (int l = 0; l < d_.layers; ++l) {
      for (int h = 0; h < H; ++h) {
        EXPECT_EQ(got.layers[l].heads[h].kept, want.layers[l].heads[h].kept)
            << "layer " << l << " head " << h;
      }
      const LayerMoves& m = got.moves[l];
      for (const HeadRewriteMoves& r : m.rewrites) {
        ++rewrites_seen_;
        for (size_t k = 0; k < r.src.size(); ++k) {
          ASSERT_GT(r.src[k], r.dst[k]);
          if (k > 0) {
            ASSERT_GT(r.dst[k], r.dst[k - 1]);
          }
          const size_t from = (static_cast<size_t>(r.pages[r.src[k] / P]) * P + r.src[k] % P) * D;
          const size_t to = (static_cast<size_t>(r.pages[r.dst[k] / P]) * P + r.dst[k] % P) * D;
          std::copy_n(dev_k_[l].begin() + from, D, dev_k_[l].begin() + to);
          std::copy_n(dev_v_[l].begin() + from, D, dev_v_[l].begin() + to);
        }
      }
      for (const AppendRow& a : m.appends) {
        const size_t from = (static_cast<size_t>(a.dense_slot) * H + a.kv_head) * D;
        std::copy_n(dense.k[l] + from, D, dev_k_[l].begin() + static_cast<size_t>(a.pool_row) * D);
        std::copy_n(dense.v[l] + from, D, dev_v_[l].begin() + static_cast<size_t>(a.pool_row) * D);
      }
    }
  }

  // Layouts equal, and the shadow rows of every stored token equal the reference cache's rows.
  void expect_same(int64_t id) {
    const int P = d_.page_size, D = d_.head_dim;
    for (int l = 0; l < d_.layers; ++l) {
      for (int h = 0; h < d_.kv_heads; ++h) {
        SCOPED_TRACE(::testing::Message() << "layer " << l << " head " << h);
        const HeadPages& a = meta_.head(id, l, h);
        const HeadPages& b = sim_.kv().head(id, l, h);
        ASSERT_EQ(a.positions, b.positions);
        ASSERT_EQ(a.pages.size(), b.pages.size());
        for (int i = 0; i < a.num_stored(); ++i) {
          EXPECT_EQ(meta_.is_masked(id, l, h, i), sim_.kv().is_masked(id, l, h, i));
          const size_t row = (static_cast<size_t>(a.pages[i / P]) * P + i % P) * D;
          const float* k = sim_.kv().page_pool(l).k_row(b.pages[i / P], i % P);
          const float* v = sim_.kv().page_pool(l).v_row(b.pages[i / P], i % P);
          for (int e = 0; e < D; ++e) {
            ASSERT_EQ(dev_k_[l][row + e], k[e]) << "token " << i;
            ASSERT_EQ(dev_v_[l][row + e], v[e]) << "token " << i;
          }
        }
      }
    }
    EXPECT_EQ(meta_.total_usage().total_bytes(), sim_.kv().total_usage().total_bytes());
  }

  HeadwiseKV& meta() { return meta_; }
  int64_t moves_seen() const { return moves_seen_; }
  int64_t rewrites_seen() const { return rewrites_seen_; }

 private:
  Dims d_;
  compress::CompressionConfig cc_;
  Sim sim_;
  DenseBlockPool pool_;
  HeadwiseKV meta_;
  compress::Compressor compressor_;
  std::vector<std::vector<float>> dev_k_, dev_v_;  // [L][num_pages * P * D] the shadow pool
  int64_t moves_seen_ = 0, rewrites_seen_ = 0;
};

class LayoutOnly : public ::testing::TestWithParam<std::tuple<const char*, double>> {};

TEST_P(LayoutOnly, SameDecisionsAndRowsAsTheReference) {
  const auto [strategy, threshold] = GetParam();
  Dims d;
  auto cc = test_config(16, 4, 2, strategy, "hard");
  cc.rewrite_threshold = threshold;
  Twin twin(d, cc);
  twin.add(1);
  twin.add(2);
  twin.append(1, 40);
  twin.append(2, 23);
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    for (int64_t id : {1, 2}) {
      twin.event(id);
      twin.expect_same(id);
    }
    twin.append(1, 7);
    twin.append(2, 9);
  }
  EXPECT_GT(twin.moves_seen(), 0);
  if (threshold < 1.0) {
    EXPECT_GT(twin.rewrites_seen(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, LayoutOnly,
                         ::testing::Values(std::make_tuple("snapkv", 0.0),
                                           std::make_tuple("rkv", 0.3), std::make_tuple("h2o", 1.0),
                                           std::make_tuple("attn", 0.1)));

// A sequence past 1,024 tokens: planning and applying run their layers in parallel.
TEST(LayoutOnly, LongSequenceParallelLayers) {
  Dims d;
  d.layers = 4;
  auto cc = test_config(64, 8, 2, "snapkv", "hard");
  cc.rewrite_threshold = 0.0;
  Twin twin(d, cc);
  twin.add(1);
  twin.append(1, 1100);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    twin.event(1);
    twin.expect_same(1);
    twin.append(1, 20);
  }
  EXPECT_GT(twin.rewrites_seen(), 0);
}

TEST(LayoutOnly, EventWithoutPrecomputedScoresIsRejected) {
  Dims d;
  Twin twin(d, test_config(16, 4, 2));
  twin.add(1);
  twin.append(1, 40);
  compress::Compressor c(test_config(16, 4, 2), d.layers);
  EXPECT_THROW(run_compression_event(twin.meta(), 1, {}, c), Error);
}

TEST(LayoutOnly, ObservationBufferOnlyCounts) {
  ObsQueries obs(2, 4, 2, 8, /*store_rows=*/false);
  obs.push(0, nullptr, 3);
  obs.push(0, nullptr, 3);
  obs.push(1, nullptr, 1);
  EXPECT_EQ(obs.count(0), 4);
  EXPECT_EQ(obs.count(1), 1);
  std::vector<float> out(4 * 2 * 8);
  EXPECT_THROW(obs.gather_group(0, 0, 2, out.data()), Error);
}

}  // namespace
}  // namespace hardkv::kv
