// The data one compression event sees for one (sequence, layer, kv-head), and what a scoring
// strategy returns for it. Plain host arrays; the caller owns them.
#pragma once

#include <cstdint>
#include <vector>

namespace hardkv::compress {

// Candidates are the tokens the head currently retains minus the `sinks` first and the `window`
// most recent tokens (those are always kept and never scored). Candidate index i refers to
// keys[i], positions[i], ...; positions are strictly increasing, so index order is position order.
struct HeadInput {
  const float* q_obs = nullptr;        // [num_obs, group_size, head_dim] fp32: the last num_obs
                                       //   post-RoPE queries of the query heads of this kv-head
  const float* keys = nullptr;         // [num_candidates, head_dim] fp32, post-RoPE
  const int32_t* positions = nullptr;  // [num_candidates] int32 token positions, increasing
  const float* values = nullptr;       // [num_candidates, head_dim] fp32 or null (unused by the
                                       //   built-in strategies)
  const float* accumulated = nullptr;  // [num_candidates] fp32 or null: h2o's attention
                                       //   accumulated at earlier events (null = all zero)
  const float* true_attn = nullptr;    // [num_candidates] fp32 or null: the head's true attention
                                       //   (HeadScores::true_attn) computed elsewhere (device
                                       //   scoring); when set, q_obs is not read, and keys only
                                       //   by strategies that need_keys()
  const float* redundancy = nullptr;   // [num_candidates] fp32 or null: rkv's redundancy computed
                                       //   elsewhere (device scoring) with threshold
                                       //   redundancy_threshold; when set, rkv reads no keys
  double redundancy_threshold = 0.0;
  int num_obs = 0;
  int group_size = 0;  // query heads per kv-head (GQA group)
  int head_dim = 0;
  int num_candidates = 0;

  // Throws kInvalidArgument on a missing array, a non-positive size or unordered positions.
  // needs_keys: the strategy reads keys even when true_attn is given.
  void check(bool needs_keys = false) const;
};

struct HeadScores {
  // [num_candidates] log-domain score phi: higher is kept first; softmax(phi) is the strategy's
  // distribution over candidates (hard allocation calibrates softmax(phi / T)).
  std::vector<float> score;
  // [num_candidates] the head's true attention over candidates: for every observation row and
  // query head of the group, softmax over candidates of q.k/sqrt(head_dim); then the mean over
  // rows and group. Sums to 1.
  std::vector<float> true_attn;
  // [num_candidates] h2o only: the accumulated attention to store for the kept tokens (empty for
  // the other strategies).
  std::vector<float> accumulated;
};

}  // namespace hardkv::compress
