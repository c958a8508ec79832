// Allocation: how many candidates each kv-head of a layer keeps, and which (uniform, hard, adakv,
// pyramid). Every allocation keeps, per head, a prefix of that head's rank order (rank_order.h),
// so only the counts differ between allocations. Narrow interface + registry by name.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compress/compression_config.h"
#include "compress/head_input.h"

namespace hardkv::compress {

// The scored candidates of every kv-head of one layer of one sequence.
struct LayerScores {
  int layer_idx = 0;
  int num_layers = 1;
  std::span<const HeadScores> heads;  // [num_kv_heads]
};

// What one kv-head keeps at a compression event, and why.
struct HeadSelection {
  std::vector<int32_t> kept;  // [num_kept] candidate indices, increasing (= position order)
  int32_t target = 0;         // the allocation's count before clamping to the candidates at hand:
                              //   hard: n*_h; uniform/pyramid: the quota; adakv: the head's share
  double temperature = 1.0;   // hard: calibrated T_h; others 1
  double true_mass = 0.0;     // sum of true_attn over kept
  double calibrated_mass = 0.0;  // sum of softmax(score / temperature) over kept
};

// Contract: allocate() is a pure function of its input and the config given at construction; it
// returns one HeadSelection per head of the input, each a prefix of the head's rank order, never
// more than min(num_candidates, candidate_cap) tokens.
class Allocation {
 public:
  virtual ~Allocation() = default;
  virtual std::string_view name() const = 0;
  virtual std::vector<HeadSelection> allocate(const LayerScores& layer) const = 0;
};

std::unique_ptr<Allocation> make_allocation(const CompressionConfig& config);
std::vector<std::string> allocation_names();

// Factories of the built-in allocations (listed in allocation_registry.cc).
std::unique_ptr<Allocation> make_uniform_allocation(const CompressionConfig& config);
std::unique_ptr<Allocation> make_hard_allocation(const CompressionConfig& config);
std::unique_ptr<Allocation> make_adakv_allocation(const CompressionConfig& config);
std::unique_ptr<Allocation> make_pyramid_allocation(const CompressionConfig& config);

}  // namespace hardkv::compress
