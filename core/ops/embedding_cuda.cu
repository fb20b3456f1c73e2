// CUDA embedding ops. The weight gradient is deterministic without atomics:
// each thread owns one feature column and walks the tokens in index order, so
// repeated ids add up in the same order on every run (like the CPU). The
// position encoding is computed in double, as on the CPU, then added in f32.
#include <cuda_bf16.h>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/ops/embedding_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::GridFor;
using ::pipetrain::cuda::Ptr;
using ::pipetrain::cuda::ToFloat;

constexpr int kThreads = 256;

template <typename T>
__global__ void EmbeddingForwardKernel(const int32_t* ids, int64_t n, const T* table, int64_t vocab,
                                       int64_t d, float scale, T* y) {
  const int64_t total = n * d, stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t k = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; k < total; k += stride) {
    const int64_t i = k / d, j = k - i * d;
    const int64_t id = ids[i];
    // Ids are validated on the host when the batch is built; an id outside
    // the table still never reads outside it.
    y[k] = id >= 0 && id < vocab ? FromFloat<T>(scale * ToFloat(table[id * d + j]))
                                 : FromFloat<T>(0.f);
  }
}

template <typename T>
__global__ void EmbeddingBackwardWeightKernel(const int32_t* ids, int64_t n, const T* dy,
                                              int64_t vocab, int64_t d, float scale,
                                              float* dtable) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= d) return;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= vocab) continue;  // never written outside the table
    dtable[id * d + j] += scale * ToFloat(dy[i * d + j]);
  }
}

template <typename T>
__global__ void AddSinusoidalPositionsKernel(int64_t rows, int64_t len, int64_t d, T* x) {
  const int64_t total = rows * d, stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t k = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; k < total; k += stride) {
    const int64_t row = k / d, j = k - row * d;
    const double t = static_cast<double>(row % len);
    const double inv_freq =
        pow(10000.0, -static_cast<double>(2 * (j / 2)) / static_cast<double>(d));
    const double angle = t * inv_freq;
    const double pe = (j % 2 == 0) ? sin(angle) : cos(angle);
    x[k] = FromFloat<T>(static_cast<float>(static_cast<double>(ToFloat(x[k])) + pe));
  }
}

}  // namespace

absl::StatusOr<Tensor> EmbeddingForward(const Tensor& ids, const Tensor& table, double scale) {
  const int64_t n = ids.numel(), d = table.dim(1);
  Shape y_shape = ids.shape();
  y_shape.push_back(d);
  Tensor y = Tensor::Empty(y_shape, table.dtype(), Device::kCuda);
  if (n == 0) return y;
  const unsigned blocks = GridFor(n * d, kThreads);
  const float s = static_cast<float>(scale);
  if (table.dtype() == DType::kBF16) {
    EmbeddingForwardKernel<__nv_bfloat16><<<blocks, kThreads, 0, ComputeStream()>>>(
        Ptr<int32_t>(ids), n, Ptr<__nv_bfloat16>(table), table.dim(0), d, s, Ptr<__nv_bfloat16>(y));
  } else {
    EmbeddingForwardKernel<float><<<blocks, kThreads, 0, ComputeStream()>>>(
        Ptr<int32_t>(ids), n, Ptr<float>(table), table.dim(0), d, s, Ptr<float>(y));
  }
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("EmbeddingForwardKernel"));
  return y;
}

absl::Status EmbeddingBackwardWeight(const Tensor& ids, const Tensor& dy, double scale,
                                     Tensor& dtable) {
  const int64_t n = ids.numel(), d = dtable.dim(1);
  if (n == 0) return absl::OkStatus();
  const unsigned blocks = static_cast<unsigned>((d + kThreads - 1) / kThreads);
  const float s = static_cast<float>(scale);
  if (dy.dtype() == DType::kBF16) {
    EmbeddingBackwardWeightKernel<__nv_bfloat16><<<blocks, kThreads, 0, ComputeStream()>>>(
        Ptr<int32_t>(ids), n, Ptr<__nv_bfloat16>(dy), dtable.dim(0), d, s, Ptr<float>(dtable));
  } else {
    EmbeddingBackwardWeightKernel<float><<<blocks, kThreads, 0, ComputeStream()>>>(
        Ptr<int32_t>(ids), n, Ptr<float>(dy), dtable.dim(0), d, s, Ptr<float>(dtable));
  }
  return ::pipetrain::cuda::CheckLaunch("EmbeddingBackwardWeightKernel");
}

absl::Status AddSinusoidalPositions(Tensor& x) {
  const int64_t rows = x.dim(0) * x.dim(1), len = x.dim(1), d = x.dim(2);
  if (rows * d == 0) return absl::OkStatus();
  const unsigned blocks = GridFor(rows * d, kThreads);
  if (x.dtype() == DType::kBF16) {
    AddSinusoidalPositionsKernel<__nv_bfloat16>
        <<<blocks, kThreads, 0, ComputeStream()>>>(rows, len, d, Ptr<__nv_bfloat16>(x));
  } else {
    AddSinusoidalPositionsKernel<float>
        <<<blocks, kThreads, 0, ComputeStream()>>>(rows, len, d, Ptr<float>(x));
  }
  return ::pipetrain::cuda::CheckLaunch("AddSinusoidalPositionsKernel");
}

}  // namespace pipetrain::ops::cuda
