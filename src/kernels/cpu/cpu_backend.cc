// CpuBackend: shape/dtype checks, then the cpu:: reference kernels.
#include "kernels/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/cpu_ops.h"

namespace hardkv {
namespace {

void expect(const Tensor& t, DType dtype, const char* what) {
  HARDKV_CHECK(t.defined() && t.device() == Device::kCPU && t.dtype() == dtype, kInternal,
               "cpu backend: {} must be a defined host {} tensor (got {}, shape {})", what,
               dtype_name(dtype), dtype_name(t.dtype()), shape_str(t.shape()));
}

int64_t rows_of(const Tensor& t) { return t.numel() / t.dim(-1); }

}  // namespace

CpuBackend::CpuBackend() {
  const char* env = std::getenv("HARDKV_CPU_BLAS_THREADS");
  const int threads = env != nullptr ? std::atoi(env) : 1;
  openblas_set_num_threads(threads > 0 ? threads : 1);
}

Tensor CpuBackend::alloc(DType dtype, Shape shape) { return Tensor::empty(dtype, std::move(shape)); }

Tensor CpuBackend::scratch(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (scratch_next_ == scratch_pool_.size()) scratch_pool_.emplace_back();
  ScratchBuffer& buf = scratch_pool_[scratch_next_++];
  if (buf.capacity < bytes) {
    const size_t capacity = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, capacity == 0 ? 64 : capacity);
    HARDKV_CHECK(p != nullptr, kOutOfMemory, "cannot allocate {} bytes of host memory", bytes);
    buf.memory = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    buf.capacity = capacity;
  }
  return Tensor::view(buf.memory.get(), dtype, std::move(shape), Device::kCPU, buf.memory);
}

Tensor CpuBackend::upload(const Tensor& host, DType dtype) {
  Tensor out = Tensor::empty(dtype, host.shape());
  const bool is_float = dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
  if (is_float && host.dtype() != dtype) {
    HARDKV_CHECK(dtype == DType::kF32, kUnsupported, "cpu backend stores floats as F32, not {}",
                 dtype_name(dtype));
    convert_to_f32(host.data(), host.dtype(), out.data_as<float>(), host.numel());
  } else {
    HARDKV_CHECK(host.dtype() == dtype, kInternal, "upload {} as {}", dtype_name(host.dtype()),
                 dtype_name(dtype));
    std::memcpy(out.data(), host.data(), host.nbytes());
  }
  return out;
}

void CpuBackend::copy_from_host(Tensor& dst, const Tensor& host_src) {
  HARDKV_CHECK(dst.dtype() == host_src.dtype() && dst.numel() == host_src.numel(), kInternal,
               "copy_from_host {} {} into {} {}", dtype_name(host_src.dtype()),
               shape_str(host_src.shape()), dtype_name(dst.dtype()), shape_str(dst.shape()));
  std::memcpy(dst.data(), host_src.data(), host_src.nbytes());
}

Tensor CpuBackend::download(const Tensor& t) {
  Tensor out = Tensor::empty(t.dtype(), t.shape());
  std::memcpy(out.data(), t.data(), t.nbytes());
  return out;
}

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  expect(ids, DType::kI32, "ids");
  expect(table, DType::kF32, "table");
  expect(out, DType::kF32, "out");
  HARDKV_CHECK(out.numel() == ids.numel() * table.dim(1), kInternal, "embedding out shape {}",
               shape_str(out.shape()));
  const int32_t* id = ids.data_as<int32_t>();
  std::vector<int32_t> resolved;  // placeholders (< 0) -> the latest sample_async's tokens
  if (std::any_of(id, id + ids.numel(), [](int32_t t) { return t < 0; })) {
    resolved.assign(id, id + ids.numel());
    for (int32_t& t : resolved) {
      if (t < 0) t = resolve_placeholder(t);
    }
    id = resolved.data();
  }
  cpu::embedding(id, ids.numel(), table.data_as<float>(), table.dim(0), table.dim(1),
                 out.data_as<float>());
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  expect(x, DType::kF32, "x");
  expect(w, DType::kF32, "w");
  HARDKV_CHECK(x.dim(-1) == w.numel() && out.numel() == x.numel(), kInternal,
               "rms_norm x {} w {} out {}", shape_str(x.shape()), shape_str(w.shape()),
               shape_str(out.shape()));
  cpu::rms_norm(x.data_as<float>(), w.data_as<float>(), rows_of(x), x.dim(-1), eps,
                out.data_as<float>());
}

void CpuBackend::add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) {
  expect(x, DType::kF32, "x");
  expect(residual, DType::kF32, "residual");
  HARDKV_CHECK(x.numel() == residual.numel() && x.dim(-1) == w.numel(), kInternal,
               "add_rms_norm x {} residual {} w {}", shape_str(x.shape()),
               shape_str(residual.shape()), shape_str(w.shape()));
  cpu::add_rms_norm(x.data_as<float>(), residual.data_as<float>(), w.data_as<float>(), rows_of(x),
                    x.dim(-1), eps);
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  expect(x, DType::kF32, "x");
  expect(w, DType::kF32, "w");
  expect(out, DType::kF32, "out");
  const int64_t k = x.dim(-1), m = w.dim(0), n = rows_of(x);
  HARDKV_CHECK(w.dim(1) == k && out.numel() == n * m && (!bias || bias->numel() == m), kInternal,
               "linear x {} w {} out {}", shape_str(x.shape()), shape_str(w.shape()),
               shape_str(out.shape()));
  cpu::linear(x.data_as<float>(), w.data_as<float>(), bias ? bias->data_as<float>() : nullptr, n,
              k, m, out.data_as<float>());
}

void CpuBackend::rope(Tensor& x, const Tensor& positions, const Tensor& cos_sin) {
  expect(x, DType::kF32, "x");
  expect(positions, DType::kI32, "positions");
  expect(cos_sin, DType::kF32, "cos_sin");
  HARDKV_CHECK(x.ndim() == 3 && x.dim(0) == positions.numel() && cos_sin.dim(1) == x.dim(2),
               kInternal, "rope x {} positions {} cos_sin {}", shape_str(x.shape()),
               shape_str(positions.shape()), shape_str(cos_sin.shape()));
  cpu::rope(x.data_as<float>(), x.dim(0), x.dim(1), x.dim(2), positions.data_as<int32_t>(),
            cos_sin.data_as<float>(), cos_sin.dim(0));
}

void CpuBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  expect(gate_up, DType::kF32, "gate_up");
  expect(out, DType::kF32, "out");
  const int64_t inter = gate_up.dim(-1) / 2, t = rows_of(gate_up);
  HARDKV_CHECK(out.numel() == t * inter, kInternal, "silu_mul gate_up {} out {}",
               shape_str(gate_up.shape()), shape_str(out.shape()));
  cpu::silu_mul(gate_up.data_as<float>(), t, inter, out.data_as<float>());
}

void CpuBackend::kv_store(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache,
                          Tensor& v_cache) {
  expect(k, DType::kF32, "k");
  expect(v, DType::kF32, "v");
  expect(slots, DType::kI32, "slots");
  const int64_t row = k_cache.dim(2) * k_cache.dim(3);
  HARDKV_CHECK(k.numel() == slots.numel() * row && v.numel() == k.numel(), kInternal,
               "kv_store k {} cache {}", shape_str(k.shape()), shape_str(k_cache.shape()));
  cpu::kv_store(k.data_as<float>(), v.data_as<float>(), slots.data_as<int32_t>(), slots.numel(),
                row, k_cache.dim(0) * k_cache.dim(1), k_cache.data_as<float>(),
                v_cache.data_as<float>());
}

void CpuBackend::qkv_prepare(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm,
                             float eps, const Tensor& positions, const Tensor& cos_sin,
                             const Tensor& slots, Tensor& q_out, Tensor& k_cache,
                             Tensor& v_cache) {
  expect(qkv, DType::kF32, "qkv");
  expect(positions, DType::kI32, "positions");
  expect(slots, DType::kI32, "slots");
  expect(q_out, DType::kF32, "q_out");
  const int64_t t = q_out.dim(0), hq = q_out.dim(1), d = q_out.dim(2), hkv = k_cache.dim(2);
  HARDKV_CHECK(q_out.ndim() == 3 && qkv.numel() == t * (hq + 2 * hkv) * d &&
                   positions.numel() == t && slots.numel() == t && k_cache.dim(3) == d &&
                   cos_sin.dim(1) == d && (!q_norm || q_norm->numel() == d) &&
                   (!k_norm || k_norm->numel() == d),
               kInternal, "qkv_prepare qkv {} q_out {} cache {}", shape_str(qkv.shape()),
               shape_str(q_out.shape()), shape_str(k_cache.shape()));
  cpu::QkvPrepareArgs a{};
  a.qkv = qkv.data_as<float>();
  a.q_norm = q_norm ? q_norm->data_as<float>() : nullptr;
  a.k_norm = k_norm ? k_norm->data_as<float>() : nullptr;
  a.eps = eps;
  a.positions = positions.data_as<int32_t>();
  a.cos_sin = cos_sin.data_as<float>();
  a.max_pos = cos_sin.dim(0);
  a.slots = slots.data_as<int32_t>();
  a.q_out = q_out.data_as<float>();
  a.k_cache = k_cache.data_as<float>();
  a.v_cache = v_cache.data_as<float>();
  a.num_slots = k_cache.dim(0) * k_cache.dim(1);
  a.num_tokens = t;
  a.num_heads = hq;
  a.num_kv_heads = hkv;
  a.head_dim = d;
  cpu::qkv_prepare(a);
}

void CpuBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                           const AttentionMeta& meta, float scale, Tensor& out) {
  expect(q, DType::kF32, "q");
  expect(k_cache, DType::kF32, "k_cache");
  HARDKV_CHECK(q.ndim() == 3 && k_cache.ndim() == 4 && q.dim(2) == k_cache.dim(3) &&
                   meta.block_size == k_cache.dim(1) && out.numel() == q.numel(),
               kInternal, "attention q {} cache {} block_size {}", shape_str(q.shape()),
               shape_str(k_cache.shape()), meta.block_size);
  cpu::PagedAttentionArgs a{};
  a.q = q.data_as<float>();
  a.k_cache = k_cache.data_as<float>();
  a.v_cache = v_cache.data_as<float>();
  a.out = out.data_as<float>();
  a.query_indptr = meta.query_indptr.data_as<int32_t>();
  a.kv_lens = meta.kv_lens.data_as<int32_t>();
  a.block_indptr = meta.block_indptr.data_as<int32_t>();
  a.block_indices = meta.block_indices.data_as<int32_t>();
  a.num_seqs = meta.num_seqs;
  a.num_blocks = k_cache.dim(0);
  a.block_size = k_cache.dim(1);
  a.num_heads = q.dim(1);
  a.num_kv_heads = k_cache.dim(2);
  a.head_dim = q.dim(2);
  a.scale = scale;
  cpu::paged_attention(a);
}

void CpuBackend::gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) {
  expect(x, DType::kF32, "x");
  expect(idx, DType::kI32, "idx");
  HARDKV_CHECK(out.numel() == idx.numel() * x.dim(-1), kInternal, "gather_rows out {}",
               shape_str(out.shape()));
  cpu::gather_rows(x.data_as<float>(), rows_of(x), x.dim(-1), idx.data_as<int32_t>(),
                   idx.numel(), out.data_as<float>());
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace hardkv
