// CompressionConfig: the validated, immutable settings of head-adaptive KV compression (HARD-KV):
// which strategy scores candidates, which allocation decides how many each head keeps, and the
// budgets. Definitions of every field: docs/COMPRESSION.md.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace hardkv::compress {

struct CompressionConfig {
  // --- what to keep ---------------------------------------------------------------------------
  std::string strategy = "rkv";     // scoring: attn | snapkv | rkv | streaming | h2o
  std::string allocation = "hard";  // per-head counts: uniform | hard | adakv | pyramid
  // Tokens a head keeps, sinks and window included (uniform keeps exactly this many once the
  // context is longer). The paper's "budget 1024" row (1024 selected + 128-token window) is
  // budget = 1152 here.
  int budget = 1024;
  int upper_budget = 2048;  // per-head cap, sinks and window included (hard, adakv, pyramid)
  double p_attn = 0.9;      // hard: attention mass a head's kept set must hold, in (0, 1]
  int window = 128;         // most recent tokens, always kept
  int sinks = 1;            // first tokens, always kept (the reference code keeps 1)

  // --- when to compress (read by the HeadwiseKV manager, not by the selection) ---------------
  int interval = 128;    // decode steps between compression events
  int obs_window = 128;  // post-RoPE queries per (sequence, layer) kept for scoring
  int page_size = 16;    // tokens per head-page in the condensed tier (provisional default)
  double rewrite_threshold =
      0.5;  // masked fraction of a head's stored tokens that triggers a rewrite
  bool rewrite_every_time = false;  // rewrite at every event (the reference code's behaviour)

  // --- strategy / allocation parameters ---------------------------------------------------------
  int pool_kernel = 7;           // snapkv and rkv: max-pool width over candidate order (odd)
  double rkv_lambda = 0.1;       // rkv: weight of importance vs redundancy (R-KV paper: 0.1)
  double rkv_threshold = 0.5;    // rkv: cosine similarity above which two keys are near-duplicates
  double adakv_safeguard = 0.2;  // adakv: share of the per-head quota every head is guaranteed
  int pyramid_beta = 20;         // pyramid: last layer's quota = first layer's quota / ~beta

  // Throws kInvalidArgument naming the field, the value and what would be accepted.
  void validate() const;

  // Candidate quota of uniform allocation and hard's floor: budget - window - sinks.
  int candidate_budget() const { return budget - window - sinks; }
  // Per-head candidate cap of every allocation: upper_budget - window - sinks.
  int candidate_cap() const { return upper_budget - window - sinks; }

  nlohmann::json to_json() const;
};

}  // namespace hardkv::compress
