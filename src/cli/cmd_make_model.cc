// `hardkv make-model`: writes a random-weight HF checkpoint (config, safetensors, tokenizer) of a
// named preset, for tests and benchmarks.
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "model/random_checkpoint.h"

namespace hardkv::cli {
namespace {

struct MakeModelArgs {
  std::string preset;
  bool random = false;
  std::string out;
  uint64_t seed = 0;
  std::string dtype = "bf16";
};

CommandRegistrar reg(
    "make-model", "Write a random-weight HuggingFace checkpoint of a preset model shape",
    [](CLI::App* app) {
      auto args = std::make_shared<MakeModelArgs>();
      std::string presets;
      for (const std::string& p : model_preset_names()) presets += (presets.empty() ? "" : ", ") + p;
      app->add_option("--preset", args->preset,
                      "Model shape: " + presets +
                          " (tiny*: few-layer CPU test models of the Qwen3 / Llama 3 / Qwen2 "
                          "architectures; the others have the published models' shapes)")
          ->required()
          ->check(CLI::IsMember(model_preset_names()));
      app->add_flag("--random", args->random,
                    "Fill the weights with seeded N(0, 0.02) values, norms near 1 (required: the "
                    "only mode)")
          ->required();
      app->add_option("--out", args->out,
                      "Output directory (created; stale model*.safetensors files are replaced)")
          ->required();
      app->add_option("--seed", args->seed, "PRNG seed; the same seed gives identical files")
          ->capture_default_str();
      app->add_option("--dtype", args->dtype, "Weight dtype: bf16, f16 or f32")
          ->check(CLI::IsMember({"bf16", "f16", "f32"}))
          ->capture_default_str();
      app->footer(
          "Writes config.json, generation_config.json, tokenizer.json (byte-level BPE with "
          "<|endoftext|>, <|im_start|>, <|im_end|>, <think>, </think>), tokenizer_config.json and "
          "model.safetensors, or model-0000k-of-0000n.safetensors shards plus "
          "model.safetensors.index.json when the weights exceed 2 GiB. Weights are streamed: "
          "memory use stays small even for qwen3-8b (16 GB in bf16).");
      return [args]() {
        RandomCheckpointOptions options;
        options.seed = args->seed;
        options.dtype = args->dtype == "f32"   ? DType::kF32
                        : args->dtype == "f16" ? DType::kF16
                                               : DType::kBF16;
        const auto start = std::chrono::steady_clock::now();
        RandomCheckpointSummary sum =
            write_random_checkpoint(model_preset(args->preset), args->out, options);
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("wrote %s: preset %s, %lld parameters, %.1f MB of %s weights in %d "
                    "safetensors file%s (%.1f s)\n",
                    args->out.c_str(), args->preset.c_str(),
                    static_cast<long long>(sum.num_params), sum.data_bytes / 1e6,
                    dtype_name(options.dtype), sum.num_shards, sum.num_shards == 1 ? "" : "s",
                    secs);
        return 0;
      };
    });

}  // namespace
}  // namespace hardkv::cli
