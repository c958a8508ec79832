// CompressionStats (see compression_stats.h).
#include "compress/compression_stats.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hardkv::compress {

CompressionStats::CompressionStats(int num_layers, int num_kv_heads)
    : num_layers_(num_layers), num_kv_heads_(num_kv_heads) {
  HARDKV_CHECK(num_layers >= 1 && num_kv_heads >= 1, kInvalidArgument,
               "statistics need num_layers and num_kv_heads >= 1 (got {}, {})", num_layers,
               num_kv_heads);
  const size_t cells = static_cast<size_t>(num_layers) * num_kv_heads;
  events_.assign(num_layers, 0);
  kept_sum_.assign(cells, 0.0);
  last_kept_.assign(cells, 0);
  kept_min_.assign(cells, std::numeric_limits<int32_t>::max());
  kept_max_.assign(cells, 0);
  target_sum_.assign(cells, 0.0);
  temperature_sum_.assign(cells, 0.0);
  last_temperature_.assign(cells, 0.0);
  true_mass_sum_.assign(cells, 0.0);
}

size_t CompressionStats::cell(int layer_idx, int head_idx) const {
  HARDKV_CHECK(
      layer_idx >= 0 && layer_idx < num_layers_ && head_idx >= 0 && head_idx < num_kv_heads_,
      kInvalidArgument, "statistics cell (layer {}, head {}) is outside [{}, {}]", layer_idx,
      head_idx, num_layers_, num_kv_heads_);
  return static_cast<size_t>(layer_idx) * num_kv_heads_ + head_idx;
}

void CompressionStats::record(int layer_idx, const std::vector<HeadSelection>& heads) {
  HARDKV_CHECK(static_cast<int>(heads.size()) == num_kv_heads_, kInvalidArgument,
               "statistics expect {} kv-heads per layer, got {}", num_kv_heads_, heads.size());
  events_[cell(layer_idx, 0) / num_kv_heads_] += 1;
  for (int h = 0; h < num_kv_heads_; ++h) {
    const size_t c = cell(layer_idx, h);
    const HeadSelection& s = heads[h];
    const int32_t kept = static_cast<int32_t>(s.kept.size());
    kept_sum_[c] += kept;
    last_kept_[c] = kept;
    kept_min_[c] = std::min(kept_min_[c], kept);
    kept_max_[c] = std::max(kept_max_[c], kept);
    target_sum_[c] += s.target;
    temperature_sum_[c] += s.temperature;
    last_temperature_[c] = s.temperature;
    true_mass_sum_[c] += s.true_mass;
  }
}

double CompressionStats::mean_kept(int layer_idx, int head_idx) const {
  const int64_t n = events_[cell(layer_idx, head_idx) / num_kv_heads_];
  return n == 0 ? 0.0 : kept_sum_[cell(layer_idx, head_idx)] / n;
}

double CompressionStats::mean_temperature(int layer_idx, int head_idx) const {
  const int64_t n = events_[cell(layer_idx, head_idx) / num_kv_heads_];
  return n == 0 ? 0.0 : temperature_sum_[cell(layer_idx, head_idx)] / n;
}

nlohmann::json CompressionStats::to_json() const {
  // [L][H] matrix of f(cell, events of the layer).
  auto matrix = [&](auto f) {
    nlohmann::json rows = nlohmann::json::array();
    for (int l = 0; l < num_layers_; ++l) {
      nlohmann::json row = nlohmann::json::array();
      for (int h = 0; h < num_kv_heads_; ++h) {
        row.push_back(f(static_cast<size_t>(l) * num_kv_heads_ + h, events_[l]));
      }
      rows.push_back(std::move(row));
    }
    return rows;
  };
  auto mean = [](const std::vector<double>& sum) {
    return [&sum](size_t c, int64_t n) { return n == 0 ? 0.0 : sum[c] / n; };
  };
  nlohmann::json j;
  j["num_layers"] = num_layers_;
  j["num_kv_heads"] = num_kv_heads_;
  j["events"] = events_;
  j["kept_mean"] = matrix(mean(kept_sum_));
  j["kept_last"] = matrix([&](size_t c, int64_t) { return last_kept_[c]; });
  j["kept_min"] = matrix([&](size_t c, int64_t n) { return n == 0 ? 0 : kept_min_[c]; });
  j["kept_max"] = matrix([&](size_t c, int64_t) { return kept_max_[c]; });
  j["target_mean"] = matrix(mean(target_sum_));
  j["temperature_mean"] = matrix(mean(temperature_sum_));
  j["temperature_last"] = matrix([&](size_t c, int64_t) { return last_temperature_[c]; });
  j["true_mass_mean"] = matrix(mean(true_mass_sum_));
  return j;
}

}  // namespace hardkv::compress
