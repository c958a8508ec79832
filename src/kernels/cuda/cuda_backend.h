// CudaBackend: the Backend on one CUDA device (bf16 activations, weights and KV; fp32 math). All
// work is queued on one stream; scratch is a bump arena reset by release_scratch(), so a step
// that allocates in the same order gets the same addresses (CUDA-graph capture and replay).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/attention.h"
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
  // Decode-sized rows (GEMV path, x in 47 KB): one kernel each (HARDKV_FUSED_GEMV=0: two).
  void add_rms_norm_linear(Tensor& x, Tensor& residual, const Tensor& norm_w, float eps,
                           const Tensor& w, const Tensor* bias, Tensor& out) override;
  void silu_mul_linear(const Tensor& gate_up, const Tensor& w, const Tensor* bias, Tensor& mid,
                       Tensor& out) override;
  void rope(Tensor& x, const Tensor& positions, const Tensor& cos_sin) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void kv_store(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache,
                Tensor& v_cache) override;
  void qkv_prepare(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm, float eps,
                   const Tensor& positions, const Tensor& cos_sin, const Tensor& slots,
                   Tensor& q_out, Tensor& k_cache, Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                 const AttentionMeta& meta, float scale, Tensor& out) override;
  // Decode steps (one query token per sequence, decode kernel shapes, at most 16 KV splits): one
  // kernel (HARDKV_FUSED_ATTENTION=0: qkv_prepare + attention).
  void qkv_prepare_attention(const Tensor& qkv, const Tensor* q_norm, const Tensor* k_norm,
                             float eps, const Tensor& positions, const Tensor& cos_sin,
                             const Tensor& slots, Tensor& q_out, Tensor& k_cache, Tensor& v_cache,
                             const AttentionMeta& meta, float scale, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& idx, Tensor& out) override;
  // GPU sampling (cuda_backend_sample.cc): only tokens (and log-probabilities) leave the device.
  // The tokens stay in a device buffer that embedding() reads placeholder ids from; the results
  // come back through pinned slots, one per outstanding ticket.
  SampleResult sample(const Tensor& logits, const SampleRows& rows) override;
  int64_t sample_async(const Tensor& logits, const SampleRows& rows) override;
  SampleResult sample_wait(int64_t ticket) override;
  // The most rows one sample may have (the device token buffer's size).
  static constexpr int kMaxSampleRows = 1 << 16;

  // Qwen3 fused q/k RMSNorm + RoPE in place: x act [T, H, D], w act [D] (D % 64 == 0, <= 256).
  void qk_norm_rope(Tensor& x, const Tensor& w, float eps, const Tensor& positions,
                    const Tensor& cos_sin);

  // The stream all ops run on.
  cudaStream_t stream() const { return stream_; }
  int num_sms() const { return num_sms_; }

  // --- CUDA graphs (decode steps) ------------------------------------------------------------
  // A step is captured once and then replayed for later steps of the same shape:
  //   capture: begin_capture(kv_bound); model.forward(batch, kv); graph = end_capture();
  //            launch_graph(*graph);
  //   replay:  begin_replay(); model.forward(batch, kv); if (!end_replay(*graph)) capture anew
  // During a replay forward() does only host work: shape checks, scratch addresses (the same
  // sequence as at capture, hence the same addresses) and metadata copies into the pinned staging
  // slots that the graph's copy nodes read; end_replay() checks that the op sequence matched the
  // captured one and launches the graph, or returns false (launching nothing) when it did not.
  // Metadata copies into scratch move whole 256-byte slots, so a block table may grow within its
  // slot (64 int32 entries) under one graph; crossing a slot boundary needs a new capture.
  // Attention is planned for KV lengths up to kv_bound so the graph serves every step whose longest
  // sequence is <= kv_bound.
  struct Graph : StepGraph {
    cudaGraphExec_t exec = nullptr;
    uint64_t signature = 0;  // hash of the captured op sequence (op, pointers, sizes)
    int kv_bound = 0;
    ~Graph() override;
  };
  bool supports_graphs() const override { return true; }
  size_t graph_copy_bytes() const override;
  void begin_capture(int kv_bound) override;
  std::unique_ptr<StepGraph> end_capture() override;
  void begin_replay(const StepGraph& graph) override;
  [[nodiscard]] bool end_replay(const StepGraph& graph) override;
  // Runs the graph on the stream (end_replay does this; also right after capture, since a
  // capture records the step without running it).
  void launch_graph(const StepGraph& graph) override;

  // For ops launched outside the backend on its stream (HARD-KV's DeviceTiers): folds the op
  // into the step signature like the backend's own ops; true when it must not launch (a replay:
  // the graph runs it). Every pointer and size the launch depends on must be passed.
  [[nodiscard]] bool record_graph_op(int op, std::initializer_list<const void*> ptrs,
                                     int64_t size) {
    return record_op(op, ptrs, size);
  }
  // Inside a capture or replay: the KV bound the step's graph is planned for; 0 when eager.
  int graph_kv_bound() const { return mode_ == Mode::kEager ? 0 : graph_kv_bound_; }

  DeviceMemory memory() const override;

  // Per-op device time for breakdowns: events around every eager op and a synchronisation after
  // each (so it slows the step down; never on in production).
  struct OpTime {
    int64_t calls = 0;
    double ms = 0;
  };
  void set_profiling(bool on) { profiling_ = on; }
  const std::map<std::string, OpTime>& op_times() const { return op_times_; }
  void clear_op_times() { op_times_.clear(); }

 private:
  class ProfileScope;
  enum class Mode { kEager, kCapture, kReplay };
  // Folds an op into the step signature; true when the op must not launch (replay).
  bool record_op(int op, std::initializer_list<const void*> ptrs, int64_t size);
  // The bias pointer of a linear op (null when absent), checked against m outputs.
  static const __nv_bfloat16* linear_bias(const Tensor* bias, int64_t m, const char* op);
  // Shape checks and launch parameters of a paged attention op (planned, workspace from scratch,
  // split counters when the decode kernel merges its own splits).
  PagedAttentionParams attention_params(const Tensor& q, const Tensor& k_cache,
                                        const Tensor& v_cache, const AttentionMeta& meta,
                                        float scale, Tensor& out);
  // Records (graphs) and launches a planned paged attention op.
  void launch_attention_op(const PagedAttentionParams& p);
  // Copies host bytes to device through a pinned staging buffer (no stream sync when it fits).
  // In a capture or replay the copy is only staged: launch_graph() issues the step's copies on
  // the stream right before the graph (so the graph reads no host memory and a step may stage
  // into either half of the buffer).
  void copy_to_device_async(void* dst, const void* src, size_t bytes);
  // The staging half the current step writes (eager part first, then the graph part).
  char* staging_half() const { return staging_ + staging_half_ * kStagingHalfBytes; }
  // Waits until the steps that last read the current half have done so (once per step).
  void claim_staging_half();

  int device_idx_;
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<LtGemm> gemm_;
  unsigned* gemv_counter_ = nullptr;  // device uint32, 0 between fused add_rms_norm GEMVs
  // Device uint32 [kAttnCounters], 0 between decode attention kernels (in-kernel split merge).
  unsigned* attn_counters_ = nullptr;
  ScratchArena scratch_;
  // Pinned host memory for metadata copies: two halves of kStagingHalfBytes that steps use in
  // turn (release_scratch() switches), so the host can fill step k + 1's half while step k's
  // copies have not run yet; each half has an eager part and a graph part.
  static constexpr size_t kStagingHalfBytes = 16u << 20;
  char* staging_ = nullptr;
  int staging_half_ = 0;
  bool staging_claimed_ = false;   // this step waited for its half
  size_t staging_used_ = 0;        // eager part
  size_t graph_staging_used_ = 0;  // graph part (capture / replay)
  cudaEvent_t staging_free_[2] = {nullptr, nullptr};  // per half: its last step's copies ran
  struct StagedCopy {
    void* dst;
    size_t offset;  // in the graph part of the half
    size_t bytes;
  };
  std::vector<StagedCopy> graph_copies_;  // staged by the capture / replay, issued at launch
  // Sampling: the latest tokens on the device (I32 [kMaxSampleRows]), and per pending ticket a
  // mapped pinned result slot (I32 tokens then F32 log-probabilities, [2 * kMaxSampleRows]) that
  // the sampling kernel writes directly (no copy down) + an event.
  struct SampleSlot {
    int64_t ticket = -1;  // -1: free
    int rows = 0;
    bool logprobs = false;
    int32_t* host = nullptr;  // mapped pinned memory
    int32_t* dev = nullptr;   // the same memory as the device addresses it
    cudaEvent_t done = nullptr;
  };
  int32_t* sampled_dev_ = nullptr;
  SampleSlot sample_slots_[kMaxPendingSamples];
  int64_t next_sample_ticket_ = 0;
  Mode mode_ = Mode::kEager;
  int graph_kv_bound_ = 0;
  uint64_t signature_ = 0;
  bool profiling_ = false;
  cudaEvent_t prof_start_ = nullptr, prof_stop_ = nullptr;
  std::map<std::string, OpTime> op_times_;
};

}  // namespace hardkv::cuda
