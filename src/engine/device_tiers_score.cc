// DeviceTiers::score_events (see device_tiers.h): per layer, every due sequence's candidates
// scored on the device in one launch (true attention of the observation queries); when the
// strategy needs keys (rkv), their redundancy computed on the device too (or the keys copied out).
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "compress/compression_config.h"
#include "engine/device_tiers.h"
#include "engine/device_tiers_ops.h"
#ifdef HARDKV_WITH_CUDA
#include "kernels/cuda/hkv_redundancy.h"
#include "kernels/cuda/hkv_score.h"
#endif

namespace hardkv {

using namespace device_tiers;  // NOLINT(google-build-using-namespace): this file's helpers

std::vector<kv::PrecomputedScores> DeviceTiers::score_events(const kv::HeadwiseKV& kv,
                                                             std::span<const int64_t> seq_ids,
                                                             const KVCache& cache, int sinks,
                                                             int window, bool with_keys,
                                                             double redundancy_threshold) {
  const int S = static_cast<int>(seq_ids.size());
  const int L = config_.num_layers, H = config_.num_kv_heads, D = config_.head_dim;
  const int P = config_.page_size, W = config_.obs_window;
  // with_keys comes from Strategy::needs_keys(), i.e. rkv: its redundancy is computed here at the
  // strategy's similarity threshold (the rkv strategy refuses a redundancy computed at another).
  // HARDKV_RKV_HOST_REDUNDANCY=1 copies the keys out instead and leaves the redundancy to the host
  // (the slower path, kept for comparison).
  const char* host_env = std::getenv("HARDKV_RKV_HOST_REDUNDANCY");
  const bool device_redundancy =
      with_keys && !(host_env != nullptr && std::strcmp(host_env, "1") == 0);
  const double threshold = redundancy_threshold;
  std::vector<kv::PrecomputedScores> out(S);
  std::vector<kv::EventCandidates> cands;
  for (int s = 0; s < S; ++s) {
    cands.push_back(kv::event_candidates(kv, seq_ids[s], sinks, window));
    out[s].attn.resize(static_cast<size_t>(L) * H);
    if (device_redundancy) {
      out[s].redundancy.resize(static_cast<size_t>(L) * H);
      out[s].redundancy_threshold = threshold;
    } else if (with_keys) {
      out[s].keys.resize(static_cast<size_t>(L) * H);
    }
  }
#ifdef HARDKV_WITH_CUDA
  cuda::CudaBackend& cuda = cuda_of(be_);
  for (int l = 0; l < L; ++l) {
    // Host metadata of the layer: segment g = s * H + h.
    std::vector<int32_t> obs_indptr{0}, obs_rows, page_indptr{0}, page_indices, cond_begin,
        cond_end, dense_block_indptr{0}, dense_block_indices, dense_cand_start, dense_cand_len,
        score_indptr{0};
    int max_obs = 0, max_cand = 0;
    for (int s = 0; s < S; ++s) {
      const kv::SequenceKV& seq = kv.sequence(seq_ids[s]);
      const int count = seq.obs.count(l);
      const int slot = slot_of_.at(seq_ids[s]);
      for (int pos = seq.num_tokens - count; pos < seq.num_tokens; ++pos) {
        obs_rows.push_back(slot * W + pos % W);
      }
      obs_indptr.push_back(static_cast<int32_t>(obs_rows.size()));
      max_obs = std::max(max_obs, count);
      dense_block_indices.insert(dense_block_indices.end(), seq.dense_blocks.begin(),
                                 seq.dense_blocks.end());
      dense_block_indptr.push_back(static_cast<int32_t>(dense_block_indices.size()));
      const kv::EventCandidates& c = cands[s];
      dense_cand_start.push_back(c.dense_from - seq.dense_base);
      dense_cand_len.push_back(c.dense_to - c.dense_from);
      for (int h = 0; h < H; ++h) {
        const kv::HeadPages& hp = kv.head(seq_ids[s], l, h);
        page_indices.insert(page_indices.end(), hp.pages.begin(), hp.pages.end());
        page_indptr.push_back(static_cast<int32_t>(page_indices.size()));
        cond_begin.push_back(c.cond_begin[l * H + h]);
        cond_end.push_back(hp.num_stored());
        const int n = c.num_candidates(hp, l * H + h);
        score_indptr.push_back(score_indptr.back() + n);
        max_cand = std::max(max_cand, n);
      }
    }
    const int total = score_indptr.back();
    if (total == 0) continue;
    const int total_obs = obs_indptr.back();
    Tensor q_obs = be_->scratch(be_->act_dtype(), {std::max(total_obs, 1), config_.num_q_heads, D});
    const Tensor obs_rows_d = to_device(*be_, obs_rows);
    copy_rows(cuda, ring_[l], q_obs, i32(obs_rows_d), nullptr, total_obs, config_.num_q_heads * D);
    const Tensor obs_indptr_d = to_device(*be_, obs_indptr),
                 page_indptr_d = to_device(*be_, page_indptr),
                 page_indices_d = to_device(*be_, page_indices),
                 cond_begin_d = to_device(*be_, cond_begin), cond_end_d = to_device(*be_, cond_end),
                 dense_block_indptr_d = to_device(*be_, dense_block_indptr),
                 dense_block_indices_d = to_device(*be_, dense_block_indices),
                 dense_cand_start_d = to_device(*be_, dense_cand_start),
                 dense_cand_len_d = to_device(*be_, dense_cand_len),
                 score_indptr_d = to_device(*be_, score_indptr);
    cuda::HkvScoreParams p;
    p.q_obs = bf<const bf16>(q_obs);
    p.obs_indptr = i32(obs_indptr_d);
    p.page_k = bf<const bf16>(page_k_[l]);
    p.dense_k = bf<const bf16>(cache.k[l]);
    p.page_indptr = i32(page_indptr_d);
    p.page_indices = i32(page_indices_d);
    p.cond_begin = i32(cond_begin_d);
    p.cond_end = i32(cond_end_d);
    p.dense_block_indptr = i32(dense_block_indptr_d);
    p.dense_block_indices = i32(dense_block_indices_d);
    p.dense_cand_start = i32(dense_cand_start_d);
    p.dense_cand_len = i32(dense_cand_len_d);
    p.score_indptr = i32(score_indptr_d);
    Tensor scores = be_->scratch(DType::kF32, {total});
    p.scores = scores.data_as<float>();
    p.num_seqs = S;
    p.num_q_heads = config_.num_q_heads;
    p.num_kv_heads = H;
    p.head_dim = D;
    p.page_size = P;
    p.dense_block_size = cache.block_size;
    p.max_obs = max_obs;
    p.max_candidates = max_cand;
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));
    Tensor stats = be_->scratch(
        DType::kF32, {static_cast<int64_t>(std::max<size_t>(cuda::hkv_score_workspace(p), 1))});
    p.row_stats = stats.data_as<float>();
    cuda::launch_hkv_score(p, cuda.stream());
    // Keys in the same order (strategies that need them): stored rows from the pool, dense rows
    // from the cache.
    Tensor keys;
    if (with_keys) {
      std::vector<int32_t> pool_src, pool_dst, dense_src, dense_dst;
      for (int s = 0; s < S; ++s) {
        const kv::EventCandidates& c = cands[s];
        for (int h = 0; h < H; ++h) {
          const int g = s * H + h;
          const kv::HeadPages& hp = kv.head(seq_ids[s], l, h);
          int dst = score_indptr[g];
          for (int i = cond_begin[g]; i < hp.num_stored(); ++i) {
            pool_src.push_back(hp.pages[i / P] * P + i % P);
            pool_dst.push_back(dst++);
          }
          for (int pos = c.dense_from; pos < c.dense_to; ++pos) {
            dense_src.push_back(kv.dense_slot(seq_ids[s], pos) * H + h);
            dense_dst.push_back(dst++);
          }
        }
      }
      keys = be_->scratch(be_->act_dtype(), {total, D});
      const Tensor ps = to_device(*be_, pool_src), pd = to_device(*be_, pool_dst),
                   ds = to_device(*be_, dense_src), dd = to_device(*be_, dense_dst);
      copy_rows(cuda, page_k_[l], keys, i32(ps), i32(pd), static_cast<int>(pool_src.size()), D);
      copy_rows(cuda, cache.k[l], keys, i32(ds), i32(dd), static_cast<int>(dense_src.size()), D);
    }
    // rkv: every segment's redundancy from those keys in one launch sequence.
    Tensor red;
    if (device_redundancy) {
      red = be_->scratch(DType::kF32, {total});
      const Tensor work = be_->scratch(
          DType::kU8, {static_cast<int64_t>(cuda::hkv_redundancy_workspace_bytes(total))});
      cuda::HkvRedundancyParams rp;
      rp.keys = bf<const bf16>(keys);
      rp.indptr = p.score_indptr;
      rp.redundancy = red.data_as<float>();
      rp.workspace = work.data();
      rp.total_rows = total;
      rp.num_segments = S * H;
      rp.head_dim = D;
      rp.max_candidates = max_cand;
      rp.threshold = threshold;
      cuda::launch_hkv_redundancy(rp, cuda.stream());
    }
    const Tensor host = be_->download(scores);
    std::vector<float> key_f;
    if (with_keys && !device_redundancy) {
      const Tensor hk = be_->download(keys);
      key_f.resize(static_cast<size_t>(total) * D);
      convert_to_f32(hk.data(), hk.dtype(), key_f.data(), key_f.size());
    }
    Tensor host_red;
    if (device_redundancy) host_red = be_->download(red);
    const float* a = host.data_as<const float>();
    for (int s = 0; s < S; ++s) {
      for (int h = 0; h < H; ++h) {
        const int g = s * H + h;
        out[s].attn[l * H + h].assign(a + score_indptr[g], a + score_indptr[g + 1]);
        if (device_redundancy) {
          const float* r = host_red.data_as<const float>();
          out[s].redundancy[l * H + h].assign(r + score_indptr[g], r + score_indptr[g + 1]);
        } else if (with_keys) {
          out[s].keys[l * H + h].assign(key_f.begin() + int64_t{score_indptr[g]} * D,
                                        key_f.begin() + int64_t{score_indptr[g + 1]} * D);
        }
      }
    }
    be_->release_scratch();
  }
#else
  (void)cache, (void)P, (void)W, (void)D;
  if (!seq_ids.empty()) no_cuda();
#endif
  return out;
}

}  // namespace hardkv
