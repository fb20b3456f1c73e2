// CUDA LayerNorm and PowerNorm. One block per row; statistics and row sums in
// f32 whatever the element type (the CPU takes them in double: the two agree
// to f32 rounding, checked in tests/cuda_layer_norm_test.cc). The weight
// gradient sums rows in fixed chunks, then the chunks in order, so it is
// deterministic.
#include <cuda_bf16.h>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/ops/layer_norm_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::BlockSum;
using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::ForDType;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::Ptr;
using ::pipetrain::cuda::ToFloat;

constexpr int kRowThreads = 256;
constexpr int kWeightRowsPerChunk = 64;
constexpr int kWeightColumns = 32;  // columns per block of the weight-gradient kernel

int64_t Rows(const Tensor& x) { return x.numel() / x.dim(-1); }

// Mean and variance of row `xr` (two passes over global memory; d is at most
// a few thousand, so the row stays in L1/L2).
template <typename T>
__device__ void RowMoments(const T* xr, int d, float* scratch, float* mean, float* var) {
  float s = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) s += ToFloat(xr[j]);
  const float m = BlockSum(s, scratch) / d;
  float ss = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    const float c = ToFloat(xr[j]) - m;
    ss += c * c;
  }
  *mean = m;
  *var = BlockSum(ss, scratch) / d;
}

template <typename T>
__global__ void LayerNormForwardKernel(const T* x, const T* gamma, const T* beta, int d, float eps,
                                       T* y, float* mean, float* rstd) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  T* yr = y + r * d;
  float m, var;
  RowMoments(xr, d, scratch, &m, &var);
  const float rs = rsqrtf(var + eps);
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    yr[j] = FromFloat<T>((ToFloat(xr[j]) - m) * rs * ToFloat(gamma[j]) + ToFloat(beta[j]));
  }
  if (threadIdx.x == 0 && mean != nullptr) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

template <typename T>
__global__ void LayerNormBackwardInputKernel(const T* x, const T* gamma, const float* mean,
                                             const float* rstd, const T* dy, int d, T* dx) {
  // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy·γ, x̂ = (x − mean)·rstd.
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  const T* dyr = dy + r * d;
  T* dxr = dx + r * d;
  const float m = mean[r], rs = rstd[r];
  float sum_g = 0.f, sum_gx = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    const float g = ToFloat(dyr[j]) * ToFloat(gamma[j]);
    sum_g += g;
    sum_gx += g * (ToFloat(xr[j]) - m) * rs;
  }
  const float mean_g = BlockSum(sum_g, scratch) / d;
  const float mean_gx = BlockSum(sum_gx, scratch) / d;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    const float g = ToFloat(dyr[j]) * ToFloat(gamma[j]);
    const float xhat = (ToFloat(xr[j]) - m) * rs;
    dxr[j] = FromFloat<T>(rs * (g - mean_g - xhat * mean_gx));
  }
}

// Stage 1: partial[chunk, j] = Σ over the chunk's rows of dy·x̂ (and of dy).
// Block (column tile, chunk); each thread owns one column and walks the rows.
template <typename T>
__global__ void LayerNormWeightPartialKernel(const T* x, const float* mean, const float* rstd,
                                             const T* dy, int64_t rows, int d, float* partial_g,
                                             float* partial_b) {
  const int j = blockIdx.x * kWeightColumns + threadIdx.x;
  if (j >= d) return;
  const int64_t r0 = int64_t{blockIdx.y} * kWeightRowsPerChunk;
  const int64_t r1 = min(rows, r0 + kWeightRowsPerChunk);
  float acc_g = 0.f, acc_b = 0.f;
  for (int64_t r = r0; r < r1; ++r) {
    const float g = ToFloat(dy[r * d + j]);
    acc_g += g * (ToFloat(x[r * d + j]) - mean[r]) * rstd[r];
    acc_b += g;
  }
  partial_g[int64_t{blockIdx.y} * d + j] = acc_g;
  partial_b[int64_t{blockIdx.y} * d + j] = acc_b;
}

// Stage 2: dgamma[j] += Σ_chunks partial[chunk, j], chunks in order.
__global__ void SumChunksKernel(const float* partial_g, const float* partial_b, int chunks, int d,
                                float* dgamma, float* dbeta) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= d) return;
  float g = 0.f, b = 0.f;
  for (int c = 0; c < chunks; ++c) {
    g += partial_g[int64_t{c} * d + j];
    b += partial_b[int64_t{c} * d + j];
  }
  dgamma[j] += g;
  dbeta[j] += b;
}

template <typename T>
__global__ void PowerNormForwardKernel(const T* x, int d, float power, float eps, T* y, float* mean,
                                       float* sigma) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  T* yr = y + r * d;
  float m, var;
  RowMoments(xr, d, scratch, &m, &var);
  const float s = sqrtf(var + eps);
  const float scale = powf(s, -power);
  for (int j = threadIdx.x; j < d; j += blockDim.x)
    yr[j] = FromFloat<T>((ToFloat(xr[j]) - m) * scale);
  if (threadIdx.x == 0 && mean != nullptr) {
    mean[r] = m;
    sigma[r] = s;
  }
}

template <typename T>
__global__ void PowerNormBackwardKernel(const T* x, const float* mean, const float* sigma,
                                        float power, const T* dy, int d, T* dx) {
  // dx = σ^−p · (dy − mean(dy)) − p · σ^(−p−2) · c · mean(dy · c), c = x − mean.
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  const T* dyr = dy + r * d;
  T* dxr = dx + r * d;
  const float m = mean[r], s = sigma[r];
  float sum_dy = 0.f, sum_dyc = 0.f;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    const float g = ToFloat(dyr[j]);
    sum_dy += g;
    sum_dyc += g * (ToFloat(xr[j]) - m);
  }
  const float mean_dy = BlockSum(sum_dy, scratch) / d;
  const float mean_dyc = BlockSum(sum_dyc, scratch) / d;
  const float s_p = powf(s, -power);
  const float k = power * s_p / (s * s) * mean_dyc;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    dxr[j] = FromFloat<T>(s_p * (ToFloat(dyr[j]) - mean_dy) - k * (ToFloat(xr[j]) - m));
  }
}

float* F32(const Tensor& t) { return static_cast<float*>(t.raw_data()); }

}  // namespace

absl::StatusOr<Tensor> LayerNormForward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        double eps, LayerNormSaved* saved) {
  const int64_t rows = Rows(x);
  const int d = static_cast<int>(x.dim(-1));
  Tensor y = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  float* mean = nullptr;
  float* rstd = nullptr;
  if (saved != nullptr) {
    saved->mean = Tensor::Empty({rows}, DType::kF32, Device::kCuda);
    saved->rstd = Tensor::Empty({rows}, DType::kF32, Device::kCuda);
    mean = F32(saved->mean);
    rstd = F32(saved->rstd);
  }
  if (rows == 0) return y;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    LayerNormForwardKernel<T><<<rows, kRowThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), Ptr<T>(gamma), Ptr<T>(beta), d, static_cast<float>(eps), Ptr<T>(y), mean, rstd);
    return ::pipetrain::cuda::CheckLaunch("LayerNormForwardKernel");
  }));
  return y;
}

absl::StatusOr<Tensor> LayerNormBackwardInput(const Tensor& x, const Tensor& gamma,
                                              const LayerNormSaved& saved, const Tensor& dy) {
  const int64_t rows = Rows(x);
  const int d = static_cast<int>(x.dim(-1));
  Tensor dx = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  if (rows == 0) return dx;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    LayerNormBackwardInputKernel<T><<<rows, kRowThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), Ptr<T>(gamma), F32(saved.mean), F32(saved.rstd), Ptr<T>(dy), d, Ptr<T>(dx));
    return ::pipetrain::cuda::CheckLaunch("LayerNormBackwardInputKernel");
  }));
  return dx;
}

absl::Status LayerNormBackwardWeight(const Tensor& x, const LayerNormSaved& saved, const Tensor& dy,
                                     Tensor& dgamma, Tensor& dbeta) {
  const int64_t rows = Rows(x);
  const int d = static_cast<int>(x.dim(-1));
  if (rows == 0) return absl::OkStatus();
  const int chunks = static_cast<int>((rows + kWeightRowsPerChunk - 1) / kWeightRowsPerChunk);
  Tensor partial_g = Tensor::Empty({chunks, d}, DType::kF32, Device::kCuda);
  Tensor partial_b = Tensor::Empty({chunks, d}, DType::kF32, Device::kCuda);
  const dim3 grid((d + kWeightColumns - 1) / kWeightColumns, chunks);
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    LayerNormWeightPartialKernel<T><<<grid, kWeightColumns, 0, ComputeStream()>>>(
        Ptr<T>(x), F32(saved.mean), F32(saved.rstd), Ptr<T>(dy), rows, d, F32(partial_g),
        F32(partial_b));
    return ::pipetrain::cuda::CheckLaunch("LayerNormWeightPartialKernel");
  }));
  SumChunksKernel<<<(d + 255) / 256, 256, 0, ComputeStream()>>>(F32(partial_g), F32(partial_b),
                                                                chunks, d, F32(dgamma), F32(dbeta));
  return ::pipetrain::cuda::CheckLaunch("SumChunksKernel");
}

absl::StatusOr<Tensor> PowerNormForward(const Tensor& x, double power, double eps,
                                        PowerNormSaved* saved) {
  const int64_t rows = Rows(x);
  const int d = static_cast<int>(x.dim(-1));
  Tensor y = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  float* mean = nullptr;
  float* sigma = nullptr;
  if (saved != nullptr) {
    saved->mean = Tensor::Empty({rows}, DType::kF32, Device::kCuda);
    saved->sigma = Tensor::Empty({rows}, DType::kF32, Device::kCuda);
    saved->power = power;
    mean = F32(saved->mean);
    sigma = F32(saved->sigma);
  }
  if (rows == 0) return y;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    PowerNormForwardKernel<T><<<rows, kRowThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), d, static_cast<float>(power), static_cast<float>(eps), Ptr<T>(y), mean, sigma);
    return ::pipetrain::cuda::CheckLaunch("PowerNormForwardKernel");
  }));
  return y;
}

absl::StatusOr<Tensor> PowerNormBackward(const Tensor& x, const PowerNormSaved& saved,
                                         const Tensor& dy) {
  const int64_t rows = Rows(x);
  const int d = static_cast<int>(x.dim(-1));
  Tensor dx = Tensor::Empty(x.shape(), x.dtype(), Device::kCuda);
  if (rows == 0) return dx;
  PT_RETURN_IF_ERROR(ForDType(x, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    PowerNormBackwardKernel<T><<<rows, kRowThreads, 0, ComputeStream()>>>(
        Ptr<T>(x), F32(saved.mean), F32(saved.sigma), static_cast<float>(saved.power), Ptr<T>(dy),
        d, Ptr<T>(dx));
    return ::pipetrain::cuda::CheckLaunch("PowerNormBackwardKernel");
  }));
  return dx;
}

}  // namespace pipetrain::ops::cuda
