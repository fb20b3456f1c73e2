// CUDA dropout. Each element decides its fate with philox::Dropped on its
// flat index, the very function the CPU's PhiloxStream::Uniform path is made
// of, so the GPU mask equals the CPU mask bit for bit (tests/dropout_test.cc
// checks the host half, tests/cuda_dropout_test.cc the device half).
#include <cuda_bf16.h>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/ops/dropout_cuda.h"
#include "core/philox_core.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::ToFloat;

constexpr int kThreads = 256;

template <typename T>
__global__ void DropoutKernel(const T* in, T* out, int64_t n, double p, float scale,
                              philox::StreamWords words) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const bool dropped = philox::Dropped(words, static_cast<uint64_t>(i), p);
    out[i] = dropped ? FromFloat<T>(0.f) : FromFloat<T>(ToFloat(in[i]) * scale);
  }
}

}  // namespace

absl::StatusOr<Tensor> DropoutApply(const Tensor& in, double p, const RngKey& rng) {
  Tensor out = Tensor::Empty(in.shape(), in.dtype(), Device::kCuda);
  const int64_t n = in.numel();
  if (n == 0) return out;
  const philox::StreamWords words = StreamWordsOf(rng);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const unsigned blocks = ::pipetrain::cuda::GridFor(n, kThreads);
  if (in.dtype() == DType::kBF16) {
    DropoutKernel<__nv_bfloat16><<<blocks, kThreads, 0, ComputeStream()>>>(
        static_cast<const __nv_bfloat16*>(in.raw_data()),
        static_cast<__nv_bfloat16*>(out.raw_data()), n, p, scale, words);
  } else {
    DropoutKernel<float><<<blocks, kThreads, 0, ComputeStream()>>>(
        static_cast<const float*>(in.raw_data()), static_cast<float*>(out.raw_data()), n, p, scale,
        words);
  }
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("DropoutKernel"));
  return out;
}

}  // namespace pipetrain::ops::cuda
