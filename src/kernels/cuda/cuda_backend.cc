// CudaBackend: shape/dtype checks on hardkv::Tensor, then the raw-pointer launchers in
// src/kernels/cuda/*.h; plus make_cuda_backend() and cuda_device_available().
#include "kernels/cuda/cuda_backend.h"

#include <cuda_bf16.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_attention.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm_skinny.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/kv_store.h"
#include "kernels/cuda/qkv_prepare.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/silu_mul.h"

namespace hardkv {

namespace cuda {
namespace {

// Each staging half's last kGraphStagingBytes serve graph steps (capture and replay), so a
// graph step's copies have fixed offsets whatever eager copies ran before it in the step (HARD-KV
// uploads its tier metadata eagerly before a graph replay); eager copies use the rest. A padded
// decode step's block tables take batch x max_model_len / block_size int32 (512 x 40,960 / 16:
// 5 MiB).
constexpr size_t kGraphStagingBytes = 8u << 20;
// Split counters for the decode kernel's in-kernel merge: (sequence, KV head) pairs per step.
constexpr int64_t kAttnCounters = 1 << 16;

bool env_not_zero(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::strcmp(v, "0") != 0;
}
// HARDKV_FUSED_ATTENTION=0: decode steps run qkv_prepare and attention as two kernels.
bool fused_attention_enabled() {
  static const bool on = env_not_zero("HARDKV_FUSED_ATTENTION");
  return on;
}
// HARDKV_ATTN_COMBINE=1: split-KV decode attention merges its splits in-kernel (the last split
// block of each (sequence, KV head)) instead of in the combine kernel. Off by default: H100,
// graph device time per step, on vs off: Qwen3-0.6B batch 1 ctx 512 0.995 vs 0.957 ms, ctx 4096
// 1.281 vs 1.318 ms, 256 x 512 7.417 vs 7.209 ms; Qwen3-8B ctx 512 6.017 vs 5.795 ms.
bool attn_combine_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_ATTN_COMBINE");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}
// The fused q/k/v preparation repeats the query heads' norm + RoPE in every split block: above
// this many splits (long contexts at small batch) the separate qkv_prepare kernel is faster (H100,
// Qwen3-0.6B batch 1: ctx 512, 10 splits, fused 0.995 vs 1.046 ms per step; ctx 4096, 66 splits,
// 1.281 vs 1.221 ms).
constexpr int kFusedAttentionMaxSplits = 16;
// HARDKV_ATTN_EARLY_KV=0: the fused decode kernel reads its metadata and first K/V step only
// after pdl_wait() (PagedAttentionParams::kv_before_wait).
bool attn_early_kv_enabled() {
  static const bool on = env_not_zero("HARDKV_ATTN_EARLY_KV");
  return on;
}

using bf16 = __nv_bfloat16;

void check_on_device(const Tensor& t, const char* op, const char* name) {
  HARDKV_CHECK(t.defined() && t.device() == Device::kCUDA, kInvalidArgument,
               "cuda {}: {} is not a CUDA tensor", op, name);
}

void check_dtype(const Tensor& t, DType dtype, const char* op, const char* name) {
  check_on_device(t, op, name);
  HARDKV_CHECK(t.dtype() == dtype, kInvalidArgument, "cuda {}: {} has dtype {}, expected {}", op,
               name, dtype_name(t.dtype()), dtype_name(dtype));
}

const bf16* cbf(const Tensor& t) { return static_cast<const bf16*>(t.data()); }
bf16* mbf(const Tensor& t) { return static_cast<bf16*>(t.data()); }
const int32_t* ci32(const Tensor& t) { return static_cast<const int32_t*>(t.data()); }

bool is_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

// The dtypes of qkv_prepare's inputs (shared by the fused decode op): bf16 qkv and norms, int32
// positions and slots, f32 cos/sin.
void check_qkv_dtypes(const char* op, const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm,
                      const Tensor& positions, const Tensor& cos_sin, const Tensor& slots) {
  check_dtype(qkv, DType::kBF16, op, "qkv");
  check_dtype(positions, DType::kI32, op, "positions");
  check_dtype(cos_sin, DType::kF32, op, "cos_sin");
  check_dtype(slots, DType::kI32, op, "slots");
  if (q_norm) check_dtype(*q_norm, DType::kBF16, op, "q_norm");
  if (k_norm) check_dtype(*k_norm, DType::kBF16, op, "k_norm");
}

}  // namespace

// Times one eager op with events when profiling is on.
class CudaBackend::ProfileScope {
 public:
  ProfileScope(CudaBackend* be, std::string name)
      : be_(be->profiling_ && be->mode_ == Mode::kEager ? be : nullptr), name_(std::move(name)) {
    if (be_) CUDA_CHECK(cudaEventRecord(be_->prof_start_, be_->stream_));
  }
  ~ProfileScope() {
    if (!be_) return;
    cudaEventRecord(be_->prof_stop_, be_->stream_);
    cudaEventSynchronize(be_->prof_stop_);
    float ms = 0;
    cudaEventElapsedTime(&ms, be_->prof_start_, be_->prof_stop_);
    OpTime& t = be_->op_times_[name_];
    ++t.calls;
    t.ms += ms;
  }

 private:
  CudaBackend* be_;
  std::string name_;
};

CudaBackend::CudaBackend(int device_idx) : device_idx_(device_idx) {
  CUDA_CHECK(cudaSetDevice(device_idx_));
  CUDA_CHECK(cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device_idx_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&staging_), 2 * kStagingHalfBytes));
  for (cudaEvent_t& e : staging_free_) {
    CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(e, stream_));
  }
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sampled_dev_), kMaxSampleRows * sizeof(int32_t)));
  CUDA_CHECK(cudaMemsetAsync(sampled_dev_, 0, kMaxSampleRows * sizeof(int32_t), stream_));
  for (SampleSlot& slot : sample_slots_) {
    // Mapped: the sampling kernel stores the tokens and log-probabilities here itself.
    CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&slot.host),
                             2 * kMaxSampleRows * sizeof(int32_t), cudaHostAllocMapped));
    CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&slot.dev), slot.host, 0));
    CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  }
  gemm_ = std::make_unique<LtGemm>();
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&gemv_counter_), sizeof(unsigned)));
  CUDA_CHECK(cudaMemsetAsync(gemv_counter_, 0, sizeof(unsigned), stream_));
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&attn_counters_), kAttnCounters * sizeof(unsigned)));
  CUDA_CHECK(cudaMemsetAsync(attn_counters_, 0, kAttnCounters * sizeof(unsigned), stream_));
  CUDA_CHECK(cudaEventCreate(&prof_start_));
  CUDA_CHECK(cudaEventCreate(&prof_stop_));
}

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  gemm_.reset();
  for (cudaEvent_t e : staging_free_) {
    if (e) cudaEventDestroy(e);
  }
  for (SampleSlot& slot : sample_slots_) {
    if (slot.done) cudaEventDestroy(slot.done);
    if (slot.host) cudaFreeHost(slot.host);
  }
  if (sampled_dev_) cudaFree(sampled_dev_);
  if (prof_start_) cudaEventDestroy(prof_start_);
  if (prof_stop_) cudaEventDestroy(prof_stop_);
  if (staging_) cudaFreeHost(staging_);
  if (gemv_counter_) cudaFree(gemv_counter_);
  if (attn_counters_) cudaFree(attn_counters_);
  if (stream_) cudaStreamDestroy(stream_);
}

// --- memory ------------------------------------------------------------------------------------

Tensor CudaBackend::alloc(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  void* p = nullptr;
  CUDA_CHECK(cudaSetDevice(device_idx_));
  const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    HARDKV_THROW(kOutOfMemory,
                 "cannot allocate {} bytes on CUDA device {} for a {} tensor {} ({} of {} bytes "
                 "free): use a smaller model, batch or KV cache",
                 bytes, device_idx_, dtype_name(dtype), shape_str(shape), free_b, total_b);
  }
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
  std::shared_ptr<void> owner(p, [](void* q) { cudaFree(q); });
  return Tensor::view(p, dtype, std::move(shape), Device::kCUDA, std::move(owner));
}

Tensor CudaBackend::scratch(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor::view(scratch_.allocate(bytes), dtype, std::move(shape), Device::kCUDA);
}

void CudaBackend::release_scratch() {
  scratch_.reset();
  // The half's copies are all queued: the event completes when they (and the step) have run.
  CUDA_CHECK(cudaEventRecord(staging_free_[staging_half_], stream_));
  staging_half_ ^= 1;
  staging_claimed_ = false;
  staging_used_ = 0;
  graph_staging_used_ = 0;
}

void CudaBackend::claim_staging_half() {
  if (staging_claimed_) return;
  // Two steps ago this half was filled; in an overlapped engine that step has been waited for.
  CUDA_CHECK(cudaEventSynchronize(staging_free_[staging_half_]));
  staging_claimed_ = true;
}

void CudaBackend::copy_to_device_async(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const bool eager = mode_ == Mode::kEager;
  size_t& used = eager ? staging_used_ : graph_staging_used_;
  const size_t capacity = eager ? kStagingHalfBytes - kGraphStagingBytes : kGraphStagingBytes;
  if (used + bytes > capacity) {
    HARDKV_CHECK(eager, kUnsupported,
                 "cuda: {} bytes of step metadata overflow the {}-byte staging buffer in a CUDA "
                 "graph step",
                 used + bytes, capacity);
    // Too big for the staging buffer: a pageable copy (the runtime syncs the stream first).
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return;
  }
  claim_staging_half();
  const size_t offset = used;
  char* s = staging_half() + (eager ? 0 : kStagingHalfBytes - kGraphStagingBytes) + offset;
  std::memcpy(s, src, bytes);
  const size_t slot_bytes = (bytes + 255) / 256 * 256;
  used += slot_bytes;
  if (!eager) {
    // Copies whole slots (a scratch allocation is rounded up to 256 bytes too), so that the op
    // sequence stays the same when a block table grows inside its slot.
    const size_t copy_bytes = scratch_.contains(dst, slot_bytes) ? slot_bytes : bytes;
    record_op(100, {dst, reinterpret_cast<const void*>(offset)}, static_cast<int64_t>(copy_bytes));
    graph_copies_.push_back({dst, offset, copy_bytes});
    return;
  }
  const ProfileScope prof(this, profiling_ ? "h2d metadata" : std::string());
  CUDA_CHECK(cudaMemcpyAsync(dst, s, bytes, cudaMemcpyHostToDevice, stream_));
}

Tensor CudaBackend::upload(const Tensor& host, DType dtype) {
  HARDKV_CHECK(host.defined() || host.numel() == 0, kInvalidArgument,
               "cuda upload: undefined tensor");
  HARDKV_CHECK(host.device() == Device::kCPU, kInvalidArgument,
               "cuda upload: source is not a host tensor");
  Tensor out = alloc(dtype, host.shape());
  const size_t n = static_cast<size_t>(host.numel());
  if (n == 0) return out;
  if (host.dtype() == dtype) {
    CUDA_CHECK(
        cudaMemcpyAsync(out.data(), host.data(), host.nbytes(), cudaMemcpyHostToDevice, stream_));
  } else {
    HARDKV_CHECK(is_float(host.dtype()) && is_float(dtype), kInvalidArgument,
                 "cuda upload: cannot convert {} to {} (only float dtypes convert)",
                 dtype_name(host.dtype()), dtype_name(dtype));
    std::vector<float> f32(n);
    convert_to_f32(host.data(), host.dtype(), f32.data(), n);
    std::vector<char> converted(n * dtype_size(dtype));
    convert_from_f32(f32.data(), converted.data(), dtype, n);
    CUDA_CHECK(cudaMemcpyAsync(out.data(), converted.data(), converted.size(),
                               cudaMemcpyHostToDevice, stream_));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host buffers may go away on return
  return out;
}

void CudaBackend::copy_from_host(Tensor& dst, const Tensor& host_src) {
  check_on_device(dst, "copy_from_host", "dst");
  HARDKV_CHECK(host_src.device() == Device::kCPU && host_src.dtype() == dst.dtype() &&
                   host_src.numel() == dst.numel(),
               kInvalidArgument, "cuda copy_from_host: host {} {} does not match device {} {}",
               dtype_name(host_src.dtype()), shape_str(host_src.shape()), dtype_name(dst.dtype()),
               shape_str(dst.shape()));
  copy_to_device_async(dst.data(), host_src.data(), dst.nbytes());
}

Tensor CudaBackend::download(const Tensor& t) {
  check_on_device(t, "download", "tensor");
  Tensor host = Tensor::empty(t.dtype(), t.shape());
  if (t.nbytes() > 0) {
    CUDA_CHECK(cudaMemcpyAsync(host.data(), t.data(), t.nbytes(), cudaMemcpyDeviceToHost, stream_));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return host;
}

void CudaBackend::synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

// --- ops ---------------------------------------------------------------------------------------

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  check_dtype(ids, DType::kI32, "embedding", "ids");
  check_dtype(table, DType::kBF16, "embedding", "table");
  check_dtype(out, DType::kBF16, "embedding", "out");
  HARDKV_CHECK(table.ndim() == 2 && out.numel() == ids.numel() * table.dim(1), kInvalidArgument,
               "cuda embedding: ids {} table {} out {}", shape_str(ids.shape()),
               shape_str(table.shape()), shape_str(out.shape()));
  const ProfileScope prof(this, "embedding");
  if (record_op(1, {ids.data(), table.data(), out.data()}, ids.numel())) return;
  launch_embedding(ci32(ids), sampled_dev_, kMaxSampleRows, cbf(table), mbf(out), ids.numel(),
                   table.dim(1), table.dim(0), stream_);
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  check_dtype(x, DType::kBF16, "rms_norm", "x");
  check_dtype(w, DType::kBF16, "rms_norm", "w");
  check_dtype(out, DType::kBF16, "rms_norm", "out");
  const int64_t dim = w.numel();
  HARDKV_CHECK(dim > 0 && x.dim(-1) == dim && out.numel() == x.numel(), kInvalidArgument,
               "cuda rms_norm: x {} w {} out {}", shape_str(x.shape()), shape_str(w.shape()),
               shape_str(out.shape()));
  const ProfileScope prof(this, "rms_norm");
  if (record_op(2, {x.data(), w.data(), out.data()}, x.numel())) return;
  launch_rms_norm(cbf(x), cbf(w), eps, mbf(out), x.numel() / dim, dim, stream_);
}

void CudaBackend::add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) {
  check_dtype(x, DType::kBF16, "add_rms_norm", "x");
  check_dtype(residual, DType::kBF16, "add_rms_norm", "residual");
  check_dtype(w, DType::kBF16, "add_rms_norm", "w");
  const int64_t dim = w.numel();
  HARDKV_CHECK(dim > 0 && x.dim(-1) == dim && residual.numel() == x.numel(), kInvalidArgument,
               "cuda add_rms_norm: x {} residual {} w {}", shape_str(x.shape()),
               shape_str(residual.shape()), shape_str(w.shape()));
  const ProfileScope prof(this, "add_rms_norm");
  if (record_op(3, {x.data(), residual.data(), w.data()}, x.numel())) return;
  launch_add_rms_norm(mbf(x), mbf(residual), cbf(w), eps, x.numel() / dim, dim, stream_);
}

void CudaBackend::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  check_dtype(x, DType::kBF16, "linear", "x");
  check_dtype(w, DType::kBF16, "linear", "w");
  check_on_device(out, "linear", "out");
  HARDKV_CHECK(out.dtype() == DType::kBF16 || out.dtype() == DType::kF32, kInvalidArgument,
               "cuda linear: out dtype {} (BF16 or F32)", dtype_name(out.dtype()));
  HARDKV_CHECK(w.ndim() == 2, kInvalidArgument, "cuda linear: w {} is not 2-D",
               shape_str(w.shape()));
  const int64_t m = w.dim(0), k = w.dim(1);
  HARDKV_CHECK(x.dim(-1) == k && out.dim(-1) == m && out.numel() / m == x.numel() / k,
               kInvalidArgument, "cuda linear: x {} w {} out {}", shape_str(x.shape()),
               shape_str(w.shape()), shape_str(out.shape()));
  const bf16* b = nullptr;
  if (bias != nullptr && bias->defined()) {
    check_dtype(*bias, DType::kBF16, "linear", "bias");
    HARDKV_CHECK(bias->numel() == m, kInvalidArgument, "cuda linear: bias {} for {} outputs",
                 shape_str(bias->shape()), m);
    b = cbf(*bias);
  }
  const ProfileScope prof(this, profiling_ ? fmt::format("linear {}x{}->{}{}", x.numel() / k, k, m,
                                                         out.dtype() == DType::kF32 ? " f32" : "")
                                           : std::string());
  if (record_op(4, {x.data(), w.data(), b, out.data()},
                x.numel() * 4 + (out.dtype() == DType::kF32)))
    return;
  const int64_t n = x.numel() / k;
  // Decode-sized batches stream the weights with the skinny kernel; larger ones go to cuBLASLt.
  if (gemv_supported(x.data(), w.data(), n, k)) {
    launch_gemv(cbf(x), cbf(w), b, out.data(), out.dtype() == DType::kF32, n, m, k, num_sms_,
                stream_);
  } else if (n > kGemvMaxRows && out.dtype() == DType::kBF16 && gemm_skinny_dispatch(n, m, k) &&
             gemm_skinny_supported(x.data(), w.data(), b, out.data(), n, m, k)) {
    launch_gemm_skinny(cbf(x), cbf(w), b, mbf(out), n, m, k, num_sms_, stream_);
  } else {
    gemm_->run(cbf(x), cbf(w), b, out.data(), out.dtype() == DType::kF32, n, m, k, stream_);
  }
}

const bf16* CudaBackend::linear_bias(const Tensor* bias, int64_t m, const char* op) {
  if (bias == nullptr || !bias->defined()) return nullptr;
  check_dtype(*bias, DType::kBF16, op, "bias");
  HARDKV_CHECK(bias->numel() == m, kInvalidArgument, "cuda {}: bias {} for {} outputs", op,
               shape_str(bias->shape()), m);
  return cbf(*bias);
}

void CudaBackend::add_rms_norm_linear(Tensor& x, Tensor& residual, const Tensor& norm_w,
                                      float eps, const Tensor& w, const Tensor* bias, Tensor& out) {
  check_dtype(x, DType::kBF16, "add_rms_norm_linear", "x");
  check_dtype(residual, DType::kBF16, "add_rms_norm_linear", "residual");
  check_dtype(norm_w, DType::kBF16, "add_rms_norm_linear", "norm_w");
  check_dtype(w, DType::kBF16, "add_rms_norm_linear", "w");
  const int64_t k = norm_w.numel();
  const bool fusable = out.dtype() == DType::kBF16 && w.ndim() == 2 && w.dim(1) == k &&
                       x.dim(-1) == k && residual.numel() == x.numel() &&
                       out.numel() == x.numel() / k * w.dim(0) &&
                       gemv_prologue_supported(x.data(), w.data(), x.numel() / k, k) &&
                       reinterpret_cast<uintptr_t>(residual.data()) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(norm_w.data()) % 16 == 0;
  if (!fusable) {  // the general path checks and reports the shapes
    add_rms_norm(x, residual, norm_w, eps);
    linear(x, w, bias, out);
    return;
  }
  check_on_device(out, "add_rms_norm_linear", "out");
  const int64_t m = w.dim(0), n = x.numel() / k;
  const bf16* b = linear_bias(bias, m, "add_rms_norm_linear");
  const ProfileScope prof(
      this, profiling_ ? fmt::format("add_rms_norm+linear {}x{}->{}", n, k, m) : std::string());
  if (record_op(13, {x.data(), residual.data(), norm_w.data(), w.data(), b, out.data()},
                x.numel()))
    return;
  launch_add_rms_norm_gemv(mbf(x), mbf(residual), cbf(norm_w), eps, gemv_counter_, cbf(w), b,
                           mbf(out), n, m, k, num_sms_, stream_);
}

void CudaBackend::silu_mul_linear(const Tensor& gate_up, const Tensor& w, const Tensor* bias,
                                  Tensor& mid, Tensor& out) {
  check_dtype(gate_up, DType::kBF16, "silu_mul_linear", "gate_up");
  check_dtype(w, DType::kBF16, "silu_mul_linear", "w");
  const int64_t k = w.ndim() == 2 ? w.dim(1) : -1;
  const bool fusable = k > 0 && out.dtype() == DType::kBF16 && gate_up.dim(-1) == 2 * k &&
                       out.numel() == gate_up.numel() / (2 * k) * w.dim(0) &&
                       gemv_prologue_supported(gate_up.data(), w.data(), gate_up.numel() / (2 * k),
                                               k);
  if (!fusable) {
    silu_mul(gate_up, mid);
    linear(mid, w, bias, out);
    return;
  }
  check_on_device(out, "silu_mul_linear", "out");
  const int64_t m = w.dim(0), n = gate_up.numel() / (2 * k);
  const bf16* b = linear_bias(bias, m, "silu_mul_linear");
  const ProfileScope prof(
      this, profiling_ ? fmt::format("silu_mul+linear {}x{}->{}", n, k, m) : std::string());
  if (record_op(14, {gate_up.data(), w.data(), b, out.data()}, gate_up.numel())) return;
  launch_silu_mul_gemv(cbf(gate_up), cbf(w), b, mbf(out), n, m, k, num_sms_, stream_);
}

void CudaBackend::rope(Tensor& x, const Tensor& positions, const Tensor& cos_sin) {
  check_dtype(x, DType::kBF16, "rope", "x");
  check_dtype(positions, DType::kI32, "rope", "positions");
  check_dtype(cos_sin, DType::kF32, "rope", "cos_sin");
  HARDKV_CHECK(x.ndim() == 3 && positions.numel() == x.dim(0) && cos_sin.ndim() == 2 &&
                   cos_sin.dim(1) == x.dim(2),
               kInvalidArgument, "cuda rope: x {} positions {} cos_sin {}", shape_str(x.shape()),
               shape_str(positions.shape()), shape_str(cos_sin.shape()));
  const ProfileScope prof(this, "rope");
  if (record_op(5, {x.data(), positions.data(), cos_sin.data()}, x.numel())) return;
  launch_rope(mbf(x), ci32(positions), cos_sin.data_as<float>(), x.dim(0), x.dim(1), x.dim(2),
              cos_sin.dim(0), stream_);
}

void CudaBackend::qk_norm_rope(Tensor& x, const Tensor& w, float eps, const Tensor& positions,
                               const Tensor& cos_sin) {
  check_dtype(x, DType::kBF16, "qk_norm_rope", "x");
  check_dtype(w, DType::kBF16, "qk_norm_rope", "w");
  check_dtype(positions, DType::kI32, "qk_norm_rope", "positions");
  check_dtype(cos_sin, DType::kF32, "qk_norm_rope", "cos_sin");
  HARDKV_CHECK(x.ndim() == 3 && positions.numel() == x.dim(0) && w.numel() == x.dim(2) &&
                   cos_sin.ndim() == 2 && cos_sin.dim(1) == x.dim(2),
               kInvalidArgument, "cuda qk_norm_rope: x {} w {} positions {} cos_sin {}",
               shape_str(x.shape()), shape_str(w.shape()), shape_str(positions.shape()),
               shape_str(cos_sin.shape()));
  const ProfileScope prof(this, "qk_norm_rope");
  if (record_op(6, {x.data(), w.data(), positions.data(), cos_sin.data()}, x.numel())) return;
  launch_qk_norm_rope(mbf(x), cbf(w), eps, ci32(positions), cos_sin.data_as<float>(), x.dim(0),
                      x.dim(1), x.dim(2), cos_sin.dim(0), stream_);
}

void CudaBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  check_dtype(gate_up, DType::kBF16, "silu_mul", "gate_up");
  check_dtype(out, DType::kBF16, "silu_mul", "out");
  const int64_t inter = out.dim(-1);
  HARDKV_CHECK(gate_up.dim(-1) == 2 * inter && gate_up.numel() == 2 * out.numel(), kInvalidArgument,
               "cuda silu_mul: gate_up {} out {}", shape_str(gate_up.shape()),
               shape_str(out.shape()));
  const ProfileScope prof(this, "silu_mul");
  if (record_op(7, {gate_up.data(), out.data()}, out.numel())) return;
  launch_silu_mul(cbf(gate_up), mbf(out), out.numel() / inter, inter, stream_);
}

void CudaBackend::qkv_prepare(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm,
                              float eps, const Tensor& positions, const Tensor& cos_sin,
                              const Tensor& slots, Tensor& q_out, Tensor& k_cache,
                              Tensor& v_cache) {
  check_qkv_dtypes("qkv_prepare", qkv, q_norm, k_norm, positions, cos_sin, slots);
  check_dtype(q_out, DType::kBF16, "qkv_prepare", "q_out");
  check_dtype(k_cache, DType::kBF16, "qkv_prepare", "k_cache");
  check_dtype(v_cache, DType::kBF16, "qkv_prepare", "v_cache");
  const int64_t t = q_out.dim(0), hq = q_out.dim(1), d = q_out.dim(2), hkv = k_cache.dim(2);
  HARDKV_CHECK(q_out.ndim() == 3 && k_cache.ndim() == 4 && k_cache.shape() == v_cache.shape() &&
                   k_cache.dim(3) == d && qkv.numel() == t * (hq + 2 * hkv) * d &&
                   positions.numel() == t && slots.numel() == t && cos_sin.dim(1) == d &&
                   (!q_norm || q_norm->numel() == d) && (!k_norm || k_norm->numel() == d),
               kInvalidArgument, "cuda qkv_prepare: qkv {} q_out {} caches {} positions {}",
               shape_str(qkv.shape()), shape_str(q_out.shape()), shape_str(k_cache.shape()),
               shape_str(positions.shape()));
  QkvPrepareParams p;
  p.qkv = cbf(qkv);
  p.q_norm = q_norm ? cbf(*q_norm) : nullptr;
  p.k_norm = k_norm ? cbf(*k_norm) : nullptr;
  p.eps = eps;
  p.positions = ci32(positions);
  p.cos_sin = cos_sin.data_as<const float>();
  p.max_pos = cos_sin.dim(0);
  p.slots = ci32(slots);
  p.q_out = mbf(q_out);
  p.k_cache = mbf(k_cache);
  p.v_cache = mbf(v_cache);
  p.num_slots = k_cache.dim(0) * k_cache.dim(1);
  p.num_tokens = t;
  p.num_heads = hq;
  p.num_kv_heads = hkv;
  p.head_dim = d;
  const ProfileScope prof(this, "qkv_prepare");
  if (record_op(12,
                {qkv.data(), positions.data(), slots.data(), q_out.data(), k_cache.data(),
                 v_cache.data(), p.q_norm, p.k_norm},
                qkv.numel()))
    return;
  launch_qkv_prepare(p, stream_);
}

void CudaBackend::kv_store(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache,
                           Tensor& v_cache) {
  check_dtype(k, DType::kBF16, "kv_store", "k");
  check_dtype(v, DType::kBF16, "kv_store", "v");
  check_dtype(slots, DType::kI32, "kv_store", "slots");
  check_dtype(k_cache, DType::kBF16, "kv_store", "k_cache");
  check_dtype(v_cache, DType::kBF16, "kv_store", "v_cache");
  HARDKV_CHECK(k_cache.ndim() == 4 && k_cache.shape() == v_cache.shape() &&
                   k.shape() == v.shape() && k.dim(0) == slots.numel(),
               kInvalidArgument, "cuda kv_store: k {} v {} slots {} caches {} {}",
               shape_str(k.shape()), shape_str(v.shape()), shape_str(slots.shape()),
               shape_str(k_cache.shape()), shape_str(v_cache.shape()));
  const int64_t row = k_cache.dim(2) * k_cache.dim(3);
  const int64_t num_tokens = slots.numel();
  HARDKV_CHECK(k.numel() == num_tokens * row, kInvalidArgument,
               "cuda kv_store: k {} does not hold {} rows of {} (cache {})", shape_str(k.shape()),
               num_tokens, row, shape_str(k_cache.shape()));
  const ProfileScope prof(this, "kv_store");
  if (record_op(8, {k.data(), v.data(), slots.data(), k_cache.data(), v_cache.data()}, k.numel()))
    return;
  launch_kv_store(cbf(k), cbf(v), ci32(slots), mbf(k_cache), mbf(v_cache), num_tokens, row,
                  k_cache.dim(0) * k_cache.dim(1), stream_);
}

PagedAttentionParams CudaBackend::attention_params(const Tensor& q, const Tensor& k_cache,
                                                   const Tensor& v_cache, const AttentionMeta& meta,
                                                   float scale, Tensor& out) {
  check_dtype(q, DType::kBF16, "attention", "q");
  check_dtype(k_cache, DType::kBF16, "attention", "k_cache");
  check_dtype(v_cache, DType::kBF16, "attention", "v_cache");
  check_dtype(out, DType::kBF16, "attention", "out");
  check_dtype(meta.query_indptr, DType::kI32, "attention", "query_indptr");
  check_dtype(meta.kv_lens, DType::kI32, "attention", "kv_lens");
  check_dtype(meta.block_indptr, DType::kI32, "attention", "block_indptr");
  check_dtype(meta.block_indices, DType::kI32, "attention", "block_indices");
  HARDKV_CHECK(q.ndim() == 3 && k_cache.ndim() == 4 && k_cache.shape() == v_cache.shape() &&
                   out.shape() == q.shape() && q.dim(2) == k_cache.dim(3) &&
                   q.dim(0) == meta.num_tokens && k_cache.dim(1) == meta.block_size,
               kInvalidArgument,
               "cuda attention: q {} caches {} {} out {} (meta: {} tokens, block size {})",
               shape_str(q.shape()), shape_str(k_cache.shape()), shape_str(v_cache.shape()),
               shape_str(out.shape()), meta.num_tokens, meta.block_size);
  HARDKV_CHECK(
      meta.query_indptr.numel() == meta.num_seqs + 1 && meta.kv_lens.numel() == meta.num_seqs &&
          meta.block_indptr.numel() == meta.num_seqs + 1,
      kInvalidArgument, "cuda attention: metadata arrays do not match {} sequences", meta.num_seqs);
  PagedAttentionParams p;
  p.q = cbf(q);
  p.k_cache = cbf(k_cache);
  p.v_cache = cbf(v_cache);
  p.out = mbf(out);
  p.query_indptr = ci32(meta.query_indptr);
  p.kv_lens = ci32(meta.kv_lens);
  p.block_indptr = ci32(meta.block_indptr);
  p.block_indices = ci32(meta.block_indices);
  p.num_seqs = meta.num_seqs;
  p.num_tokens = meta.num_tokens;
  p.num_q_heads = static_cast<int>(q.dim(1));
  p.num_kv_heads = static_cast<int>(k_cache.dim(2));
  p.head_dim = static_cast<int>(q.dim(2));
  p.block_size = meta.block_size;
  p.max_query_len = meta.max_query_len;
  p.max_kv_len = meta.max_kv_len;
  if (mode_ != Mode::kEager) {
    HARDKV_CHECK(meta.max_kv_len <= graph_kv_bound_, kInvalidArgument,
                 "cuda graph step: KV length {} exceeds the graph's bound {}", meta.max_kv_len,
                 graph_kv_bound_);
    p.max_kv_len = graph_kv_bound_;  // plan (splits, chunk) for every length the graph serves
  }
  p.scale = scale;
  const size_t workspace_floats = plan_paged_attention(p, num_sms_);
  if (workspace_floats > 0) {
    auto* ws = static_cast<float*>(scratch_.allocate(workspace_floats * sizeof(float)));
    p.partial_o = ws;
    p.partial_ml =
        ws + static_cast<size_t>(p.num_splits) * p.num_tokens * p.num_q_heads * p.head_dim;
  }
  const bool decode_kernel =
      p.max_query_len == 1 && decode_attention_supported(p.head_dim, p.num_q_heads / p.num_kv_heads);
  if (p.num_splits > 1 && decode_kernel && !p.cluster_merge && attn_combine_enabled() &&
      static_cast<int64_t>(p.num_seqs) * p.num_kv_heads <= kAttnCounters) {
    p.split_counters = attn_counters_;
  }
  return p;
}

void CudaBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                            const AttentionMeta& meta, float scale, Tensor& out) {
  launch_attention_op(attention_params(q, k_cache, v_cache, meta, scale, out));
}

void CudaBackend::launch_attention_op(const PagedAttentionParams& p) {
  const ProfileScope prof(
      this, profiling_ ? fmt::format("attention q{} splits{}", p.num_tokens, p.num_splits)
                       : std::string());
  if (record_op(9,
                {p.q, p.k_cache, p.v_cache, p.out, p.partial_o, p.query_indptr, p.kv_lens,
                 p.block_indptr, p.block_indices, p.split_counters},
                static_cast<int64_t>(p.num_tokens) * 1000003 + p.num_splits * 1009 + p.kv_chunk))
    return;
  launch_paged_attention(p, stream_);
}

void CudaBackend::qkv_prepare_attention(const Tensor& qkv, const Tensor* q_norm,
                                        const Tensor* k_norm, float eps, const Tensor& positions,
                                        const Tensor& cos_sin, const Tensor& slots, Tensor& q_out,
                                        Tensor& k_cache, Tensor& v_cache,
                                        const AttentionMeta& meta, float scale, Tensor& out) {
  const int64_t hq = q_out.ndim() == 3 ? q_out.dim(1) : 0;
  const int64_t hkv = k_cache.ndim() == 4 ? k_cache.dim(2) : 0;
  const int64_t d = q_out.ndim() == 3 ? q_out.dim(2) : 0;
  const bool fusable = fused_attention_enabled() && meta.max_query_len == 1 && hkv > 0 &&
                       hq % hkv == 0 && decode_attention_supported(static_cast<int>(d),
                                                                   static_cast<int>(hq / hkv));
  if (!fusable) {
    Backend::qkv_prepare_attention(qkv, q_norm, k_norm, eps, positions, cos_sin, slots, q_out,
                                   k_cache, v_cache, meta, scale, out);
    return;
  }
  check_qkv_dtypes("qkv_prepare_attention", qkv, q_norm, k_norm, positions, cos_sin, slots);
  const int64_t t = q_out.dim(0);
  HARDKV_CHECK(qkv.numel() == t * (hq + 2 * hkv) * d && positions.numel() == t &&
                   slots.numel() == t && cos_sin.ndim() == 2 && cos_sin.dim(1) == d &&
                   (!q_norm || q_norm->numel() == d) && (!k_norm || k_norm->numel() == d),
               kInvalidArgument,
               "cuda qkv_prepare_attention: qkv {} q_out {} caches {} positions {} slots {}",
               shape_str(qkv.shape()), shape_str(q_out.shape()), shape_str(k_cache.shape()),
               shape_str(positions.shape()), shape_str(slots.shape()));
  PagedAttentionParams p = attention_params(q_out, k_cache, v_cache, meta, scale, out);
  if (p.num_splits > kFusedAttentionMaxSplits) {  // the two kernels
    qkv_prepare(qkv, q_norm, k_norm, eps, positions, cos_sin, slots, q_out, k_cache, v_cache);
    launch_attention_op(p);
    return;
  }
  p.qkv = cbf(qkv);
  p.q_norm = q_norm ? cbf(*q_norm) : nullptr;
  p.k_norm = k_norm ? cbf(*k_norm) : nullptr;
  p.eps = eps;
  p.positions = ci32(positions);
  p.cos_sin = cos_sin.data_as<const float>();
  p.max_pos = static_cast<int>(cos_sin.dim(0));
  p.slots = ci32(slots);
  p.num_slots = k_cache.dim(0) * k_cache.dim(1);
  p.k_cache_w = mbf(k_cache);
  p.v_cache_w = mbf(v_cache);
  p.kv_before_wait = attn_early_kv_enabled();
  const ProfileScope prof(
      this, profiling_ ? fmt::format("qkv_prepare+attention q{} splits{}", p.num_tokens,
                                     p.num_splits)
                       : std::string());
  if (record_op(15,
                {p.qkv, p.q_norm, p.k_norm, p.positions, p.cos_sin, p.slots, p.k_cache, p.v_cache,
                 p.out, p.partial_o, p.query_indptr, p.kv_lens, p.block_indptr, p.block_indices,
                 p.split_counters},
                static_cast<int64_t>(p.num_tokens) * 1000003 + p.num_splits * 1009 + p.kv_chunk))
    return;
  launch_paged_attention(p, stream_);
}

void CudaBackend::gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) {
  check_dtype(x, DType::kBF16, "gather_rows", "x");
  check_dtype(idx, DType::kI32, "gather_rows", "idx");
  check_dtype(out, DType::kBF16, "gather_rows", "out");
  const int64_t width = x.dim(-1);
  HARDKV_CHECK(out.dim(-1) == width && out.numel() == idx.numel() * width, kInvalidArgument,
               "cuda gather_rows: x {} idx {} out {}", shape_str(x.shape()), shape_str(idx.shape()),
               shape_str(out.shape()));
  const ProfileScope prof(this, "gather_rows");
  if (record_op(10, {x.data(), idx.data(), out.data()}, idx.numel())) return;
  launch_gather_rows(cbf(x), ci32(idx), mbf(out), idx.numel(), width, x.numel() / width, stream_);
}

bool CudaBackend::record_op(int op, std::initializer_list<const void*> ptrs, int64_t size) {
  if (mode_ == Mode::kEager) return false;
  auto mix = [this](uint64_t v) {
    signature_ ^= v + 0x9e3779b97f4a7c15ull + (signature_ << 6) + (signature_ >> 2);
  };
  mix(static_cast<uint64_t>(op));
  for (const void* p : ptrs) mix(reinterpret_cast<uintptr_t>(p));
  mix(static_cast<uint64_t>(size));
  return mode_ == Mode::kReplay;
}

size_t CudaBackend::graph_copy_bytes() const { return kGraphStagingBytes; }

CudaBackend::Graph::~Graph() {
  if (exec) cudaGraphExecDestroy(exec);
}

void CudaBackend::begin_capture(int kv_bound) {
  HARDKV_CHECK(mode_ == Mode::kEager && kv_bound > 0, kInternal,
               "cuda: begin_capture while in a graph step, or kv_bound {} <= 0", kv_bound);
  mode_ = Mode::kCapture;
  graph_kv_bound_ = kv_bound;
  signature_ = 0;
  graph_staging_used_ = 0;
  graph_copies_.clear();
  CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
}

std::unique_ptr<StepGraph> CudaBackend::end_capture() {
  HARDKV_CHECK(mode_ == Mode::kCapture, kInternal, "cuda: end_capture without begin_capture");
  mode_ = Mode::kEager;
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  auto g = std::make_unique<Graph>();
  g->signature = signature_;
  g->kv_bound = graph_kv_bound_;
  const cudaError_t err = cudaGraphInstantiate(&g->exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDA_CHECK(err);
  return g;
}

void CudaBackend::begin_replay(const StepGraph& step_graph) {
  const Graph& graph = static_cast<const Graph&>(step_graph);
  HARDKV_CHECK(mode_ == Mode::kEager, kInternal, "cuda: begin_replay inside a graph step");
  mode_ = Mode::kReplay;
  graph_kv_bound_ = graph.kv_bound;
  signature_ = 0;
  graph_staging_used_ = 0;
  graph_copies_.clear();
}

bool CudaBackend::end_replay(const StepGraph& step_graph) {
  const Graph& graph = static_cast<const Graph&>(step_graph);
  HARDKV_CHECK(mode_ == Mode::kReplay, kInternal, "cuda: end_replay without begin_replay");
  mode_ = Mode::kEager;
  if (signature_ != graph.signature) return false;  // shapes, buffers or op order changed
  launch_graph(graph);
  return true;
}

void CudaBackend::launch_graph(const StepGraph& graph) {
  // The step's staged metadata first (none when a graph is launched again as it is).
  const char* graph_part = staging_half() + (kStagingHalfBytes - kGraphStagingBytes);
  for (const StagedCopy& c : graph_copies_) {
    CUDA_CHECK(cudaMemcpyAsync(c.dst, graph_part + c.offset, c.bytes, cudaMemcpyHostToDevice,
                               stream_));
  }
  graph_copies_.clear();
  CUDA_CHECK(cudaGraphLaunch(static_cast<const Graph&>(graph).exec, stream_));
}

DeviceMemory CudaBackend::memory() const {
  CUDA_CHECK(cudaSetDevice(device_idx_));
  DeviceMemory m;
  CUDA_CHECK(cudaMemGetInfo(&m.free, &m.total));
  return m;
}

}  // namespace cuda

bool cuda_device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return count > 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device_idx) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    HARDKV_THROW(kUnsupported, "no CUDA device is available ({}); use --backend cpu",
                 err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
  }
  HARDKV_CHECK(device_idx >= 0 && device_idx < count, kInvalidArgument,
               "CUDA device {} does not exist ({} present)", device_idx, count);
  return std::make_unique<cuda::CudaBackend>(device_idx);
}

}  // namespace hardkv
