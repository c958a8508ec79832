// Plain-loop reference of HARD-KV selection for the tests: written separately from src/compress
// (naive loops, std::sort, full similarity matrices, linear-scan bisection, a k-way merge for
// adakv), from the definitions in docs/COMPRESSION.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace hardkv::compress::ref {

// One kv-head's candidates with owned arrays (shapes as HeadInput).
struct Head {
  int num_obs = 0, group = 0, dim = 0, n = 0;
  std::vector<float> q;      // [num_obs, group, dim]
  std::vector<float> k;      // [n, dim]
  std::vector<int32_t> pos;  // [n]
  std::vector<float> acc;    // [n] or empty (h2o state)
};

struct Params {
  std::string strategy, allocation;
  int budget = 0, upper = 0, window = 0, sinks = 0;
  double p = 0.9;
  int kernel = 7;
  double lambda = 0.1, threshold = 0.5, safeguard = 0.2;
  int beta = 20;
};

struct HeadResult {
  std::vector<int32_t> kept;  // increasing candidate indices
  double temperature = 1.0;
  int n_star = 0;
  std::vector<float> phi;   // [n]
  std::vector<float> attn;  // [n]
};

inline std::vector<double> softmax(const std::vector<double>& x) {
  double m = x[0];
  for (double v : x) m = std::max(m, v);
  std::vector<double> e(x.size());
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e[i] = std::exp(x[i] - m);
    s += e[i];
  }
  for (double& v : e) v /= s;
  return e;
}

inline std::vector<double> attention(const Head& h) {
  std::vector<double> a(h.n, 0.0);
  if (h.n == 0) return a;
  const int rows = h.num_obs * h.group;
  for (int r = 0; r < rows; ++r) {
    std::vector<double> z(h.n);
    for (int j = 0; j < h.n; ++j) {
      double dot = 0;
      for (int c = 0; c < h.dim; ++c) dot += double(h.q[r * h.dim + c]) * h.k[j * h.dim + c];
      z[j] = dot / std::sqrt(double(h.dim));
    }
    std::vector<double> p = softmax(z);
    for (int j = 0; j < h.n; ++j) a[j] += p[j];
  }
  for (double& v : a) v /= rows;
  return a;
}

inline std::vector<double> pool(const std::vector<double>& x, int kernel) {
  std::vector<double> out(x.size());
  const int n = int(x.size());
  for (int j = 0; j < n; ++j) {
    double m = -INFINITY;
    for (int t = j - kernel / 2; t <= j + kernel / 2; ++t) {
      if (t >= 0 && t < n) m = std::max(m, x[t]);
    }
    out[j] = m;
  }
  return out;
}

inline std::vector<float> to_logits(const std::vector<double>& s) {
  double total = 0;
  for (double v : s) total += v;
  std::vector<float> phi(s.size(), 0.0f);
  if (total > 0) {
    for (size_t j = 0; j < s.size(); ++j) phi[j] = float(std::log(s[j] / total + 1e-10));
  }
  return phi;
}

inline std::vector<double> rkv_redundancy(const Head& h, double threshold) {
  const int n = h.n;
  std::vector<double> norm(n);
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int c = 0; c < h.dim; ++c) s += double(h.k[i * h.dim + c]) * h.k[i * h.dim + c];
    norm[i] = std::sqrt(s) + 1e-8;
  }
  std::vector<std::vector<double>> sim(n, std::vector<double>(n, 0.0));
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      double dot = 0;
      for (int c = 0; c < h.dim; ++c) {
        dot += (h.k[i * h.dim + c] / norm[i]) * (h.k[j * h.dim + c] / norm[j]);
      }
      sim[i][j] = dot;
    }
  }
  for (int i = 0; i < n; ++i) {  // keep-most-recent: zero the latest near-duplicate of row i
    for (int j = n - 1; j >= 0; --j) {
      if (j != i && sim[i][j] > threshold) {
        sim[i][j] = 0;
        break;
      }
    }
  }
  std::vector<double> col(n, 0.0);
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < n; ++i) col[j] += sim[i][j];
    col[j] /= n;
  }
  return softmax(col);
}

// Scores phi and true attention of one head.
inline void score(const Params& prm, const Head& h, HeadResult& out) {
  const std::vector<double> a = attention(h);
  out.attn.assign(a.begin(), a.end());
  if (prm.strategy == "attn") {
    out.phi = to_logits(a);
  } else if (prm.strategy == "snapkv") {
    out.phi = to_logits(pool(a, prm.kernel));
  } else if (prm.strategy == "rkv") {
    if (h.n == 0) return;
    const std::vector<double> imp = pool(a, prm.kernel);
    const std::vector<double> red = rkv_redundancy(h, prm.threshold);
    std::vector<double> s(h.n);
    for (int j = 0; j < h.n; ++j) s[j] = prm.lambda * imp[j] - (1 - prm.lambda) * red[j];
    const double lo = *std::min_element(s.begin(), s.end());
    for (double& v : s) v -= lo;
    out.phi = to_logits(s);
  } else if (prm.strategy == "h2o") {
    std::vector<double> s(h.n);
    for (int j = 0; j < h.n; ++j) s[j] = (h.acc.empty() ? 0.0 : h.acc[j]) + h.num_obs * a[j];
    out.phi = to_logits(s);
  } else {  // streaming
    out.phi.assign(h.n, 0.0f);
  }
}

inline std::vector<int32_t> ranking(const std::vector<float>& phi) {
  std::vector<int32_t> idx(phi.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int32_t(i);
  std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) {
    if (phi[a] > phi[b]) return true;
    if (phi[a] < phi[b]) return false;
    return a < b;
  });
  return idx;
}

// Mass of softmax(phi / T) on the first k of `order`.
inline double mass(const std::vector<float>& phi, const std::vector<int32_t>& order, int k,
                   double T) {
  const int n = int(phi.size());
  if (k >= n) return 1.0;
  double m = -INFINITY;
  for (float v : phi) m = std::max(m, double(v));
  double total = 0, top = 0;
  for (int j = 0; j < n; ++j) total += std::exp((phi[j] - m) / T);
  for (int i = 0; i < k; ++i) top += std::exp((phi[order[i]] - m) / T);
  return top / total;
}

// Largest T in [1e-4, 1e4] with mass >= p: linear bisection on T.
inline double temperature(const std::vector<float>& phi, const std::vector<int32_t>& order, int k,
                          double p) {
  double lo = 1e-4, hi = 1e4;
  if (mass(phi, order, k, hi) >= p) return hi;
  if (mass(phi, order, k, lo) < p) return lo;
  for (int it = 0; it < 300; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (mass(phi, order, k, mid) >= p ? lo : hi) = mid;
  }
  return lo;
}

inline int true_top_p(const std::vector<float>& attn, double p) {
  std::vector<float> s = attn;
  std::sort(s.begin(), s.end(), [](float a, float b) { return a > b; });
  double total = 0;
  for (float v : s) total += v;
  double c = 0;
  for (size_t k = 1; k < s.size(); ++k) {
    c += s[k - 1];
    if (c / total >= p) return int(k);
  }
  return int(s.size());
}

inline std::vector<int32_t> first(const std::vector<int32_t>& order, int count) {
  std::vector<int32_t> kept(order.begin(), order.begin() + count);
  std::sort(kept.begin(), kept.end());
  return kept;
}

// Selection of one layer by the reference.
inline std::vector<HeadResult> select(const Params& prm, int layer, int num_layers,
                                      const std::vector<Head>& heads) {
  const int c = prm.budget - prm.window - prm.sinks;
  const int cap = prm.upper - prm.window - prm.sinks;
  const int H = int(heads.size());
  std::vector<HeadResult> res(H);
  std::vector<std::vector<int32_t>> order(H);
  for (int h = 0; h < H; ++h) {
    score(prm, heads[h], res[h]);
    order[h] = ranking(res[h].phi);
  }
  if (prm.strategy == "streaming") return res;
  if (prm.allocation == "uniform") {
    for (int h = 0; h < H; ++h) res[h].kept = first(order[h], std::min(c, heads[h].n));
  } else if (prm.allocation == "pyramid") {
    int quota = c;
    if (num_layers > 1) {
      const int qmin = c / prm.beta, qmax = 2 * c - qmin;
      quota = qmax - (layer * (qmax - qmin)) / (num_layers - 1);
    }
    quota = std::min(quota, cap);
    for (int h = 0; h < H; ++h) res[h].kept = first(order[h], std::min(quota, heads[h].n));
  } else if (prm.allocation == "hard") {
    for (int h = 0; h < H; ++h) {
      const int n = heads[h].n;
      if (n == 0) continue;
      res[h].n_star = true_top_p(res[h].attn, prm.p);
      const double T = temperature(res[h].phi, order[h], res[h].n_star, prm.p);
      res[h].temperature = T;
      int k = 1;
      while (k < n && mass(res[h].phi, order[h], k, T) < prm.p) ++k;
      k = std::max(k, c);
      k = std::min(k, cap);
      res[h].kept = first(order[h], std::min(k, n));
    }
  } else if (prm.allocation == "adakv") {
    const int safe = int(std::floor(prm.safeguard * c));
    std::vector<int> count(H), limit(H);
    std::vector<std::vector<double>> q(H);
    long remaining = long(H) * c;
    for (int h = 0; h < H; ++h) {
      limit[h] = std::min(cap, heads[h].n);
      count[h] = std::min(safe, limit[h]);
      remaining -= count[h];
      std::vector<double> phi(res[h].phi.begin(), res[h].phi.end());
      if (!phi.empty()) q[h] = softmax(phi);
    }
    // k-way merge: repeatedly take the best next candidate among the heads.
    while (remaining > 0) {
      int best = -1;
      for (int h = 0; h < H; ++h) {
        if (count[h] >= limit[h]) continue;
        if (best < 0 || q[h][order[h][count[h]]] > q[best][order[best][count[best]]]) best = h;
      }
      if (best < 0) break;
      ++count[best];
      --remaining;
    }
    for (int h = 0; h < H; ++h) res[h].kept = first(order[h], count[h]);
  }
  return res;
}

// Random head: Gaussian keys and queries, queries scaled by `sharpness` (large = peaked
// attention). Every `dup_every`-th key (if > 0) repeats the previous key to create exact ties.
inline Head random_head(std::mt19937& rng, int num_obs, int group, int dim, int n, double sharpness,
                        int dup_every = 0) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Head h;
  h.num_obs = num_obs;
  h.group = group;
  h.dim = dim;
  h.n = n;
  h.k.resize(size_t(n) * dim);
  for (auto& v : h.k) v = normal(rng);
  if (dup_every > 0) {
    for (int j = dup_every; j < n; j += dup_every) {
      std::copy_n(h.k.begin() + (j - 1) * dim, dim, h.k.begin() + j * dim);
    }
  }
  h.q.resize(size_t(num_obs) * group * dim);
  for (auto& v : h.q) v = float(sharpness) * normal(rng);
  h.pos.resize(n);
  for (int j = 0; j < n; ++j) h.pos[j] = 5 + 2 * j;  // gaps: positions need not be contiguous
  return h;
}

}  // namespace hardkv::compress::ref

namespace hardkv::compress::ref {

// A head whose observation queries all point at the keys `targets` (scaled by sharpness), so its
// attention concentrates on those few candidates.
inline Head focused_head(std::mt19937& rng, int num_obs, int group, int dim, int n,
                         const std::vector<int>& targets, double sharpness) {
  Head h = random_head(rng, num_obs, group, dim, n, 1.0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int r = 0; r < num_obs * group; ++r) {
    const int t = targets[r % targets.size()];
    for (int c = 0; c < dim; ++c) {
      h.q[r * dim + c] = float(sharpness) * (h.k[t * dim + c] + 0.05f * normal(rng));
    }
  }
  return h;
}

}  // namespace hardkv::compress::ref
