// Compressor: one compression event for one layer of one sequence = strategy (scores every
// kv-head's candidates) x allocation (how many each keeps). Built once from a validated config.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "compress/allocation.h"
#include "compress/compression_config.h"
#include "compress/head_input.h"
#include "compress/strategy.h"

namespace hardkv::compress {

struct LayerCompression {
  std::vector<HeadSelection> heads;  // [num_kv_heads] kept candidate indices + statistics
  // [num_kv_heads][num_kept] h2o only: the accumulated attention of each kept candidate, in the
  // order of heads[h].kept, for the caller to pass back at the next event; empty otherwise.
  std::vector<std::vector<float>> accumulated;
};

class Compressor {
 public:
  // Validates config (kInvalidArgument on an impossible combination). num_layers: the model's.
  Compressor(CompressionConfig config, int num_layers);

  // heads: [num_kv_heads] inputs of one layer of one sequence. Candidates exclude sinks and
  // window; the result lists, per head, which candidates to keep.
  LayerCompression compress_layer(int layer_idx, std::span<const HeadInput> heads) const;

  const CompressionConfig& config() const { return config_; }
  const Strategy& strategy() const { return *strategy_; }
  const Allocation& allocation() const { return *allocation_; }

 private:
  CompressionConfig config_;
  int num_layers_;
  std::unique_ptr<Strategy> strategy_;
  std::unique_ptr<Allocation> allocation_;
};

}  // namespace hardkv::compress
