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

// Launches kernel<<<grid, block, smem, stream>>>(args...) in thread-block clusters of `cluster`
// blocks (cluster.y == 0: no clusters; sizes above 8, at most 16, through the kernel's
// non-portable cluster size attribute) and with the programmatic-serialization attribute when PDL
// is enabled. The kernel must call pdl_wait() (see above).
template <typename... KArgs, typename... Args>
void launch_pdl_cluster(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                        cudaStream_t stream, dim3 cluster, Args&&... args) {
  const bool clustered = cluster.y != 0;
  if (clustered && cluster.x * cluster.y * cluster.z > 8) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (clustered) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster.x;
    attr[n].val.clusterDim.y = cluster.y;
    attr[n].val.clusterDim.z = cluster.z;
    ++n;
  }
  if (pdl_enabled()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(std::forward<Args>(args))...));
}

// launch_pdl_cluster without clusters.
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                Args&&... args) {
  launch_pdl_cluster(kernel, grid, block, smem, stream, dim3(1, 0, 1), std::forward<Args>(args)...);
}

}  // namespace hardkv::cuda
