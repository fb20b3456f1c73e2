// CUDA sum of squares and scaling for gradient clipping. The sum is a
// two-stage reduction in double with a fixed grid: every block sums a fixed
// strided share of the elements, then one block sums the block partials. The
// order of additions depends only on n, so the result repeats exactly.
#include <cuda_bf16.h>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/device.h"
#include "core/optim/grad_clip_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kPartialBlocks = 1024;  // fixed, whatever the device, for determinism

template <typename T>
__global__ void SumSquaresPartialKernel(const T* x, int64_t n, double* partial) {
  __shared__ double scratch[32];
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  double acc = 0.0;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double value = ToFloat(x[i]);
    acc += value * value;
  }
  acc = BlockSum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void SumPartialsKernel(const double* partial, int count, double* out) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = BlockSum(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

template <typename T>
__global__ void ScaleKernel(T* x, int64_t n, double factor) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    x[i] = FromFloat<T>(static_cast<float>(static_cast<double>(ToFloat(x[i])) * factor));
  }
}

}  // namespace

absl::StatusOr<double> SumOfSquares(const Tensor& t) {
  const int64_t n = t.numel();
  if (n == 0) return 0.0;
  Tensor partial = Tensor::Empty({kPartialBlocks + 1}, DType::kF64, Device::kCuda);
  double* p = static_cast<double*>(partial.raw_data());
  if (t.dtype() == DType::kBF16) {
    SumSquaresPartialKernel<<<kPartialBlocks, kThreads, 0, ComputeStream()>>>(
        static_cast<const __nv_bfloat16*>(t.raw_data()), n, p);
  } else {
    SumSquaresPartialKernel<<<kPartialBlocks, kThreads, 0, ComputeStream()>>>(
        static_cast<const float*>(t.raw_data()), n, p);
  }
  PT_RETURN_IF_ERROR(CheckLaunch("SumSquaresPartialKernel"));
  SumPartialsKernel<<<1, kThreads, 0, ComputeStream()>>>(p, kPartialBlocks, p + kPartialBlocks);
  PT_RETURN_IF_ERROR(CheckLaunch("SumPartialsKernel"));
  PT_ASSIGN_OR_RETURN(Tensor host, CopyToDevice(partial, Device::kCpu));
  return host.data<double>()[kPartialBlocks];
}

absl::Status SegmentSumsOfSquares(const Tensor& flat, const std::vector<SquaresSegment>& segments,
                                  Tensor& out) {
  // One scratch buffer serves every segment: the kernels run in stream order.
  Tensor partial = Tensor::Empty({kPartialBlocks}, DType::kF64, Device::kCuda);
  double* p = static_cast<double*>(partial.raw_data());
  double* sums = static_cast<double*>(out.raw_data());
  for (size_t s = 0; s < segments.size(); ++s) {
    const int64_t n = segments[s].length;
    if (n == 0) {
      PT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(sums + s, 0, sizeof(double), ComputeStream()),
                              "SegmentSumsOfSquares");
      continue;
    }
    if (flat.dtype() == DType::kBF16) {
      SumSquaresPartialKernel<<<kPartialBlocks, kThreads, 0, ComputeStream()>>>(
          static_cast<const __nv_bfloat16*>(flat.raw_data()) + segments[s].offset, n, p);
    } else {
      SumSquaresPartialKernel<<<kPartialBlocks, kThreads, 0, ComputeStream()>>>(
          static_cast<const float*>(flat.raw_data()) + segments[s].offset, n, p);
    }
    PT_RETURN_IF_ERROR(CheckLaunch("SumSquaresPartialKernel"));
    SumPartialsKernel<<<1, kThreads, 0, ComputeStream()>>>(p, kPartialBlocks, sums + s);
    PT_RETURN_IF_ERROR(CheckLaunch("SumPartialsKernel"));
  }
  return absl::OkStatus();
}

absl::Status ScaleInPlace(Tensor& t, double factor) {
  const int64_t n = t.numel();
  if (n == 0) return absl::OkStatus();
  if (t.dtype() == DType::kBF16) {
    ScaleKernel<<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
        static_cast<__nv_bfloat16*>(t.raw_data()), n, factor);
  } else {
    ScaleKernel<<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
        static_cast<float*>(t.raw_data()), n, factor);
  }
  return CheckLaunch("ScaleKernel");
}

}  // namespace pipetrain::cuda
