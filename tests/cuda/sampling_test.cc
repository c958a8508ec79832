// GPU sampling (kernels/cuda/sampling.cu and CudaBackend::sample) against the host sampler
// (sampling/sampler.cc) on many random rows: greedy exactly, draws on the same uniforms, kept-set
// sizes, log-probabilities, forced tokens. Skips without a CUDA device.
#include "kernels/cuda/sampling.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "sampling/sampler.h"

namespace hardkv {
namespace {

using cuda::SampleRowParams;

// The whole GPU test binary runs the session-8 sampling paths (off by default until checked on a
// GPU; see kernels/cuda/env_switch.h) unless a run sets the switches itself: set before main(),
// so before any kernel launcher reads them.
const bool kSamplePathsOn = [] {
  setenv("HARDKV_SAMPLE_ONE_PASS", "1", 0);
  setenv("HARDKV_SAMPLE_MAPPED", "1", 0);
  setenv("HARDKV_SAMPLE_GREEDY_LEAN", "1", 0);
  return true;
}();

enum class RowKind { kFlat, kPeaked, kBf16Ties, kTiedMax, kNegInf, kIntegers, kConstant };
constexpr RowKind kAllKinds[] = {RowKind::kFlat,    RowKind::kPeaked, RowKind::kBf16Ties,
                                 RowKind::kTiedMax, RowKind::kNegInf, RowKind::kIntegers,
                                 RowKind::kConstant};

void fill_row(RowKind kind, std::mt19937_64& rng, std::span<float> row) {
  std::normal_distribution<float> n1(0.f, 1.f);
  const float ninf = -std::numeric_limits<float>::infinity();
  switch (kind) {
    case RowKind::kFlat:
      for (float& x : row) x = 0.3f * n1(rng);
      break;
    case RowKind::kPeaked:
      for (float& x : row) x = 4.f * n1(rng);
      break;
    case RowKind::kBf16Ties:  // bf16 rounding: many exact ties everywhere
      for (float& x : row) x = bf16_to_f32(f32_to_bf16(2.f * n1(rng)));
      break;
    case RowKind::kTiedMax: {  // the maximum appears several times
      for (float& x : row) x = n1(rng);
      const float m = *std::max_element(row.begin(), row.end()) + 0.5f;
      for (int i = 0; i < 4; ++i) row[rng() % row.size()] = m;
      break;
    }
    case RowKind::kNegInf:  // about a third masked out, never all
      for (float& x : row) x = rng() % 3 == 0 ? ninf : 2.f * n1(rng);
      row[rng() % row.size()] = 1.f;
      break;
    case RowKind::kIntegers:  // few distinct values: thresholds fall inside large tie groups
      for (float& x : row) x = std::round(2.f * n1(rng));
      break;
    case RowKind::kConstant:
      for (float& x : row) x = 0.25f;
      break;
  }
}

SamplingParams random_params(std::mt19937_64& rng) {
  SamplingParams p;
  const float temps[] = {0.f, 0.6f, 1.f, 1.7f};
  const int top_ks[] = {0, 0, 1, 5, 20, 50, 1000};
  const float top_ps[] = {1.f, 1.f, 0.3f, 0.8f, 0.95f};
  const float min_ps[] = {0.f, 0.f, 0.f, 0.02f, 0.1f, 0.3f};
  p.temperature = temps[rng() % 4];
  p.top_k = top_ks[rng() % 7];
  p.top_p = top_ps[rng() % 5];
  p.min_p = min_ps[rng() % 6];
  return p;
}

double random_uniform(std::mt19937_64& rng) {
  switch (rng() % 50) {
    case 0:
      return 0.0;
    case 1:
      return 1.0 - 1e-12;
    default:
      return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  }
}

class CudaSamplingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: GPU sampling tests skipped";
    be_ = make_cuda_backend(0);
    cuda_ = static_cast<cuda::CudaBackend*>(be_.get());
  }

  struct GpuOut {
    std::vector<int32_t> tokens, kept;
    std::vector<float> logprobs;
  };
  // Runs the kernel on host logits F32 [n, vocab] with one SampleRowParams per row.
  // cluster_size: thread blocks per row (0 = the launcher's choice).
  GpuOut run_kernel(const std::vector<float>& logits, int64_t vocab,
                    const std::vector<SampleRowParams>& params, int cluster_size = 0) {
    const int64_t n = static_cast<int64_t>(params.size());
    Tensor host = Tensor::empty(DType::kF32, {n, vocab});
    std::memcpy(host.data(), logits.data(), logits.size() * sizeof(float));
    Tensor dev = be_->upload(host, DType::kF32);
    Tensor ph = Tensor::empty(DType::kI32, {n * 8});
    std::memcpy(ph.data(), params.data(), params.size() * sizeof(SampleRowParams));
    Tensor pd = be_->upload(ph, DType::kI32);
    Tensor tok = be_->alloc(DType::kI32, {n}), kept = be_->alloc(DType::kI32, {n});
    Tensor lp = be_->alloc(DType::kF32, {n});
    cuda::launch_sample(dev.data_as<const float>(), n, vocab,
                        reinterpret_cast<const SampleRowParams*>(pd.data()), tok.data_as<int32_t>(),
                        lp.data_as<float>(), kept.data_as<int32_t>(), cuda_->stream(),
                        cluster_size);
    GpuOut out;
    const Tensor t = be_->download(tok), k = be_->download(kept), l = be_->download(lp);
    out.tokens.assign(t.data_as<int32_t>(), t.data_as<int32_t>() + n);
    out.kept.assign(k.data_as<int32_t>(), k.data_as<int32_t>() + n);
    out.logprobs.assign(l.data_as<float>(), l.data_as<float>() + n);
    if (n <= cuda::kSampleInlineRows) {
      // The same launch with the parameters passed inline (as CudaBackend::sample does for few
      // rows) must give exactly the same results.
      Tensor tok2 = be_->alloc(DType::kI32, {n}), kept2 = be_->alloc(DType::kI32, {n});
      Tensor lp2 = be_->alloc(DType::kF32, {n});
      cuda::launch_sample(dev.data_as<const float>(), n, vocab, nullptr, tok2.data_as<int32_t>(),
                          lp2.data_as<float>(), kept2.data_as<int32_t>(), cuda_->stream(),
                          cluster_size, params.data());
      const Tensor t2 = be_->download(tok2), k2 = be_->download(kept2), l2 = be_->download(lp2);
      EXPECT_TRUE(std::equal(out.tokens.begin(), out.tokens.end(), t2.data_as<int32_t>()));
      EXPECT_TRUE(std::equal(out.kept.begin(), out.kept.end(), k2.data_as<int32_t>()));
      EXPECT_TRUE(std::equal(out.logprobs.begin(), out.logprobs.end(), l2.data_as<float>()));
    }
    {
      // Without the kept counts and log-probabilities (as the engine samples), the same tokens.
      Tensor tok3 = be_->alloc(DType::kI32, {n});
      cuda::launch_sample(dev.data_as<const float>(), n, vocab,
                          reinterpret_cast<const SampleRowParams*>(pd.data()),
                          tok3.data_as<int32_t>(), nullptr, nullptr, cuda_->stream(), cluster_size);
      const Tensor t3 = be_->download(tok3);
      EXPECT_TRUE(std::equal(out.tokens.begin(), out.tokens.end(), t3.data_as<int32_t>()));
    }
    return out;
  }

  // Rows of every kind and vocabulary size, parameters from `gen`, through several cluster sizes,
  // against the host sampler (the rule for a differing draw is below).
  void check_matches_host(SamplingParams (*gen)(std::mt19937_64&), int rows_scale);

  std::unique_ptr<Backend> be_;
  cuda::CudaBackend* cuda_ = nullptr;
};

// A draw that differs from the host's (see the rule below).
void check_adjacent_draw(const std::vector<double>& probs, int32_t got, int32_t want, double u,
                         const std::string& what) {
  EXPECT_GT(probs[got], 0.0) << what << ": GPU token " << got << " not kept";
  const int32_t lo = std::min(got, want), hi = std::max(got, want);
  double cdf_lo = 0;  // host cumulative probability up to and including lo
  for (int32_t t = 0; t <= lo; ++t) cdf_lo += probs[t];
  for (int32_t t = lo + 1; t < hi; ++t) {
    EXPECT_EQ(probs[t], 0.0) << what << ": kept token " << t << " between " << got << " and "
                             << want;
  }
  EXPECT_NEAR(u, cdf_lo, 1e-9) << what << ": GPU " << got << " host " << want;
}

// Rule for a draw that differs from the host's: the GPU sums weights in another order (block
// scans, not a left-to-right loop), which can move a CDF boundary by a few ulps. So a differing
// row is allowed only when both tokens are in the host's kept set, no kept token lies between
// them in id order (adjacent CDF positions), and the uniform lies within 1e-9 of the host's
// cumulative probability at the boundary between them. At most 0.1% of rows may differ.
void CudaSamplingTest::check_matches_host(SamplingParams (*gen)(std::mt19937_64&),
                                          int rows_scale) {
  const int64_t vocabs[] = {1, 2, 7, 33, 257, 1001, 4099, 32003, 151935, 151936};
  const int rows_for[] = {40, 60, 400, 400, 400, 400, 300, 200, 40, 160};
  std::mt19937_64 rng(1234);
  int64_t total_rows = 0, differing_draws = 0, differing_kept = 0, kept_checked = 0;
  double max_lp_err = 0;
  for (int b = 0; b < 10; ++b) {
    const int64_t vocab = vocabs[b];
    const int n = rows_for[b] * rows_scale / 4;
    std::vector<float> logits(static_cast<size_t>(n) * vocab);
    std::vector<SamplingParams> ps(n);
    std::vector<SampleRowParams> gp(n);
    std::vector<RowKind> kinds(n);
    for (int i = 0; i < n; ++i) {
      kinds[i] = kAllKinds[rng() % 7];
      fill_row(kinds[i], rng, std::span<float>(logits).subspan(i * vocab, vocab));
      ps[i] = gen(rng);
      gp[i].temperature = ps[i].temperature;
      gp[i].top_k = ps[i].top_k;
      gp[i].top_p = ps[i].top_p;
      gp[i].min_p = ps[i].min_p;
      gp[i].uniform = random_uniform(rng);
    }
    // Every row through several cluster sizes (blocks per row): the launcher's, 1, 3 and 16.
    std::vector<GpuOut> outs;
    for (const int cluster_size : {0, 1, 3, 16}) {
      outs.push_back(run_kernel(logits, vocab, gp, cluster_size));
    }
    std::vector<double> probs(vocab);
    const int cluster_sizes[] = {0, 1, 3, 16};
    for (int i = 0; i < n; ++i) {
      const std::span<const float> row(logits.data() + i * vocab, vocab);
      const SamplingParams& p = ps[i];
      const int32_t want = sample_token_with_uniform(row, p, gp[i].uniform);
      int host_kept = 1;
      if (p.temperature != 0.f) {
        sampling_distribution(row, p, probs);
        host_kept = static_cast<int>(
            std::count_if(probs.begin(), probs.end(), [](double q) { return q > 0.0; }));
      }
      for (size_t v = 0; v < outs.size(); ++v) {
        const std::string what =
            fmt::format("vocab {} row {} kind {} T {} top_k {} top_p {} min_p {} u {} cluster {}",
                        vocab, i, static_cast<int>(kinds[i]), p.temperature, p.top_k, p.top_p,
                        p.min_p, gp[i].uniform, cluster_sizes[v]);
        const int32_t got = outs[v].tokens[i];
        const int kept = outs[v].kept[i];
        ASSERT_TRUE(got >= 0 && got < vocab) << what << ": token " << got;
        ++total_rows;
        if (p.temperature == 0.f) {
          ASSERT_EQ(got, want) << what << " (greedy must match exactly)";
          EXPECT_EQ(kept, 1) << what;
        } else {
          ++kept_checked;
          if (kept != host_kept) {
            ++differing_kept;
            EXPECT_LE(std::abs(kept - host_kept), 1)
                << what << ": kept " << kept << " vs host " << host_kept;
          }
          if (got != want) {
            ++differing_draws;
            check_adjacent_draw(probs, got, want, gp[i].uniform, what);
          }
        }
        const float lp = token_logprob(row, got);
        max_lp_err = std::max(max_lp_err, static_cast<double>(std::abs(lp - outs[v].logprobs[i])));
        ASSERT_NEAR(outs[v].logprobs[i], lp, 1e-4) << what;
      }
    }
  }
  std::printf(
      "sampling: %lld row draws (rows x 4 cluster sizes), %lld differ from the host, %lld of %lld "
      "kept sets "
      "differ, max |logprob error| %.2e\n",
      static_cast<long long>(total_rows), static_cast<long long>(differing_draws),
      static_cast<long long>(differing_kept), static_cast<long long>(kept_checked), max_lp_err);
  EXPECT_LE(differing_draws * 1000, total_rows) << "more than 0.1% of draws differ";
  EXPECT_LE(differing_kept * 1000, kept_checked) << "more than 0.1% of kept sets differ";
}

TEST_F(CudaSamplingTest, MatchesHostSampler) { check_matches_host(random_params, 4); }

// Temperature without filters (the one-pass path of the kernel, what nano-vLLM's benchmark
// samples with), on as many rows.
static SamplingParams random_temperature_only(std::mt19937_64& rng) {
  SamplingParams p = random_params(rng);
  const float temps[] = {0.6f, 1.f, 1.7f, 0.2f};
  p.temperature = temps[rng() % 4];
  p.top_k = 0;
  p.top_p = 1.f;
  p.min_p = 0.f;
  return p;
}
TEST_F(CudaSamplingTest, TemperatureOnlyMatchesHostSampler) {
  check_matches_host(random_temperature_only, 2);
}

// All-greedy rows with inline parameters and only tokens asked for take the plain greedy kernel
// (sampling_greedy.cu): the host sampler's argmax, exactly, for every vocabulary size and row
// kind; launches repeat (each must leave the kernel's per-row state cleared for the next).
TEST_F(CudaSamplingTest, GreedyRowsWithoutClusterMatchHostArgmax) {
  std::mt19937_64 rng(99);
  int checked = 0;
  for (const int64_t vocab : {1, 2, 7, 33, 2049, 4099, 151935, 151936}) {
    for (const int n : {1, 3, 64}) {
      std::vector<float> logits(static_cast<size_t>(n) * vocab);
      for (int i = 0; i < n; ++i) {
        fill_row(kAllKinds[rng() % 7], rng,
                 std::span<float>(logits).subspan(static_cast<size_t>(i) * vocab, vocab));
      }
      Tensor host = Tensor::empty(DType::kF32, {n, vocab});
      std::memcpy(host.data(), logits.data(), logits.size() * sizeof(float));
      const Tensor dev = be_->upload(host, DType::kF32);
      const std::vector<SampleRowParams> greedy(n);  // temperature 0, not forced
      for (int rep = 0; rep < 3; ++rep) {
        Tensor tok = be_->alloc(DType::kI32, {n});
        cuda::launch_sample(dev.data_as<const float>(), n, vocab, nullptr,
                            tok.data_as<int32_t>(), nullptr, nullptr, cuda_->stream(), 0,
                            greedy.data());
        const Tensor t = be_->download(tok);
        for (int i = 0; i < n; ++i) {
          const std::span<const float> row(logits.data() + static_cast<size_t>(i) * vocab,
                                           vocab);
          SamplingParams p;
          p.temperature = 0.f;
          ASSERT_EQ(t.data_as<int32_t>()[i], sample_token_with_uniform(row, p, 0.5))
              << "vocab " << vocab << " rows " << n << " row " << i << " rep " << rep;
          ++checked;
        }
      }
    }
  }
  std::printf("greedy without cluster: %d rows checked\n", checked);
}

// Kept-set sizes on rows built so the answer is known without the host sampler: distinct logits
// 0, -1, -2, ... (shuffled), temperature 1.
TEST_F(CudaSamplingTest, KeptSetSizes) {
  const int64_t vocab = 5000;
  std::mt19937_64 rng(7);
  std::vector<float> row(vocab);
  for (int64_t i = 0; i < vocab; ++i) row[i] = -static_cast<float>(i);
  std::shuffle(row.begin(), row.end(), rng);
  // Weights e^0, e^-1, ...: the top-j mass is (1 - e^-j) / (1 - e^-vocab).
  struct Want {
    int top_k;
    float top_p, min_p;
    int kept;
  };
  const Want cases[] = {{20, 1.f, 0.f, 20}, {1, 1.f, 0.f, 1},
                        {0, 0.5f, 0.f, 1},                       // 1 - e^-1 = 0.632
                        {0, 0.7f, 0.f, 2},  {0, 0.95f, 0.f, 3},  // 0.865, 0.950
                        {0, 0.99f, 0.f, 5},                      // 0.993
                        {0, 1.f, 0.1f, 3},                       // e^-2 = 0.135 >= 0.1
                        {0, 1.f, 0.01f, 5},                      // e^-4 = 0.018
                        {3, 0.99f, 0.f, 3}, {10, 0.95f, 0.01f, 3}};
  std::vector<float> logits;
  std::vector<SampleRowParams> gp;
  for (const Want& c : cases) {
    logits.insert(logits.end(), row.begin(), row.end());
    SampleRowParams p;
    p.temperature = 1.f;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.uniform = 0.5;
    gp.push_back(p);
  }
  for (const int cluster_size : {0, 16}) {
    const GpuOut g = run_kernel(logits, vocab, gp, cluster_size);
    for (size_t i = 0; i < gp.size(); ++i) {
      EXPECT_EQ(g.kept[i], cases[i].kept) << "case " << i << " cluster " << cluster_size;
      EXPECT_GE(row[g.tokens[i]], 1.f - cases[i].kept)
          << "case " << i << " cluster " << cluster_size << ": token outside the set";
    }
  }
}

// The public op: forced tokens honoured (their log-probability is still the model's), the other
// rows equal to the host default (Backend::sample), log-probabilities within 1e-4.
TEST_F(CudaSamplingTest, BackendSampleForcedAndLogprobs) {
  const int64_t vocab = 151936;
  const int n = 24;
  std::mt19937_64 rng(99);
  Tensor host = Tensor::empty(DType::kF32, {n, vocab});
  for (int i = 0; i < n; ++i) {
    fill_row(kAllKinds[i % 7], rng, std::span<float>(host.data_as<float>() + i * vocab, vocab));
  }
  SampleRows rows;
  rows.logprobs = true;
  for (int i = 0; i < n; ++i) {
    const SamplingParams p = random_params(rng);
    rows.temperature.push_back(p.temperature);
    rows.top_k.push_back(p.top_k);
    rows.top_p.push_back(p.top_p);
    rows.min_p.push_back(p.min_p);
    rows.uniform.push_back(random_uniform(rng));
    rows.forced.push_back(i % 3 == 0 ? static_cast<int32_t>(rng() % vocab) : -1);
  }
  const Tensor dev = be_->upload(host, DType::kF32);
  const SampleResult got = be_->sample(dev, rows);
  const SampleResult want = be_->Backend::sample(host, rows);  // host sampler
  ASSERT_EQ(got.tokens.size(), static_cast<size_t>(n));
  ASSERT_EQ(got.logprobs.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (rows.forced[i] >= 0) {
      EXPECT_EQ(got.tokens[i], rows.forced[i]) << "row " << i;
    }
    EXPECT_EQ(got.tokens[i], want.tokens[i]) << "row " << i;
    if (got.logprobs[i] != want.logprobs[i]) {  // equal covers a forced token at -inf
      EXPECT_NEAR(got.logprobs[i], want.logprobs[i], 1e-4) << "row " << i;
    }
  }
  // Without log-probabilities none come back.
  rows.logprobs = false;
  EXPECT_TRUE(be_->sample(dev, rows).logprobs.empty());
  be_->release_scratch();
}

// A forced token outside the vocabulary is the caller's error.
TEST_F(CudaSamplingTest, RejectsForcedTokenOutsideVocabulary) {
  Tensor host = Tensor::empty(DType::kF32, {1, 8});
  std::fill_n(host.data_as<float>(), 8, 0.f);
  SampleRows rows = SampleRows::greedy(1);
  rows.forced = {8};
  EXPECT_THROW(be_->sample(be_->upload(host, DType::kF32), rows), Error);
}

// Not an assertion: one line of timing for 256 rows x 151,936 (bench_sampling has the table).
TEST_F(CudaSamplingTest, PrintsTiming) {
  const int64_t n = 256, vocab = 151936;
  Tensor host = Tensor::empty(DType::kF32, {n, vocab});
  std::mt19937_64 rng(5);
  fill_row(RowKind::kPeaked, rng, std::span<float>(host.data_as<float>(), n * vocab));
  const Tensor dev = be_->upload(host, DType::kF32);
  SampleRows rows;
  for (int i = 0; i < n; ++i) {
    rows.temperature.push_back(0.6f);
    rows.top_k.push_back(20);
    rows.top_p.push_back(0.95f);
    rows.min_p.push_back(0.f);
    rows.uniform.push_back(random_uniform(rng));
    rows.forced.push_back(-1);
  }
  be_->sample(dev, rows);  // warm-up
  be_->release_scratch();
  const auto t0 = std::chrono::steady_clock::now();
  const int iters = 20;
  for (int it = 0; it < iters; ++it) {
    be_->sample(dev, rows);
    be_->release_scratch();
  }
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      iters;
  std::printf(
      "CudaBackend::sample 256 x 151936, T 0.6 top-k 20 top-p 0.95: %.1f us per call "
      "(host clock, download included)\n",
      us);
}

}  // namespace
}  // namespace hardkv
