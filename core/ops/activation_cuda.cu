// CUDA activations: exact GELU (with erff) and ReLU, one thread per element in
// a grid-stride loop, math in f32 whatever the element type.
#include <cuda_bf16.h>

#include <cstdint>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/ops/activation_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::GridFor;
using ::pipetrain::cuda::Ptr;
using ::pipetrain::cuda::ToFloat;

constexpr int kThreads = 256;
constexpr float kSqrtHalf = 0.70710678118654752f;    // 1/√2
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1/√(2π)

__device__ __forceinline__ float Gelu(float x) { return 0.5f * x * (1.f + erff(x * kSqrtHalf)); }

// d/dx x·Φ(x) = Φ(x) + x·φ(x).
__device__ __forceinline__ float GeluGrad(float x) {
  const float cdf = 0.5f * (1.f + erff(x * kSqrtHalf));
  const float pdf = kInvSqrt2Pi * expf(-0.5f * x * x);
  return cdf + x * pdf;
}

template <typename T>
__global__ void ForwardKernel(bool gelu, const T* x, int64_t n, T* y) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = ToFloat(x[i]);
    y[i] = FromFloat<T>(gelu ? Gelu(v) : (v > 0.f ? v : 0.f));
  }
}

// The ReLU subgradient at 0 is 0, as on the CPU.
template <typename T>
__global__ void BackwardKernel(bool gelu, const T* x, const T* dy, int64_t n, T* dx) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = ToFloat(x[i]), g = ToFloat(dy[i]);
    dx[i] = FromFloat<T>(gelu ? GeluGrad(v) * g : (v > 0.f ? g : 0.f));
  }
}

}  // namespace

absl::StatusOr<Tensor> ActivationForward(ActivationKind kind, const Tensor& x) {
  Tensor y = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  const int64_t n = x.numel();
  if (n == 0) return y;
  const bool gelu = kind == ActivationKind::kGelu;
  const unsigned grid = GridFor(n, kThreads);
  if (x.dtype() == DType::kBF16) {
    ForwardKernel<<<grid, kThreads, 0, ComputeStream()>>>(gelu, Ptr<__nv_bfloat16>(x), n,
                                                          Ptr<__nv_bfloat16>(y));
  } else {
    ForwardKernel<<<grid, kThreads, 0, ComputeStream()>>>(gelu, Ptr<float>(x), n, Ptr<float>(y));
  }
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("ActivationForwardKernel"));
  return y;
}

absl::StatusOr<Tensor> ActivationBackward(ActivationKind kind, const Tensor& x, const Tensor& dy) {
  Tensor dx = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  const int64_t n = x.numel();
  if (n == 0) return dx;
  const bool gelu = kind == ActivationKind::kGelu;
  const unsigned grid = GridFor(n, kThreads);
  if (x.dtype() == DType::kBF16) {
    BackwardKernel<<<grid, kThreads, 0, ComputeStream()>>>(
        gelu, Ptr<__nv_bfloat16>(x), Ptr<__nv_bfloat16>(dy), n, Ptr<__nv_bfloat16>(dx));
  } else {
    BackwardKernel<<<grid, kThreads, 0, ComputeStream()>>>(gelu, Ptr<float>(x), Ptr<float>(dy), n,
                                                           Ptr<float>(dx));
  }
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("ActivationBackwardKernel"));
  return dx;
}

}  // namespace pipetrain::ops::cuda
