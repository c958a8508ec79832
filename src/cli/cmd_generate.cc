// `hardkv generate`: loads a checkpoint, encodes the prompt, and streams generated text to stdout
// (one sequence, paged KV cache on the chosen backend).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "hardkv/sampling_params.h"
#include "model/model.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace hardkv::cli {
namespace {

struct GenerateFlags {
  std::string model_dir;
  std::string prompt;
  std::string backend = "auto";
  SamplingParams sampling;
  int block_size = 16;
};

int run_generate(const GenerateFlags& f) {
  f.sampling.validate();
  auto backend = make_backend(f.backend);
  Tokenizer tokenizer = Tokenizer::from_dir(f.model_dir);
  auto model = Model::load(f.model_dir, *backend);
  const ModelConfig& cfg = model->config();
  std::vector<int32_t> ids = tokenizer.encode(f.prompt, /*add_special_tokens=*/true);
  HARDKV_CHECK(!ids.empty(), kInvalidArgument, "the prompt encodes to no tokens");
  const int64_t total = static_cast<int64_t>(ids.size()) + f.sampling.max_tokens;
  HARDKV_CHECK(total <= cfg.max_position_embeddings, kInvalidArgument,
               "prompt ({} tokens) + max tokens ({}) exceed the model's context of {} tokens",
               ids.size(), f.sampling.max_tokens, cfg.max_position_embeddings);
  const int bs = f.block_size;
  const int num_blocks = static_cast<int>((total + bs - 1) / bs);
  KVCache kv = model->allocate_kv_cache(num_blocks, bs);

  std::vector<int32_t> stop_ids = f.sampling.stop_token_ids;
  if (!f.sampling.ignore_eos) {
    stop_ids.insert(stop_ids.end(), cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
  }
  Rng rng(f.sampling.seed >= 0 ? static_cast<uint64_t>(f.sampling.seed)
                               : static_cast<uint64_t>(std::random_device{}()));
  IncrementalDetokenizer detok(tokenizer, /*skip_special_tokens=*/true);
  std::string text;       // generated text so far (for stop strings)
  size_t printed = 0;     // bytes of `text` already written to stdout
  size_t hold_back = 0;   // longest stop string - 1: text that may still become a stop string
  for (const std::string& s : f.sampling.stop) hold_back = std::max(hold_back, s.size() - 1);

  int pos = 0;
  bool stopped = false;  // by a stop string: the text is final
  std::vector<int32_t> step_ids = ids;
  for (int generated = 0; generated < f.sampling.max_tokens; ++generated) {
    ForwardBatch b;
    const int n = static_cast<int>(step_ids.size());
    b.token_ids = step_ids;
    for (int i = 0; i < n; ++i, ++pos) {
      b.positions.push_back(pos);
      b.slot_mapping.push_back(pos);  // blocks 0..num_blocks-1 in order: slot == position
    }
    b.query_indptr = {0, n};
    b.kv_lens = {pos};
    const int used = (pos + bs - 1) / bs;
    b.block_indptr = {0, used};
    for (int i = 0; i < used; ++i) b.block_indices.push_back(i);
    b.logits_indices = {n - 1};
    Tensor logits = backend->download(model->forward(b, kv));
    backend->release_scratch();
    const int32_t next = sample_token(
        std::span<const float>(logits.data_as<float>(), cfg.vocab_size), f.sampling, rng);
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
    text += detok.push(next);
    for (const std::string& s : f.sampling.stop) {
      const size_t at = text.find(s, printed > s.size() ? printed - s.size() : 0);
      if (at != std::string::npos) {
        text.resize(at);
        stopped = true;
      }
    }
    const size_t safe = stopped ? text.size() : (text.size() > hold_back ? text.size() - hold_back : 0);
    if (safe > printed) {
      std::fwrite(text.data() + printed, 1, safe - printed, stdout);
      std::fflush(stdout);
      printed = safe;
    }
    if (stopped) break;
    step_ids = {next};
  }
  if (!stopped) text += detok.flush();
  if (text.size() > printed) std::fwrite(text.data() + printed, 1, text.size() - printed, stdout);
  std::fputc('\n', stdout);
  return 0;
}

CommandRegistrar reg("generate", "Generate text from a prompt with a HuggingFace checkpoint",
                     [](CLI::App* app) {
  auto f = std::make_shared<GenerateFlags>();
  app->add_option("-m,--model", f->model_dir, "Model directory (config.json, *.safetensors, "
                  "tokenizer.json)")->required();
  app->add_option("-p,--prompt", f->prompt, "Prompt text")->required();
  app->add_option("--max-tokens", f->sampling.max_tokens, "Tokens to generate at most")
      ->capture_default_str();
  app->add_option("--temperature", f->sampling.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  app->add_option("--top-k", f->sampling.top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  app->add_option("--top-p", f->sampling.top_p, "Nucleus sampling mass (1 = off)")
      ->capture_default_str();
  app->add_option("--min-p", f->sampling.min_p, "Drop tokens below min_p * p_max (0 = off)")
      ->capture_default_str();
  app->add_option("--seed", f->sampling.seed, "Random seed (-1 = nondeterministic)")
      ->capture_default_str();
  app->add_option("--stop", f->sampling.stop, "Stop string (repeatable); not printed");
  app->add_option("--stop-token-id", f->sampling.stop_token_ids, "Extra stop token id (repeatable)");
  app->add_flag("--ignore-eos", f->sampling.ignore_eos, "Keep generating past the EOS token");
  app->add_option("--backend", f->backend, "cpu, cuda or auto")->capture_default_str();
  app->add_option("--block-size", f->block_size, "KV cache block size in tokens")
      ->capture_default_str();
  return [f]() { return run_generate(*f); };
});

}  // namespace
}  // namespace hardkv::cli
