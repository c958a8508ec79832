// Helpers shared by the compress tests: views of reference heads as HeadInput, and the configs.
#pragma once

#include <vector>

#include "compress/compression_config.h"
#include "compress/head_input.h"
#include "reference_selection.h"

namespace hardkv::compress::testing {

inline HeadInput view(const ref::Head& h) {
  HeadInput in;
  in.q_obs = h.q.data();
  in.keys = h.k.data();
  in.positions = h.pos.data();
  in.accumulated = h.acc.empty() ? nullptr : h.acc.data();
  in.num_obs = h.num_obs;
  in.group_size = h.group;
  in.head_dim = h.dim;
  in.num_candidates = h.n;
  return in;
}

inline std::vector<HeadInput> views(const std::vector<ref::Head>& heads) {
  std::vector<HeadInput> out;
  for (const ref::Head& h : heads) out.push_back(view(h));
  return out;
}

// Small budgets so that random layers of ~120 candidates exercise floor and cap:
// candidate floor 24 - 4 - 2 = 18, cap 40 - 4 - 2 = 34.
inline CompressionConfig small_config(const std::string& strategy, const std::string& allocation) {
  CompressionConfig c;
  c.strategy = strategy;
  c.allocation = allocation;
  c.budget = 24;
  c.upper_budget = 40;
  c.window = 4;
  c.sinks = 2;
  c.p_attn = 0.9;
  c.interval = 16;
  c.obs_window = 8;
  return c;
}

inline ref::Params params(const CompressionConfig& c) {
  ref::Params p;
  p.strategy = c.strategy;
  p.allocation = c.allocation;
  p.budget = c.budget;
  p.upper = c.upper_budget;
  p.window = c.window;
  p.sinks = c.sinks;
  p.p = c.p_attn;
  p.kernel = c.pool_kernel;
  p.lambda = c.rkv_lambda;
  p.threshold = c.rkv_threshold;
  p.safeguard = c.adakv_safeguard;
  p.beta = c.pyramid_beta;
  return p;
}

}  // namespace hardkv::compress::testing
