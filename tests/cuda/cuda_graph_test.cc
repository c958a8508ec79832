// CUDA-graph decode: a decode step captured once and replayed (new tokens, positions, slots and
// KV lengths each step) must give the logits of the same steps run eagerly.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/model.h"
#include "model/random_checkpoint.h"

namespace hardkv {
namespace {

TEST(CudaGraphTest, ReplayedDecodeMatchesEager) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: CUDA graph test skipped";
  const auto dir = std::filesystem::temp_directory_path() / "hardkv_cuda_graph_tiny";
  write_random_checkpoint(model_preset("tiny"), dir.string(), RandomCheckpointOptions{});
  auto be = make_cuda_backend(0);
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(be.get());
  ASSERT_NE(cuda, nullptr);
  auto model = Model::load(dir.string(), *be);
  const int64_t vocab = model->config().vocab_size;
  constexpr int kBlock = 16, kBlocks = 8, kPrompt = 21, kSteps = 40;

  // Runs prefill + kSteps decode steps with tokens fed from `feed`; returns every step's logits.
  auto run = [&](bool graphed, const std::vector<int32_t>& feed) {
    KVCache kv = model->allocate_kv_cache(kBlocks, kBlock);
    std::vector<std::vector<float>> all;
    std::unique_ptr<StepGraph> graph;
    int recaptures = 0;
    for (int step = 0; step <= kSteps; ++step) {
      const int len = kPrompt + step, n_new = step == 0 ? kPrompt : 1;
      ForwardBatch fb;
      for (int p = len - n_new; p < len; ++p) {
        fb.token_ids.push_back(feed[p]);
        fb.positions.push_back(p);
        fb.slot_mapping.push_back((kBlocks - 1 - p / kBlock) * kBlock + p % kBlock);
      }
      fb.query_indptr = {0, n_new};
      fb.kv_lens = {len};
      const int nb = (len + kBlock - 1) / kBlock;
      fb.block_indptr = {0, nb};
      for (int b = 0; b < nb; ++b) fb.block_indices.push_back(kBlocks - 1 - b);
      fb.logits_indices = {n_new - 1};
      Tensor logits;
      if (!graphed || step == 0) {
        logits = model->forward(fb, kv);
      } else if (!graph) {
        cuda->begin_capture(kBlocks * kBlock);
        logits = model->forward(fb, kv);
        graph = cuda->end_capture();
        cuda->launch_graph(*graph);
      } else {
        cuda->begin_replay(*graph);
        logits = model->forward(fb, kv);
        if (!cuda->end_replay(*graph)) {  // the block table left its 64-entry slot
          ++recaptures;
          cuda->begin_capture(kBlocks * kBlock);
          logits = model->forward(fb, kv);
          graph = cuda->end_capture();
          cuda->launch_graph(*graph);
        }
      }
      Tensor h = be->download(logits);
      all.emplace_back(h.data_as<float>(), h.data_as<float>() + vocab);
      be->release_scratch();
    }
    // 40 steps of one sequence stay inside one block-table slot: every step after the capture
    // must have replayed.
    if (graphed) {
      EXPECT_EQ(recaptures, 0);
    }
    return all;
  };
  std::vector<int32_t> feed(kPrompt + kSteps + 1);
  for (size_t i = 0; i < feed.size(); ++i) feed[i] = static_cast<int32_t>((i * 53 + 7) % 256);
  const auto eager = run(false, feed);
  const auto graphed = run(true, feed);
  for (int s = 0; s <= kSteps; ++s) {
    double err = 0, norm = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      err += (eager[s][i] - graphed[s][i]) * (eager[s][i] - graphed[s][i]);
      norm += eager[s][i] * eager[s][i];
    }
    // Same kernels; only the split-KV plan differs (bounded by the graph's KV bound).
    EXPECT_LT(err / norm, 1e-5) << "step " << s;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hardkv
