// CPU reference kernels (fp32, OpenMP): plain, obviously-correct loops that every CUDA kernel is
// checked against. Raw pointers, row-major; shapes on every argument.
#pragma once

#include <cstdint>

namespace hardkv::cpu {

// out[t, :] = table[ids[t], :]        ids [T]; table [V, H]; out [T, H]
void embedding(const int32_t* ids, int64_t num_tokens, const float* table, int64_t vocab,
               int64_t hidden, float* out);

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w      x, out [N, D] (may alias); w [D]
void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out);

// residual += x; x = rms_norm(residual) * w        x, residual [N, D]; w [D]
void add_rms_norm(float* x, float* residual, const float* w, int64_t rows, int64_t dim, float eps);

// out = x w^T (+ bias)        x [N, K]; w [M, K]; bias [M] or null; out [N, M]  (OpenBLAS sgemm)
void linear(const float* x, const float* w, const float* bias, int64_t n, int64_t k, int64_t m,
            float* out);

// Rotate-half RoPE in place: x [T, H, D]; positions [T]; cos_sin [max_pos, D] with
// cos(pos * f_i) in [:D/2] and sin(pos * f_i) in [D/2:].
void rope(float* x, int64_t num_tokens, int64_t heads, int64_t dim, const int32_t* positions,
          const float* cos_sin, int64_t max_pos);

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, I + i]      gate_up [T, 2I]; out [T, I]
void silu_mul(const float* gate_up, int64_t num_tokens, int64_t inter, float* out);

// k_cache[slot] = k[t], v_cache[slot] = v[t] for slots[t] >= 0.
// k, v [T, row]; caches [num_slots, row] where row = Hkv * D and num_slots = blocks * block_size.
void kv_store(const float* k, const float* v, const int32_t* slots, int64_t num_tokens,
              int64_t row, int64_t num_slots, float* k_cache, float* v_cache);

// The attention inputs from a fused projection (see Backend::qkv_prepare): qkv [T, (Hq+2Hkv)*D];
// q_norm, k_norm [D] or null; q_out [T, Hq, D]; caches [num_slots, Hkv * D].
struct QkvPrepareArgs {
  const float* qkv;
  const float* q_norm;
  const float* k_norm;
  float eps;
  const int32_t* positions;  // [T]
  const float* cos_sin;      // [max_pos, D]
  int64_t max_pos;
  const int32_t* slots;  // [T]
  float* q_out;
  float* k_cache;
  float* v_cache;
  int64_t num_slots;
  int64_t num_tokens;
  int64_t num_heads;
  int64_t num_kv_heads;
  int64_t head_dim;
};
void qkv_prepare(const QkvPrepareArgs& args);

// Paged causal GQA attention (see AttentionMeta in kernels/backend.h for the indexing contract).
// q, out [T, Hq, D]; caches [num_blocks, block_size, Hkv, D].
struct PagedAttentionArgs {
  const float* q;
  const float* k_cache;
  const float* v_cache;
  float* out;
  const int32_t* query_indptr;   // [num_seqs + 1]
  const int32_t* kv_lens;        // [num_seqs]
  const int32_t* block_indptr;   // [num_seqs + 1]
  const int32_t* block_indices;  // [total blocks]
  int64_t num_seqs;
  int64_t num_blocks;
  int64_t block_size;
  int64_t num_heads;
  int64_t num_kv_heads;
  int64_t head_dim;
  float scale;
};
void paged_attention(const PagedAttentionArgs& args);

// out[i, :] = x[idx[i], :]        x [T, H]; idx [N]; out [N, H]
void gather_rows(const float* x, int64_t rows, int64_t cols, const int32_t* idx, int64_t n,
                 float* out);

}  // namespace hardkv::cpu
