// CUDA elementwise ops. Pointwise kernels compute in f32 whatever the element
// type. The reductions (Dot, the head-scale weight gradient) sum fixed chunks
// per block, then the chunk sums in order in a second kernel, so their results
// repeat bit for bit.
#include <cuda_bf16.h>

#include <cstdint>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/ops/elementwise_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::BlockSum;
using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::ForDType;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::GridFor;
using ::pipetrain::cuda::Ptr;
using ::pipetrain::cuda::ToFloat;

constexpr int kThreads = 256;
// Elements per block of Dot's first stage (as the CPU's kDotChunk; the
// grouping differs anyway, both sum in double).
constexpr int64_t kDotChunk = 4096;
// Rows per block of the head-scale weight gradient's first stage.
constexpr int64_t kHeadRowsPerChunk = 64;

#define PT_GRID_STRIDE(i, n)                                                \
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

template <typename T>
__global__ void AddScaledKernel(float a, const T* x, float b, const T* y, int64_t n, T* out) {
  PT_GRID_STRIDE(i, n) out[i] = FromFloat<T>(a * ToFloat(x[i]) + b * ToFloat(y[i]));
}

template <typename T>
__global__ void AxpyKernel(float a, const T* x, int64_t n, T* y) {
  PT_GRID_STRIDE(i, n) y[i] = FromFloat<T>(ToFloat(y[i]) + a * ToFloat(x[i]));
}

template <typename T>
__global__ void ScaleKernel(float a, const T* x, int64_t n, T* out) {
  PT_GRID_STRIDE(i, n) out[i] = FromFloat<T>(a * ToFloat(x[i]));
}

// Stage 1: partial[block] = Σ x·y over the block's chunk, in double.
template <typename T>
__global__ void DotPartialKernel(const T* x, const T* y, int64_t n, double* partial) {
  __shared__ double scratch[32];
  const int64_t begin = int64_t{blockIdx.x} * kDotChunk;
  const int64_t end = min(n, begin + kDotChunk);
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    s += static_cast<double>(ToFloat(x[i])) * static_cast<double>(ToFloat(y[i]));
  }
  s = BlockSum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2, one block: total = Σ partial, each thread a fixed stride of them.
__global__ void DotTotalKernel(const double* partial, int64_t chunks, double* total) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) s += partial[c];
  s = BlockSum(s, scratch);
  if (threadIdx.x == 0) *total = s;
}

// y[r, h, k] = s[h]·x[r, h, k].
template <typename T>
__global__ void HeadScaleKernel(const T* x, const T* s, int64_t n, int64_t heads, int64_t head_dim,
                                T* y) {
  PT_GRID_STRIDE(i, n) {
    const int64_t h = (i / head_dim) % heads;
    y[i] = FromFloat<T>(ToFloat(s[h]) * ToFloat(x[i]));
  }
}

// Stage 1: partial[chunk, h] = Σ over the chunk's rows and head h's columns of
// x·dy. Block (h, chunk).
template <typename T>
__global__ void HeadScalePartialKernel(const T* x, const T* dy, int64_t rows, int64_t heads,
                                       int64_t head_dim, float* partial) {
  __shared__ float scratch[32];
  const int64_t h = blockIdx.x, chunk = blockIdx.y;
  const int64_t r0 = chunk * kHeadRowsPerChunk;
  const int64_t count = (min(rows, r0 + kHeadRowsPerChunk) - r0) * head_dim;
  const int64_t width = heads * head_dim;
  float acc = 0.f;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t i = (r0 + e / head_dim) * width + h * head_dim + e % head_dim;
    acc += ToFloat(x[i]) * ToFloat(dy[i]);
  }
  acc = BlockSum(acc, scratch);
  if (threadIdx.x == 0) partial[chunk * heads + h] = acc;
}

// Stage 2: ds[h] += Σ_chunks partial[chunk, h], chunks in order.
__global__ void HeadScaleSumChunksKernel(const float* partial, int64_t chunks, int64_t heads,
                                         float* ds) {
  const int64_t h = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (h >= heads) return;
  float acc = 0.f;
  for (int64_t c = 0; c < chunks; ++c) acc += partial[c * heads + h];
  ds[h] += acc;
}

}  // namespace

absl::StatusOr<Tensor> AddScaled(double a, const Tensor& x, double b, const Tensor& y) {
  Tensor out = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  const int64_t n = x.numel();
  if (n == 0) return out;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    AddScaledKernel<T><<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
        static_cast<float>(a), Ptr<T>(x), static_cast<float>(b), Ptr<T>(y), n, Ptr<T>(out));
    return ::pipetrain::cuda::CheckLaunch("AddScaledKernel");
  }));
  return out;
}

absl::Status Axpy(double a, const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  return ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    AxpyKernel<T><<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(static_cast<float>(a),
                                                                          Ptr<T>(x), n, Ptr<T>(y));
    return ::pipetrain::cuda::CheckLaunch("AxpyKernel");
  });
}

absl::StatusOr<Tensor> Scale(const Tensor& x, double a) {
  Tensor out = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  const int64_t n = x.numel();
  if (n == 0) return out;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    ScaleKernel<T><<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
        static_cast<float>(a), Ptr<T>(x), n, Ptr<T>(out));
    return ::pipetrain::cuda::CheckLaunch("ScaleKernel");
  }));
  return out;
}

absl::StatusOr<double> Dot(const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return 0.0;
  const int64_t chunks = (n + kDotChunk - 1) / kDotChunk;
  // partial[0..chunks) then the total, in one allocation.
  Tensor scratch = Tensor::Empty({chunks + 1}, DType::kF64, Device::kCuda);
  double* partial = Ptr<double>(scratch);
  double* total = partial + chunks;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    DotPartialKernel<T><<<static_cast<unsigned>(chunks), kThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), Ptr<T>(y), n, partial);
    return ::pipetrain::cuda::CheckLaunch("DotPartialKernel");
  }));
  DotTotalKernel<<<1, kThreads, 0, ComputeStream()>>>(partial, chunks, total);
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("DotTotalKernel"));
  double result = 0;
  PT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(&result, total, sizeof(double), cudaMemcpyDeviceToHost, ComputeStream()),
      "Dot: copying the result");
  PT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ComputeStream()), "Dot: waiting for the result");
  return result;
}

absl::StatusOr<Tensor> HeadScale(const Tensor& x, const Tensor& s, int64_t head_dim) {
  Tensor y = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  const int64_t n = x.numel(), heads = s.dim(0);
  if (n == 0) return y;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    HeadScaleKernel<T><<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), Ptr<T>(s), n, heads, head_dim, Ptr<T>(y));
    return ::pipetrain::cuda::CheckLaunch("HeadScaleKernel");
  }));
  return y;
}

absl::Status HeadScaleBackwardWeight(const Tensor& x, const Tensor& dy, int64_t head_dim,
                                     Tensor& ds) {
  const int64_t heads = ds.dim(0), rows = x.numel() / x.dim(-1);
  if (rows == 0) return absl::OkStatus();
  const int64_t chunks = (rows + kHeadRowsPerChunk - 1) / kHeadRowsPerChunk;
  Tensor partial = Tensor::Empty({chunks, heads}, DType::kF32, Device::kCuda);
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(chunks));
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    HeadScalePartialKernel<T><<<grid, kThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), Ptr<T>(dy), rows, heads, head_dim, Ptr<float>(partial));
    return ::pipetrain::cuda::CheckLaunch("HeadScalePartialKernel");
  }));
  HeadScaleSumChunksKernel<<<static_cast<unsigned>((heads + 255) / 256), 256, 0, ComputeStream()>>>(
      Ptr<float>(partial), chunks, heads, Ptr<float>(ds));
  return ::pipetrain::cuda::CheckLaunch("HeadScaleSumChunksKernel");
}

}  // namespace pipetrain::ops::cuda
