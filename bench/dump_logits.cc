// Dumps the logits of every position of one prompt (a single prefill, paged KV) for comparison
// with HF transformers (tools/hf_parity/compare_logits.py):
//   bench_dump_logits --model DIR --tokens N --seed S --backend cuda|cpu --out logits.f32
// The prompt is N pseudo-random token ids (seed S, written to OUT.tokens as int32); OUT gets F32
// [N, vocab] row-major.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "model/model.h"

int main(int argc, char** argv) {
  std::string dir, out, backend = "cuda";
  int n = 512;
  uint64_t seed = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") dir = v;
    else if (k == "--tokens") n = std::atoi(v.c_str());
    else if (k == "--seed") seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--backend") backend = v;
    else if (k == "--out") out = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (dir.empty() || out.empty() || n <= 0) {
    std::fprintf(stderr, "usage: bench_dump_logits --model DIR --out FILE [--tokens N] [--seed S]"
                         " [--backend cuda|cpu]\n");
    return 2;
  }
  try {
    auto be = hardkv::make_backend(backend);
    auto model = hardkv::Model::load(dir, *be);
    const int64_t vocab = model->config().vocab_size;
    hardkv::Rng rng(seed);
    const int bs = 16;
    hardkv::ForwardBatch b;
    for (int p = 0; p < n; ++p) {
      b.token_ids.push_back(static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(vocab)));
      b.positions.push_back(p);
      b.slot_mapping.push_back(p);
      b.logits_indices.push_back(p);
    }
    b.query_indptr = {0, n};
    b.kv_lens = {n};
    for (int i = 0; i < (n + bs - 1) / bs; ++i) b.block_indices.push_back(i);
    b.block_indptr = {0, static_cast<int32_t>(b.block_indices.size())};
    hardkv::KVCache kv = model->allocate_kv_cache((n + bs - 1) / bs, bs);
    const hardkv::Tensor logits = be->download(model->forward(b, kv));
    std::ofstream f(out, std::ios::binary);
    f.write(static_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.nbytes()));
    std::ofstream t(out + ".tokens", std::ios::binary);
    t.write(reinterpret_cast<const char*>(b.token_ids.data()),
            static_cast<std::streamsize>(b.token_ids.size() * 4));
    std::printf("wrote %s: [%d, %lld] F32 logits on %s\n", out.c_str(), n,
                static_cast<long long>(vocab), be->name());
  } catch (const hardkv::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
