// `attn`: the head's mean attention over candidates (the paper's vanilla top-p score).
#include "compress/attention_math.h"
#include "compress/strategy.h"

namespace hardkv::compress {
namespace {

class AttnStrategy final : public Strategy {
 public:
  std::string_view name() const override { return "attn"; }
  HeadScores score(const HeadInput& in) const override {
    in.check();
    const std::vector<double> attn = true_attention(in);
    HeadScores out;
    out.score = log_normalize(attn);
    out.true_attn = to_float(attn);
    return out;
  }
};

}  // namespace

std::unique_ptr<Strategy> make_attn_strategy(const CompressionConfig&) {
  return std::make_unique<AttnStrategy>();
}

}  // namespace hardkv::compress
