// CUDA HARD-KV row copies (src/kernels/cuda/hkv_copy_rows.h) against a plain loop: random row
// lists (gather, scatter, both, identity), rows of 32 to 2048 elements; rows not listed stay.
#include "kernels/cuda/hkv_copy_rows.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "device_array.h"
#include "kernels/backend.h"

namespace hardkv {
namespace {

using test::DeviceArray;

void check_copy(int src_rows_total, int dst_rows_total, int num_rows, int row_elems, bool src_list,
                bool dst_list, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> bits(0, 0xffff);
  std::vector<uint16_t> src(static_cast<size_t>(src_rows_total) * row_elems);
  std::vector<uint16_t> dst(static_cast<size_t>(dst_rows_total) * row_elems);
  for (auto& x : src) x = static_cast<uint16_t>(bits(rng));
  for (auto& x : dst) x = static_cast<uint16_t>(bits(rng));
  std::vector<int32_t> s(src_rows_total), d(dst_rows_total);
  std::iota(s.begin(), s.end(), 0);
  std::iota(d.begin(), d.end(), 0);
  std::shuffle(s.begin(), s.end(), rng);  // distinct destinations, any sources
  std::shuffle(d.begin(), d.end(), rng);
  s.resize(num_rows);
  d.resize(num_rows);
  std::vector<uint16_t> want = dst;
  for (int i = 0; i < num_rows; ++i) {
    const int from = src_list ? s[i] : i, to = dst_list ? d[i] : i;
    std::copy_n(&src[static_cast<size_t>(from) * row_elems], row_elems,
                &want[static_cast<size_t>(to) * row_elems]);
  }
  DeviceArray<uint16_t> dsrc(src), ddst(dst);
  DeviceArray<int32_t> ds(s), dd(d);
  ASSERT_TRUE(dsrc.ptr && ddst.ptr && ds.ptr && dd.ptr);
  cuda::HkvCopyRowsParams p;
  p.src = reinterpret_cast<const __nv_bfloat16*>(dsrc.ptr);
  p.dst = reinterpret_cast<__nv_bfloat16*>(ddst.ptr);
  p.src_rows = src_list ? ds.ptr : nullptr;
  p.dst_rows = dst_list ? dd.ptr : nullptr;
  p.num_rows = num_rows;
  p.row_elems = row_elems;
  cuda::launch_hkv_copy_rows(p, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(ddst.download(), want);
}

TEST(CudaHkvCopyRows, MatchesPlainLoop) {
  if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device: hkv copy-rows test skipped";
  check_copy(300, 500, 257, 64, true, true, 1);    // gather + scatter (appends, keys)
  check_copy(40, 1000, 33, 2048, false, true, 2);  // scatter of query rows into a ring
  check_copy(1000, 40, 40, 2048, true, false, 3);  // gather of ring rows
  check_copy(10, 10, 10, 128, false, false, 4);    // identity
  check_copy(10, 10, 0, 128, true, true, 5);       // nothing to do
  check_copy(200, 300, 150, 32, true, true, 6);    // head_dim 32 keys (hardkv-tiny)
  check_copy(64, 128, 64, 256, false, true, 7);    // hardkv-tiny query rows (8 heads x 32)
}

TEST(CudaHkvCopyRows, RejectsBadRowWidth) {
  cuda::HkvCopyRowsParams p;
  p.num_rows = 1;
  p.row_elems = 12;
  EXPECT_THROW(cuda::launch_hkv_copy_rows(p, nullptr), Error);
}

}  // namespace
}  // namespace hardkv
