// CpuBackend: the reference Backend (fp32 activations, weights and KV) over the cpu:: kernels.
#pragma once

#include <memory>
#include <vector>

#include "kernels/backend.h"

namespace hardkv {

class CpuBackend final : public Backend {
 public:
  // Sets OpenBLAS to HARDKV_CPU_BLAS_THREADS threads (default 1): its spinning worker threads
  // made small decode GEMMs up to 5x slower on a busy 2-core machine (measured in
  // `hardkv bench` on hardkv-tiny); OpenMP loops parallelise only large work instead.
  CpuBackend();
  Device device() const override { return Device::kCPU; }
  DType act_dtype() const override { return DType::kF32; }
  const char* name() const override { return "cpu"; }

  Tensor alloc(DType dtype, Shape shape) override;
  Tensor scratch(DType dtype, Shape shape) override;
  void release_scratch() override { scratch_next_ = 0; }
  Tensor upload(const Tensor& host, DType dtype) override;
  void copy_from_host(Tensor& dst, const Tensor& host_src) override;
  Tensor download(const Tensor& t) override;
  void synchronize() override {}

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override;
  void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) override;
  void rope(Tensor& x, const Tensor& positions, const Tensor& cos_sin) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void kv_store(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache,
                Tensor& v_cache) override;
  void qkv_prepare(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm, float eps,
                   const Tensor& positions, const Tensor& cos_sin, const Tensor& slots,
                   Tensor& q_out, Tensor& k_cache, Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                 const AttentionMeta& meta, float scale, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override;

 private:
  // Step-scoped buffers, handed out in allocation order and reused after release_scratch(): a
  // fresh zeroed allocation per step cost more than the decode math (page faults + memset).
  struct ScratchBuffer {
    std::shared_ptr<void> memory;
    size_t capacity = 0;  // bytes
  };
  std::vector<ScratchBuffer> scratch_pool_;
  size_t scratch_next_ = 0;
};

}  // namespace hardkv
