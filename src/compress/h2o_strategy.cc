// `h2o` (Heavy-Hitter Oracle): attention accumulated over every query seen so far. At an event
// the accumulation grows by the attention of the observation rows: acc + num_obs * true_attn
// (each row's attention is the mean over the GQA group). With obs_window == interval every query
// is counted exactly once.
#include <cmath>

#include "compress/attention_math.h"
#include "compress/strategy.h"
#include "core/error.h"

namespace hardkv::compress {
namespace {

class H2OStrategy final : public Strategy {
 public:
  std::string_view name() const override { return "h2o"; }
  HeadScores score(const HeadInput& in) const override {
    in.check();
    const std::vector<double> attn = true_attention(in);
    std::vector<double> acc(attn.size());
    for (size_t j = 0; j < attn.size(); ++j) {
      const double before = in.accumulated != nullptr ? in.accumulated[j] : 0.0;
      HARDKV_CHECK(before >= 0.0 && std::isfinite(before), kInvalidArgument,
                   "h2o accumulated attention of candidate {} is {}, must be finite and >= 0", j,
                   before);
      acc[j] = before + static_cast<double>(in.num_obs) * attn[j];
    }
    HeadScores out;
    out.score = log_normalize(acc);
    out.true_attn = to_float(attn);
    out.accumulated = to_float(acc);
    return out;
  }
};

}  // namespace

std::unique_ptr<Strategy> make_h2o_strategy(const CompressionConfig&) {
  return std::make_unique<H2OStrategy>();
}

}  // namespace hardkv::compress
