// `streaming` (StreamingLLM): keeps only sinks and window, so it scores nothing; every candidate
// gets the same score and every allocation keeps none.
#include "compress/attention_math.h"
#include "compress/strategy.h"

namespace hardkv::compress {
namespace {

class StreamingStrategy final : public Strategy {
 public:
  std::string_view name() const override { return "streaming"; }
  bool keeps_candidates() const override { return false; }
  HeadScores score(const HeadInput& in) const override {
    in.check();
    HeadScores out;
    out.score.assign(in.num_candidates, 0.0f);
    // The true attention still feeds the statistics (mass lost by keeping nothing).
    out.true_attn = to_float(true_attention(in));
    return out;
  }
};

}  // namespace

std::unique_ptr<Strategy> make_streaming_strategy(const CompressionConfig&) {
  return std::make_unique<StreamingStrategy>();
}

}  // namespace hardkv::compress
