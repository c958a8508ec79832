// Backend: the ops contract between the model (written once) and a device (CPU reference, CUDA).
// Every op takes tensors that live on this backend; shapes and dtypes are written on each op.
// "act" means the backend's activation dtype (CPU: F32, CUDA: BF16); weights and KV use it too.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace hardkv {

// Per-step paged-attention metadata (FlashInfer-style flat arrays, I32 tensors on the backend).
// Sequence i owns new query rows [query_indptr[i], query_indptr[i+1]) and kv_lens[i] cached+new
// tokens stored in blocks block_indices[block_indptr[i] .. block_indptr[i+1]); token p of the
// sequence lives in slot block_indices[block_indptr[i] + p / block_size] * block_size +
// p % block_size. Query row j of sequence i has position kv_lens[i] - q_len_i + j and attends
// causally to positions <= its own.
struct AttentionMeta {
  Tensor query_indptr;   // I32 [num_seqs + 1]
  Tensor kv_lens;        // I32 [num_seqs]
  Tensor block_indptr;   // I32 [num_seqs + 1]
  Tensor block_indices;  // I32 [total blocks]
  int num_seqs = 0;
  int num_tokens = 0;     // == query_indptr[num_seqs]
  int max_query_len = 0;  // host-side bounds so launchers can pick grids without a device sync
  int max_kv_len = 0;
  int block_size = 0;
};

// Per-row inputs of Backend::sample (host vectors, one entry per logits row). A row's result is
// exactly what the host sampler (sampling/sampler.h, sample_token_with_uniform) returns for the
// same logits, parameters and uniform: greedy = argmax (ties: lowest id); otherwise the softmax of
// logits / temperature, filtered by top-k, then top-p (smallest prefix of the candidates sorted by
// logit descending, ties by lower id, holding top_p of the mass), then min-p, renormalised, and
// inverse-CDF in token-id order at `uniform`.
struct SampleRows {
  std::vector<float> temperature;  // [N] 0 => greedy
  std::vector<int32_t> top_k;      // [N] <= 0 => off
  std::vector<float> top_p;        // [N] (0, 1]; 1 => off
  std::vector<float> min_p;        // [N] [0, 1); 0 => off
  std::vector<double> uniform;     // [N] the row's one uniform draw in [0, 1) (unused if greedy)
  std::vector<int32_t> forced;     // [N] >= 0: the result is this token (teacher forcing); -1: draw
  bool logprobs = false;           // also return log_softmax(raw logits)[chosen token] per row
  int size() const { return static_cast<int>(temperature.size()); }
  // n greedy rows (no filters, no forcing).
  static SampleRows greedy(int n) {
    SampleRows r;
    r.temperature.assign(n, 0.f);
    r.top_k.assign(n, 0);
    r.top_p.assign(n, 1.f);
    r.min_p.assign(n, 0.f);
    r.uniform.assign(n, 0.0);
    r.forced.assign(n, -1);
    return r;
  }
};

struct SampleResult {
  std::vector<int32_t> tokens;  // [N]
  std::vector<float> logprobs;  // [N] when SampleRows::logprobs, else empty
};

// A recorded step (a CUDA graph) that a backend can replay; opaque to callers.
struct StepGraph {
  virtual ~StepGraph() = default;
};

// Device memory (bytes); 0 = unknown (the CPU backend).
struct DeviceMemory {
  size_t free = 0;
  size_t total = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual DType act_dtype() const = 0;
  virtual const char* name() const = 0;

  // --- memory ------------------------------------------------------------------------------
  // Persistent, zero-initialised allocation.
  virtual Tensor alloc(DType dtype, Shape shape) = 0;
  // Step-scoped allocation, valid until release_scratch(); allocation order is deterministic so a
  // backend may hand out the same addresses every step (CUDA-graph friendly).
  virtual Tensor scratch(DType dtype, Shape shape) = 0;
  virtual void release_scratch() = 0;
  // Copies a host tensor to this backend, converting float dtypes (F32/F16/BF16) to `dtype`;
  // integer tensors are copied as they are (dtype must match).
  virtual Tensor upload(const Tensor& host, DType dtype) = 0;
  // Copies host bytes into an existing tensor of this backend (same dtype, same element count);
  // used for per-step metadata written into scratch tensors.
  virtual void copy_from_host(Tensor& dst, const Tensor& host_src) = 0;
  // Copies a tensor of this backend into a new host tensor of the same dtype.
  virtual Tensor download(const Tensor& t) = 0;
  virtual void synchronize() = 0;

  // --- ops ---------------------------------------------------------------------------------
  // out[t, :] = table[ids[t], :]        ids I32 [T]; table act [V, H]; out act [T, H]
  // (ids < 0: placeholders for the latest sample_async's tokens, see there)
  virtual void embedding(const Tensor& ids, const Tensor& table, Tensor& out) = 0;
  // out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w     x, out act [N, D] (may alias); w [D]
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) = 0;
  // residual += x; x = rms_norm(residual) * w             x, residual act [N, D]; w [D]
  virtual void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) = 0;
  // out = x w^T (+ bias)   x act [N, K]; w act [M, K]; bias act [M] or null; out act or F32 [N, M]
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) = 0;
  // add_rms_norm(x, residual, norm_w, eps) then linear(x, w, bias, out), as one op that a backend
  // may fuse (CUDA: the decode GEMV normalises x in its prologue). Same contract and results.
  virtual void add_rms_norm_linear(Tensor& x, Tensor& residual, const Tensor& norm_w, float eps,
                                   const Tensor& w, const Tensor* bias, Tensor& out) {
    add_rms_norm(x, residual, norm_w, eps);
    linear(x, w, bias, out);
  }
  // out = silu_mul(gate_up) w^T (+ bias): gate_up act [T, 2I]; w act [M, I]; out act [T, M].
  // mid act [T, I] is the op's workspace (silu_mul's output when not fused; contents unspecified
  // after the call).
  virtual void silu_mul_linear(const Tensor& gate_up, const Tensor& w, const Tensor* bias,
                               Tensor& mid, Tensor& out) {
    silu_mul(gate_up, mid);
    linear(mid, w, bias, out);
  }
  // Rotate-half RoPE in place on x act [T, H, D] at positions I32 [T], with cos_sin F32
  // [max_pos, D]: cos(pos * f_i) in [:D/2], sin(pos * f_i) in [D/2:].
  virtual void rope(Tensor& x, const Tensor& positions, const Tensor& cos_sin) = 0;
  // out[t, i] = silu(gate_up[t, i]) * gate_up[t, I + i]     gate_up act [T, 2I]; out act [T, I]
  virtual void silu_mul(const Tensor& gate_up, Tensor& out) = 0;
  // Stores k, v act [T, Hkv, D] into caches act [num_blocks, block_size, Hkv, D] at slots I32 [T]
  // (slot = block * block_size + offset; -1 skips the row).
  virtual void kv_store(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache,
                        Tensor& v_cache) = 0;
  // The attention inputs of one layer from its fused q/k/v projection qkv act [T, (Hq+2Hkv)*D]
  // (per token: Hq query heads, then Hkv key heads, then Hkv value heads): query heads ->
  // rms_norm(q_norm) when q_norm is set -> RoPE -> q_out act [T, Hq, D]; key heads ->
  // rms_norm(k_norm) when set -> RoPE -> k_cache, value heads -> v_cache, at slots I32 [T]
  // (-1 skips the token). Same results as rms_norm + rope + kv_store on separate q, k, v.
  virtual void qkv_prepare(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm,
                           float eps, const Tensor& positions, const Tensor& cos_sin,
                           const Tensor& slots, Tensor& q_out, Tensor& k_cache,
                           Tensor& v_cache) = 0;
  // Paged causal attention: q act [T, Hq, D] -> out act [T, Hq, D], GQA (Hq % Hkv == 0).
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                         const AttentionMeta& meta, float scale, Tensor& out) = 0;
  // qkv_prepare(...) then attention(q_out, k_cache, v_cache, meta, scale, out), as one op that a
  // backend may fuse (CUDA: decode steps build q and store K/V inside the attention kernel).
  // Callers guarantee that every query token's slot is the slot of its own KV position (the
  // token at query row j of sequence i has position kv_lens[i] - q_len_i + j in the block table).
  // q_out act [T, Hq, D] is the op's workspace (contents unspecified after the call).
  virtual void qkv_prepare_attention(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm,
                                     float eps, const Tensor& positions, const Tensor& cos_sin,
                                     const Tensor& slots, Tensor& q_out, Tensor& k_cache,
                                     Tensor& v_cache, const AttentionMeta& meta, float scale,
                                     Tensor& out) {
    qkv_prepare(qkv, q_norm, k_norm, eps, positions, cos_sin, slots, q_out, k_cache, v_cache);
    attention(q_out, k_cache, v_cache, meta, scale, out);
  }
  // out[i, :] = x[idx[i], :]    x act [T, H]; idx I32 [N]; out act [N, H]
  virtual void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) = 0;
  // One token per row of logits F32 [N, V] (see SampleRows). The default downloads the logits
  // and runs the host sampler; a device backend overrides it to download only the results.
  virtual SampleResult sample(const Tensor& logits, const SampleRows& rows);

  // --- overlapped steps (the engine queues step k + 1 before step k's tokens are back) ----------
  // sample() without waiting: queues the sampling of logits F32 [N, V] and returns a ticket for
  // sample_wait(), which returns that SampleResult. Tickets are waited in issue order; at most
  // kMaxPendingSamples may be outstanding. A token id < 0 in a later embedding()'s ids is a
  // placeholder: -(r + 1) stands for the token that the latest sample_async() picked for its row
  // r, read where the step runs (on the device for CUDA), so the host need not wait for it. The
  // default samples at once (sample()) and keeps the tokens for the placeholders.
  static constexpr int kMaxPendingSamples = 4;
  virtual int64_t sample_async(const Tensor& logits, const SampleRows& rows);
  virtual SampleResult sample_wait(int64_t ticket);

  // --- device memory -----------------------------------------------------------------------
  virtual DeviceMemory memory() const { return {}; }

  // --- step graphs (optional: supports_graphs() == false means none of these is called) ------
  // capture: begin_capture(kv_bound); model.forward(...); g = end_capture(); launch_graph(*g)
  // replay:  begin_replay(*g); model.forward(...); if (!end_replay(*g)) capture anew
  // A capture records without running; a replay's forward() does only host work (metadata into
  // the buffers the graph reads) and end_replay() launches the graph when the step's op sequence
  // (ops, buffers, sizes) matched the captured one. Attention in a graph is planned for every KV
  // length <= kv_bound.
  virtual bool supports_graphs() const { return false; }
  // The most bytes of host-to-device copies one graph step may stage (its metadata: the forward's
  // packed int32 arrays); a larger step must run eagerly.
  virtual size_t graph_copy_bytes() const { return 0; }
  virtual void begin_capture(int /*kv_bound*/) { no_graphs(); }
  virtual std::unique_ptr<StepGraph> end_capture() { no_graphs(); }
  virtual void begin_replay(const StepGraph&) { no_graphs(); }
  [[nodiscard]] virtual bool end_replay(const StepGraph&) { no_graphs(); }
  virtual void launch_graph(const StepGraph&) { no_graphs(); }

 protected:
  // Placeholder id -> token (the default sample_async's tokens; embedding() of the CPU backend):
  // -(r + 1) -> the latest sample_async's token of row r; throws when no such row was sampled.
  int32_t resolve_placeholder(int32_t id) const;

 private:
  [[noreturn]] void no_graphs() const {
    HARDKV_THROW(kUnsupported, "the {} backend has no step graphs", name());
  }

  // The default sample_async's state: results not yet waited for, and the latest tokens.
  std::vector<std::pair<int64_t, SampleResult>> pending_samples_;
  std::vector<int32_t> last_sampled_;
  int64_t next_ticket_ = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
// True when hardkv was built with CUDA and a CUDA device can be opened.
bool cuda_device_available();
// Throws kUnsupported when hardkv was built without CUDA or no device is present.
std::unique_ptr<Backend> make_cuda_backend(int device_idx = 0);
// "cpu" | "cuda" | "auto" (CUDA when a device is present, else CPU).
std::unique_ptr<Backend> make_backend(const std::string& name);

}  // namespace hardkv
