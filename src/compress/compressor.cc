// Compressor: strategy x allocation for one layer (see compressor.h).
#include "compress/compressor.h"

#include "compress/rank_order.h"
#include "core/error.h"

namespace hardkv::compress {

Compressor::Compressor(CompressionConfig config, int num_layers)
    : config_(std::move(config)), num_layers_(num_layers) {
  config_.validate();
  HARDKV_CHECK(num_layers_ >= 1, kInvalidArgument, "compressor needs num_layers >= 1, got {}",
               num_layers_);
  strategy_ = make_strategy(config_);
  allocation_ = make_allocation(config_);
}

LayerCompression Compressor::compress_layer(int layer_idx, std::span<const HeadInput> heads) const {
  HARDKV_CHECK(layer_idx >= 0 && layer_idx < num_layers_, kInvalidArgument,
               "layer {} is out of range for a model of {} layers", layer_idx, num_layers_);
  std::vector<HeadScores> scores;
  scores.reserve(heads.size());
  for (const HeadInput& head : heads) scores.push_back(strategy_->score(head));

  LayerCompression out;
  if (strategy_->keeps_candidates()) {
    out.heads = allocation_->allocate(LayerScores{layer_idx, num_layers_, scores});
  } else {
    for (const HeadScores& s : scores) {
      out.heads.push_back(select_prefix(s, rank_order(s.score), 0, 0, 1.0));
    }
  }
  HARDKV_ASSERT(out.heads.size() == heads.size());
  out.accumulated.resize(heads.size());
  for (size_t h = 0; h < heads.size(); ++h) {
    if (scores[h].accumulated.empty()) continue;
    for (int32_t j : out.heads[h].kept) out.accumulated[h].push_back(scores[h].accumulated[j]);
  }
  return out;
}

}  // namespace hardkv::compress
