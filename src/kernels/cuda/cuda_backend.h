// CudaBackend: the Backend on one CUDA device (bf16 activations, weights and KV; fp32 math). All
// work is queued on one stream; scratch is a bump arena reset by release_scratch(), so a step
// that allocates in the same order gets the same addresses (CUDA-graph capture and replay).
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "kernels/backend.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/scratch_arena.h"

namespace hardkv::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_idx);
  ~CudaBackend() override;

  Device device() const override { return Device::kCUDA; }
  DType act_dtype() const override { return DType::kBF16; }
  const char* name() const override { return "cuda"; }

  Tensor alloc(DType dtype, Shape shape) override;
  Tensor scratch(DType dtype, Shape shape) override;
  void release_scratch() override;
  Tensor upload(const Tensor& host, DType dtype) override;
  void copy_from_host(Tensor& dst, const Tensor& host_src) override;
  Tensor download(const Tensor& t) override;
  void synchronize() override;

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override;
  void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) override;
  void rope(Tensor& x, const Tensor& positions, const Tensor& cos_sin) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void kv_store(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache,
                Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                 const AttentionMeta& meta, float scale, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override;

  // Qwen3 fused q/k RMSNorm + RoPE in place: x act [T, H, D], w act [D] (D % 64 == 0, <= 256).
  void qk_norm_rope(Tensor& x, const Tensor& w, float eps, const Tensor& positions,
                    const Tensor& cos_sin);

  // The stream all ops run on (for CUDA-graph capture by the model runner).
  cudaStream_t stream() const { return stream_; }
  int num_sms() const { return num_sms_; }

 private:
  // Copies host bytes to device through a pinned staging buffer (no stream sync when it fits).
  void copy_to_device_async(void* dst, const void* src, size_t bytes);

  int device_idx_;
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<LtGemm> gemm_;
  ScratchArena scratch_;
  char* staging_ = nullptr;  // pinned host memory, kStagingBytes, reused per step
  size_t staging_used_ = 0;
  cudaEvent_t staging_free_ = nullptr;  // recorded at release_scratch: staging reads finished
};

}  // namespace hardkv::cuda
