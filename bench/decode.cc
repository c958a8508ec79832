// Batch-1 decode benchmark on the CUDA backend: a random checkpoint of a named preset, a prompt
// of `ctx` tokens prefilled, then timed single-token steps (forward + logits download + host
// argmax). Prints tokens/s beside the roofline: (weight bytes + KV bytes read per token) / the
// measured device-to-device copy bandwidth.
//   bench_decode --preset qwen3-0.6b --ctx 512,4096 --steps 128 [--graph 0|1] [--dir /tmp/m]
//                [--batch B] [--json out.json] [--sample host|gpu] [--profile-step 0|1]
//                [--overlap 0|1] [--gap 0|1]
// --batch B decodes B sequences of `ctx` tokens each (own KV blocks) per step; tok/s counts B
// tokens per step and the roofline counts every sequence's K/V.
// --graph 1 captures one decode step as a CUDA graph and replays it for the timed steps; it also
// times the graph alone (replays back to back, events: "graph device ms/step").
// --sample host (default): row 0's F32 logits are downloaded and argmax'd on the host (the method
// of sessions 1-3); gpu: Backend::sample picks the greedy token on the device (what the engine
// does) and only the token comes back.
// --profile-step 1: one eager step between cudaProfilerStart/Stop (for ncu --profile-from-start
// off), after the timed steps.
// --overlap 1 (with --sample gpu): after the timed steps, the same number of steps run as the
// engine's overlapped steps do: step k + 1 is queued (its token a placeholder that the device
// fills from step k's sampling) before step k's token is read back ("overlapped ms/step").
// --gap 1 (with --graph 1): where a step's device time outside the graph goes: back-to-back
// replays of the graph alone, then + the greedy sampling kernel (row 0), + a metadata-sized copy
// up before the graph, + a copy of the token down (events around 50 of each).
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/sampling.h"
#include "model/model.h"
#include "model/random_checkpoint.h"
#include "model/weight_layout.h"

namespace {

using hardkv::Backend;
using hardkv::ForwardBatch;
using hardkv::KVCache;
using hardkv::Model;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// Device-to-device copy bandwidth in bytes/s, counting bytes read + written (median of 20).
double measure_copy_bandwidth() {
  const size_t bytes = size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc");
  check(cudaMalloc(&b, bytes), "cudaMalloc");
  check(cudaMemset(a, 1, bytes), "cudaMemset");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < 23; ++i) {
    cudaEventRecord(e0);
    check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "copy");
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (i >= 3) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  cudaFree(a);
  cudaFree(b);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return 2.0 * bytes / (ms[ms.size() / 2] * 1e-3);
}

// --gap: per-step device time of back-to-back replays of `graph` with, cumulatively, the greedy
// sampling kernel on row 0 of its logits, a 1 KiB metadata copy up before the graph, and the
// token's copy down (as a step of the engine queues them).
void time_step_parts(hardkv::cuda::CudaBackend& cuda, const hardkv::StepGraph& graph,
                     const float* logits, int64_t vocab) {
  cudaStream_t st = cuda.stream();
  int32_t *tok_dev = nullptr, *host = nullptr, *meta_dev = nullptr;
  check(cudaMalloc(reinterpret_cast<void**>(&tok_dev), 4), "cudaMalloc");
  check(cudaMalloc(reinterpret_cast<void**>(&meta_dev), 1024), "cudaMalloc");
  check(cudaHostAlloc(reinterpret_cast<void**>(&host), 2048, cudaHostAllocMapped), "cudaHostAlloc");
  const hardkv::cuda::SampleRowParams greedy{};
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  // 0: the graph; 1: + the sampling kernel, which also stores the token in mapped pinned memory
  // (the engine's step since session 8, less its metadata copy); 2: + the metadata copy up (the
  // engine's step); 3: + a copy of the token down (the engine's step before session 8).
  const char* names[] = {"graph", "+ sample kernel", "+ metadata copy up", "+ token copy down"};
  std::printf("  step parts (back-to-back, device ms/step):");
  for (int parts = 0; parts < 4; ++parts) {
    auto one = [&] {
      if (parts >= 2) {
        check(cudaMemcpyAsync(meta_dev, host + 256, 1024, cudaMemcpyHostToDevice, st), "h2d");
      }
      cuda.launch_graph(graph);
      if (parts >= 1) {
        hardkv::cuda::launch_sample(logits, 1, vocab, nullptr, tok_dev, nullptr, nullptr, st, 0,
                                    &greedy, parts >= 3 ? nullptr : host);
      }
      if (parts >= 3) check(cudaMemcpyAsync(host, tok_dev, 4, cudaMemcpyDeviceToHost, st), "d2h");
    };
    for (int i = 0; i < 5; ++i) one();
    constexpr int kReps = 50;
    cudaEventRecord(e0, st);
    for (int i = 0; i < kReps; ++i) one();
    cudaEventRecord(e1, st);
    check(cudaEventSynchronize(e1), "step parts");
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    std::printf(" %s %.4f;", names[parts], ms / kReps);
  }
  std::printf("\n");
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(tok_dev);
  cudaFree(meta_dev);
  cudaFreeHost(host);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoi(item));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "qwen3-0.6b", dir, json_path;
  std::vector<int> ctxs = {512, 4096};
  int steps = 128;
  int batch = 1;
  bool use_graph = true;
  bool gpu_sample = false;
  bool profile_step = false;
  bool overlap = false;
  bool gap = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--preset")
      preset = v;
    else if (k == "--ctx")
      ctxs = parse_list(v);
    else if (k == "--steps")
      steps = std::stoi(v);
    else if (k == "--dir")
      dir = v;
    else if (k == "--json")
      json_path = v;
    else if (k == "--graph")
      use_graph = v != "0";
    else if (k == "--batch")
      batch = std::stoi(v);
    else if (k == "--sample")
      gpu_sample = v == "gpu";
    else if (k == "--profile-step")
      profile_step = v != "0";
    else if (k == "--overlap")
      overlap = v != "0";
    else if (k == "--gap")
      gap = v != "0";
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (dir.empty()) dir = "/tmp/hardkv_bench_" + preset;
  try {
    const hardkv::ModelConfig config = hardkv::model_preset(preset);
    if (!std::filesystem::exists(dir + "/config.json")) {
      hardkv::RandomCheckpointOptions opts;
      const auto t0 = std::chrono::steady_clock::now();
      hardkv::write_random_checkpoint(config, dir, opts);
      std::printf("wrote random %s checkpoint to %s in %.1f s\n", preset.c_str(), dir.c_str(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double bw = measure_copy_bandwidth();
    auto be = hardkv::make_cuda_backend(0);
    auto model = Model::load(dir, *be);
    const auto& c = model->config();
    double weight_bytes = 0;
    for (const auto& spec : hardkv::hf_weight_specs(c)) {
      weight_bytes += 2.0 * hardkv::shape_numel(spec.shape);  // bf16 on the device
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("device %s, d2d copy %.0f GB/s (read+write), weights %.3f GB\n", prop.name,
                bw / 1e9, weight_bytes / 1e9);
    nlohmann::json results = nlohmann::json::array();
    const int block_size = 16;
    for (int ctx : ctxs) {
      const int max_len = ctx + steps + 16 + (overlap ? steps + 8 : 0);
      const int blocks_per_seq = (max_len + block_size - 1) / block_size;
      KVCache kv = model->allocate_kv_cache(blocks_per_seq * batch, block_size);
      std::vector<int32_t> tokens;
      for (int i = 0; i < ctx; ++i) tokens.push_back((i * 7919 + 13) % 256);
      // Sequences [first, first + count) (all holding `tokens`), sequence s in blocks
      // [s * blocks_per_seq, ...).
      auto make_seqs = [&](int new_tokens, int first, int count) {
        ForwardBatch fb;
        fb.query_indptr = {0};
        fb.block_indptr = {0};
        const int len = static_cast<int>(tokens.size());
        for (int s = first; s < first + count; ++s) {
          const int base = s * blocks_per_seq * block_size;
          for (int p = len - new_tokens; p < len; ++p) {
            fb.token_ids.push_back(tokens[p]);
            fb.positions.push_back(p);
            fb.slot_mapping.push_back(base + p);
          }
          fb.query_indptr.push_back(static_cast<int32_t>(fb.token_ids.size()));
          fb.kv_lens.push_back(len);
          // Every row of the block table has the full width (as the engine pads graph steps), so
          // the table does not grow as sequences cross blocks (a growth past its staging slot
          // makes a graph step capture anew).
          for (int b = 0; b < blocks_per_seq; ++b) {
            fb.block_indices.push_back(s * blocks_per_seq + b);
          }
          fb.block_indptr.push_back(static_cast<int32_t>(fb.block_indices.size()));
          fb.logits_indices.push_back(fb.query_indptr.back() - 1);
        }
        return fb;
      };
      auto make = [&](int new_tokens) { return make_seqs(new_tokens, 0, batch); };
      auto* cuda = dynamic_cast<hardkv::cuda::CudaBackend*>(be.get());
      std::unique_ptr<hardkv::StepGraph> graph;
      int recaptures = 0;
      // Host part of the last step: from its start until its work is queued (the device is idle
      // for most of it, the previous step having been waited for); capture_s: the capture step.
      double last_host_s = 0, capture_s = 0;
      const hardkv::SampleRows greedy_row0 = hardkv::SampleRows::greedy(1);
      const float* row0_of_last_step = nullptr;  // F32 [vocab]: the graph's logits, row 0
      // Queues a step's forward (placeholder: every new token is -1, the latest sample's row 0).
      auto forward = [&](int new_tokens, bool graphed, bool placeholder) {
        ForwardBatch fb = make(new_tokens);
        if (placeholder) std::fill(fb.token_ids.begin(), fb.token_ids.end(), -1);
        hardkv::Tensor logits;
        if (!graphed) {
          logits = model->forward(fb, kv);
        } else if (!graph) {
          cuda->begin_capture(max_len);
          logits = model->forward(fb, kv);
          graph = cuda->end_capture();
          cuda->launch_graph(*graph);
        } else {
          cuda->begin_replay(*graph);
          logits = model->forward(fb, kv);
          if (!cuda->end_replay(*graph)) {  // metadata crossed a size bucket: capture anew
            ++recaptures;
            cuda->begin_capture(max_len);
            logits = model->forward(fb, kv);
            graph = cuda->end_capture();
            cuda->launch_graph(*graph);
          }
        }
        // Row 0 only: downloading [batch, vocab] would dominate a batched step.
        return hardkv::Tensor::view(logits.data(), logits.dtype(), {1, c.vocab_size},
                                    logits.device());
      };
      auto step = [&](int new_tokens, bool graphed = false) {
        const auto h0 = std::chrono::steady_clock::now();
        const bool capturing = graphed && !graph;
        const hardkv::Tensor row0 = forward(new_tokens, graphed, false);
        row0_of_last_step = row0.data_as<const float>();
        last_host_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - h0).count();
        if (capturing) capture_s = last_host_s;
        int32_t next = 0;
        if (gpu_sample) {
          next = be->sample(row0, greedy_row0).tokens[0] % 256;
        } else {
          hardkv::Tensor h = be->download(row0);
          const float* l = h.data_as<float>();
          next = static_cast<int32_t>(std::max_element(l, l + c.vocab_size) - l) % 256;
        }
        be->release_scratch();
        tokens.push_back(next);
      };
      const auto p0 = std::chrono::steady_clock::now();
      if (batch == 1) {
        step(ctx);
      } else {
        for (int s = 0; s < batch; ++s) {  // one prefill per sequence
          model->forward(make_seqs(ctx, s, 1), kv);
          be->release_scratch();
        }
        be->synchronize();
        tokens.push_back(1);
      }
      const double prefill_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
      for (int i = 0; i < 8; ++i) step(1, use_graph && i >= 4);  // warm-up, then capture
      std::vector<double> per, host_part;
      for (int i = 0; i < steps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        step(1, use_graph);
        per.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        host_part.push_back(last_host_s);
      }
      std::sort(host_part.begin(), host_part.end());
      // Overlapped steps: queue step i + 1, then wait for step i's token.
      std::vector<double> overlapped;
      if (overlap && gpu_sample) {
        int64_t pending = -1;
        for (int i = 0; i <= steps; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          const int64_t ticket = i < steps ? be->sample_async(forward(1, use_graph, pending >= 0),
                                                              greedy_row0)
                                           : -1;
          be->release_scratch();
          tokens.push_back(0);  // the next step's position; its id is a placeholder
          if (pending >= 0) be->sample_wait(pending);
          pending = ticket;
          if (i > 0) {
            overlapped.push_back(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          }
        }
        std::sort(overlapped.begin(), overlapped.end());
      }
      // The graph alone: replays back to back (same metadata), timed with events.
      double graph_device_ms = 0;
      if (use_graph && graph) {
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        constexpr int kReplays = 50;
        for (int i = 0; i < 5; ++i) cuda->launch_graph(*graph);
        cudaEventRecord(e0, cuda->stream());
        for (int i = 0; i < kReplays; ++i) cuda->launch_graph(*graph);
        cudaEventRecord(e1, cuda->stream());
        check(cudaEventSynchronize(e1), "graph replays");
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        graph_device_ms = ms / kReplays;
        if (gap) time_step_parts(*cuda, *graph, row0_of_last_step, c.vocab_size);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
      }
      if (profile_step) {
        be->synchronize();
        cudaProfilerStart();
        step(1);
        be->synchronize();
        cudaProfilerStop();
      }
      // Per-op device time of eager decode steps (events + a sync around every op).
      nlohmann::json breakdown = nlohmann::json::array();
      if (!use_graph) {
        constexpr int kProfSteps = 16;
        cuda->clear_op_times();
        cuda->set_profiling(true);
        for (int i = 0; i < kProfSteps; ++i) step(1);
        cuda->set_profiling(false);
        std::vector<std::pair<std::string, hardkv::cuda::CudaBackend::OpTime>> ops(
            cuda->op_times().begin(), cuda->op_times().end());
        std::sort(ops.begin(), ops.end(),
                  [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
        double total = 0;
        for (const auto& [name, t] : ops) total += t.ms / kProfSteps;
        std::printf("  per-op device time per decode step (sum %.3f ms):\n", total);
        for (const auto& [name, t] : ops) {
          const double ms = t.ms / kProfSteps;
          std::printf("    %-36s %5.1f calls %8.3f ms %5.1f%%  %6.2f us/call\n", name.c_str(),
                      double(t.calls) / kProfSteps, ms, 100 * ms / total, 1e3 * t.ms / t.calls);
          breakdown.push_back({{"op", name},
                               {"calls_per_step", double(t.calls) / kProfSteps},
                               {"ms_per_step", ms}});
        }
      }
      std::vector<double> sorted = per;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted[sorted.size() / 2];
      double mean = 0;
      for (double t : per) mean += t;
      mean /= per.size();
      const double mid_ctx = ctx + 8 + steps / 2.0;
      const double kv_bytes =
          2.0 * c.num_layers * c.num_kv_heads * c.head_dim * 2.0 * mid_ctx * batch;
      // The roofline: bytes read per token / HBM bandwidth, taken as the copy rate
      // (read + write bytes), which is what an H100 sustains for streaming reads (~3.0 TB/s).
      const double floor_read_s = (weight_bytes + kv_bytes) / bw;
      std::printf(
          "%s%s batch %d ctx %5d: %.3f ms/step median (%.3f mean) = %.1f tok/s; floor %.3f ms -> "
          "%.0f%% of roofline; prefill %d tokens %.1f ms; sample %s\n",
          preset.c_str(), use_graph ? " (graph)" : "", batch, ctx, median * 1e3, mean * 1e3,
          batch / median, floor_read_s * 1e3, 100 * floor_read_s / median, ctx, prefill_s * 1e3,
          gpu_sample ? "gpu" : "host");
      double overlapped_ms = 0;
      if (!overlapped.empty()) {
        overlapped_ms = overlapped[overlapped.size() / 2] * 1e3;
        std::printf("  overlapped steps %.3f ms/step median = %.1f tok/s -> %.0f%% of roofline\n",
                    overlapped_ms, batch / (overlapped_ms * 1e-3),
                    100 * floor_read_s / (overlapped_ms * 1e-3));
      }
      if (graph_device_ms > 0) {
        std::printf("  graph device time %.3f ms/step (replays back to back) -> %.0f%% of roofline\n",
                    graph_device_ms, 100 * floor_read_s / (graph_device_ms * 1e-3));
      }
      std::printf("  host part of a step (until its work is queued) %.3f ms median; capture step "
                  "%.3f ms; %d recaptures after the first capture\n",
                  host_part[host_part.size() / 2] * 1e3, capture_s * 1e3, recaptures);
      results.push_back({{"preset", preset},
                         {"cuda_graph", use_graph},
                         {"ctx", ctx},
                         {"steps", steps},
                         {"median_ms", median * 1e3},
                         {"mean_ms", mean * 1e3},
                         {"batch", batch},
                         {"tok_s", batch / median},
                         {"weight_bytes", weight_bytes},
                         {"kv_bytes_per_token", kv_bytes},
                         {"copy_bw_gbs", bw / 1e9},
                         {"floor_ms_read_eq_copy_bw", floor_read_s * 1e3},
                         {"roofline_fraction", floor_read_s / median},
                         {"prefill_ms", prefill_s * 1e3},
                         {"graph_recaptures", recaptures},
                         {"graph_device_ms", graph_device_ms},
                         {"overlapped_ms", overlapped_ms},
                         {"host_part_ms", host_part[host_part.size() / 2] * 1e3},
                         {"capture_ms", capture_s * 1e3},
                         {"sample", gpu_sample ? "gpu" : "host"},
                         {"op_breakdown", breakdown},
                         {"device", prop.name}});
    }
    if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
  } catch (const hardkv::Error& e) {
    std::fprintf(stderr, "error: %s (%s)\n", e.what(), e.where().c_str());
    return 1;
  }
  return 0;
}
