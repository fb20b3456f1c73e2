// Small helpers the CUDA ops share: loading and storing f32/bf16 elements as
// float, warp and block sums, launch geometry, and typed access to tensors.
#ifndef PIPETRAIN_CORE_CUDA_KERNEL_UTILS_CUH_
#define PIPETRAIN_CORE_CUDA_KERNEL_UTILS_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace pipetrain::cuda {

// Element types of device tensors: compute happens in float, whatever is stored.
__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);  // round to nearest even, like FloatToBf16 on the host
}

// Sum over the 32 lanes of a warp; every lane gets the result.
template <typename A>
__device__ __forceinline__ A WarpSum(A v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
// every thread gets the result. `scratch` is 32 elements of shared memory.
// The order of additions is fixed by the block size, so results repeat exactly.
template <typename A>
__device__ __forceinline__ A BlockSum(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = WarpSum(v);
  __syncthreads();  // scratch may still be read by a previous BlockSum
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  A total = lane < warps ? scratch[lane] : A(0);
  return WarpSum(total);
}

// A device tensor's data as T* (bf16 tensors as __nv_bfloat16*).
template <typename T>
T* Ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// Calls fn with a null pointer of x's element type (bf16 or f32), so one
// generic lambda launches the kernel for either: `using T =
// std::remove_pointer_t<decltype(tag)>`.
template <typename Fn>
absl::Status ForDType(const Tensor& x, Fn fn) {
  if (x.dtype() == DType::kBF16) return fn(static_cast<__nv_bfloat16*>(nullptr));
  return fn(static_cast<float*>(nullptr));
}

// Blocks for n elements at `threads` per block, capped so a grid-stride loop
// covers the rest.
inline unsigned GridFor(int64_t n, int threads, unsigned cap = 65535u * 8u) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < cap ? blocks : cap);
}

}  // namespace pipetrain::cuda

#endif  // PIPETRAIN_CORE_CUDA_KERNEL_UTILS_CUH_
