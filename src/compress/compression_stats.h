// CompressionStats: per (layer, kv-head) kept counts, targets, temperatures and captured mass over
// compression events, written as JSON for --stats-out and the layer x head heatmap script.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "compress/allocation.h"

namespace hardkv::compress {

class CompressionStats {
 public:
  CompressionStats(int num_layers, int num_kv_heads);

  // Adds one event of one layer (of any sequence); heads: [num_kv_heads].
  void record(int layer_idx, const std::vector<HeadSelection>& heads);

  int num_layers() const { return num_layers_; }
  int num_kv_heads() const { return num_kv_heads_; }
  int64_t events(int layer_idx) const { return events_[layer_idx]; }
  // Means over the recorded events of (layer, head); 0 before any event.
  double mean_kept(int layer_idx, int head_idx) const;
  double mean_temperature(int layer_idx, int head_idx) const;
  int32_t last_kept(int layer_idx, int head_idx) const {
    return last_kept_[cell(layer_idx, head_idx)];
  }

  // {"num_layers", "num_kv_heads", "events": [L], and [L][H] matrices "kept_mean", "kept_last",
  //  "kept_min", "kept_max", "target_mean", "temperature_mean", "temperature_last",
  //  "true_mass_mean"}.
  nlohmann::json to_json() const;

 private:
  size_t cell(int layer_idx, int head_idx) const;

  int num_layers_;
  int num_kv_heads_;
  std::vector<int64_t> events_;           // [L]
  std::vector<double> kept_sum_;          // [L, H]
  std::vector<int32_t> last_kept_;        // [L, H]
  std::vector<int32_t> kept_min_;         // [L, H]
  std::vector<int32_t> kept_max_;         // [L, H]
  std::vector<double> target_sum_;        // [L, H]
  std::vector<double> temperature_sum_;   // [L, H]
  std::vector<double> last_temperature_;  // [L, H]
  std::vector<double> true_mass_sum_;     // [L, H]
};

}  // namespace hardkv::compress
