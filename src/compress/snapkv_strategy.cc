// `snapkv`: SnapKV's score, the mean attention (already averaged over the GQA group) max-pooled
// over neighbouring candidates with kernel `pool_kernel` (7).
#include "compress/attention_math.h"
#include "compress/strategy.h"

namespace hardkv::compress {
namespace {

class SnapKVStrategy final : public Strategy {
 public:
  explicit SnapKVStrategy(int kernel) : kernel_(kernel) {}
  std::string_view name() const override { return "snapkv"; }
  HeadScores score(const HeadInput& in) const override {
    in.check();
    const std::vector<double> attn = true_attention(in);
    HeadScores out;
    out.score = log_normalize(max_pool(attn, kernel_));
    out.true_attn = to_float(attn);
    return out;
  }

 private:
  int kernel_;
};

}  // namespace

std::unique_ptr<Strategy> make_snapkv_strategy(const CompressionConfig& config) {
  return std::make_unique<SnapKVStrategy>(config.pool_kernel);
}

}  // namespace hardkv::compress
