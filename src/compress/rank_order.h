// Rank order and top-p arithmetic shared by the allocations: the deterministic order in which a
// head keeps candidates, top-p sizes, and the per-head temperature calibration of hard allocation.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/allocation.h"

namespace hardkv::compress {

// Bracket of the temperature search (log-space bisection).
inline constexpr double kMinTemperature = 1e-4;
inline constexpr double kMaxTemperature = 1e4;

// [n] candidate indices by score descending; equal scores: lower index (= lower position) first.
// Throws kInvalidArgument on a NaN score.
std::vector<int32_t> rank_order(const std::vector<float>& score);

// Smallest k such that the k largest entries of `dist` hold >= p of its total (n if never).
int32_t top_p_size(const std::vector<float>& dist, double p);

// Mass of softmax(score / T) on order[0..k), relative to the total (exactly 1 for k == n).
double prefix_mass(const std::vector<float>& score, const std::vector<int32_t>& order, int32_t k,
                   double temperature);

// Smallest k with prefix_mass(score, order, k, T) >= p (n if never).
int32_t top_p_count(const std::vector<float>& score, const std::vector<int32_t>& order,
                    double temperature, double p);

// The largest T in [kMinTemperature, kMaxTemperature] with prefix_mass(.., k, T) >= p: the
// temperature at which softmax(score / T) puts p on its top k (the mass falls as T grows). Returns
// kMinTemperature when even that puts less than p on the top k (ties at the boundary), and
// kMaxTemperature when even that puts at least p there (k >= p * n, nearly uniform).
double calibrate_temperature(const std::vector<float>& score, const std::vector<int32_t>& order,
                             int32_t k, double p);

// The selection of the first `count` candidates of `order`, with its statistics.
HeadSelection select_prefix(const HeadScores& head, const std::vector<int32_t>& order,
                            int32_t count, int32_t target, double temperature);

}  // namespace hardkv::compress
