// Programmatic dependent launch (PDL, sm_90): a kernel launched with launch_pdl() may start while
// the previous kernel on the stream is still running (also inside CUDA graphs, where capture turns
// the attribute into a programmatic edge). Every such kernel must call pdl_wait() before it reads
// anything an earlier kernel wrote or writes anything an earlier kernel reads; before the wait it
// may only touch constant data (weights). pdl_launch_dependents() lets the next kernel launch.
// HARDKV_PDL=0 launches without the attribute (the waits are then no-ops).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace hardkv::cuda {

// False when HARDKV_PDL=0 (read once).
bool pdl_enabled();

// Waits until every earlier kernel of the stream has completed and its writes are visible.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// Allows the next kernel (launched with launch_pdl) to start once every block of this grid has
// called this or exited.
__device__ __forceinline__ void pdl_launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) with the programmatic-serialization
// attribute when PDL is enabled. The kernel must call pdl_wait() (see above).
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(std::forward<Args>(args))...));
}

// launch_pdl with thread-block clusters of `cluster` blocks (cluster.y == 0: no clusters). Sizes
// above 8 (at most 16) are allowed through the kernel's non-portable cluster size attribute.
template <typename... KArgs, typename... Args>
void launch_pdl_cluster(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                        cudaStream_t stream, dim3 cluster, Args&&... args) {
  if (cluster.y == 0) {
    launch_pdl(kernel, grid, block, smem, stream, std::forward<Args>(args)...);
    return;
  }
  if (cluster.x * cluster.y * cluster.z > 8) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cluster.x;
  attr[0].val.clusterDim.y = cluster.y;
  attr[0].val.clusterDim.z = cluster.z;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 2 : 1;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(std::forward<Args>(args))...));
}

}  // namespace hardkv::cuda
