// CUDA label-smoothed cross-entropy. One block per row computes the row's
// max, Σexp and Σx in f32 and writes the row's logsumexp, loss and nll; the
// per-row values are copied to the host and summed there in double in row
// order, like the CPU, so the totals are deterministic.
#include <cuda_bf16.h>

#include <cmath>
#include <vector>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/device.h"
#include "core/ops/cross_entropy_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::BlockSum;
using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::Ptr;
using ::pipetrain::cuda::ToFloat;

constexpr int kRowThreads = 512;

// Max over a block (same contract as BlockSum).
__device__ float BlockMax(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < warps ? scratch[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset >>= 1) {
    total = fmaxf(total, __shfl_xor_sync(0xffffffffu, total, offset));
  }
  return total;
}

template <typename T>
__global__ void CrossEntropyForwardKernel(const T* logits, const int32_t* targets, int64_t v,
                                          float smoothing, int32_t ignore_index, float* lse_out,
                                          float* rows) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* x = logits + r * v;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, ToFloat(x[j]));
  m = BlockMax(m, scratch);
  float se = 0.f, sx = 0.f;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float xj = ToFloat(x[j]);
    se += expf(xj - m);
    sx += xj;
  }
  se = BlockSum(se, scratch);
  sx = BlockSum(sx, scratch);
  if (threadIdx.x != 0) return;
  const float lse = m + logf(se);
  lse_out[r] = lse;
  const int32_t t = targets[r];
  // Targets are validated on the host when the batch is built; one outside
  // the vocabulary is skipped like a pad rather than read out of bounds.
  // Row r of `rows`: loss, nll, and 1 when the row counts (0 for a pad), so
  // the host reads one buffer per micro-batch and never the targets.
  float* out = rows + 3 * r;
  if (t == ignore_index || t < 0 || t >= v) {
    out[0] = 0.f;
    out[1] = 0.f;
    out[2] = 0.f;
    return;
  }
  // −Σ q_v (x_v − lse) with q = (1 − ε)·onehot + ε/V, using Σ q = 1.
  const float nll = lse - ToFloat(x[t]);
  out[0] = (1.f - smoothing) * nll + smoothing * (lse - sx / static_cast<float>(v));
  out[1] = nll;
  out[2] = 1.f;
}

template <typename T>
__global__ void CrossEntropyBackwardKernel(const T* logits, const int32_t* targets, int64_t v,
                                           float smoothing, int32_t ignore_index, const float* lse,
                                           float grad_scale, T* dlogits) {
  const int64_t r = blockIdx.x;
  const T* x = logits + r * v;
  T* d = dlogits + r * v;
  const int32_t t = targets[r];
  if (t == ignore_index || t < 0 || t >= v) {
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) d[j] = FromFloat<T>(0.f);
    return;
  }
  const float l = lse[r];
  const float uniform = smoothing / static_cast<float>(v);
  // ∂loss/∂x_v = softmax_v − q_v.
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float q = j == t ? uniform + (1.f - smoothing) : uniform;
    d[j] = FromFloat<T>(grad_scale * (expf(ToFloat(x[j]) - l) - q));
  }
}

}  // namespace

absl::StatusOr<CrossEntropyStats> CrossEntropyForward(const Tensor& logits, const Tensor& targets,
                                                      double smoothing, int32_t ignore_index,
                                                      CrossEntropySaved* saved,
                                                      bool sums_on_device) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  Tensor lse = Tensor::Empty({n}, DType::kF32, Device::kCuda);
  CrossEntropyStats stats;
  if (n > 0) {
    Tensor rows = Tensor::Empty({n, 3}, DType::kF32, Device::kCuda);
    const float eps = static_cast<float>(smoothing);
    if (logits.dtype() == DType::kBF16) {
      CrossEntropyForwardKernel<__nv_bfloat16><<<n, kRowThreads, 0, ComputeStream()>>>(
          Ptr<__nv_bfloat16>(logits), Ptr<int32_t>(targets), v, eps, ignore_index, Ptr<float>(lse),
          Ptr<float>(rows));
    } else {
      CrossEntropyForwardKernel<float><<<n, kRowThreads, 0, ComputeStream()>>>(
          Ptr<float>(logits), Ptr<int32_t>(targets), v, eps, ignore_index, Ptr<float>(lse),
          Ptr<float>(rows));
    }
    PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("CrossEntropyForwardKernel"));
    if (sums_on_device) {
      // Left on the device for ReadCrossEntropySums (one read per step).
      stats.rows = rows.To(DType::kF64);
      if (saved != nullptr) saved->logsumexp = std::move(lse);
      return stats;
    }
    // One copy to the host, which waits for the kernel on the compute stream;
    // the sums are in double and in row order, as on the CPU.
    PT_ASSIGN_OR_RETURN(Tensor host_rows, CopyToDevice(rows, Device::kCpu));
    const float* row = host_rows.data<float>();
    for (int64_t r = 0; r < n; ++r, row += 3) {
      if (row[2] == 0.f) continue;
      stats.loss_sum += row[0];
      stats.nll_sum += row[1];
      ++stats.tokens;
    }
  }
  if (saved != nullptr) saved->logsumexp = std::move(lse);
  return stats;
}

absl::StatusOr<Tensor> CrossEntropyBackward(const Tensor& logits, const Tensor& targets,
                                            double smoothing, int32_t ignore_index,
                                            const CrossEntropySaved& saved, double grad_scale) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  Tensor dlogits = Tensor::Empty(logits.shape(), logits.dtype(), Device::kCuda);
  if (n == 0) return dlogits;
  const float eps = static_cast<float>(smoothing);
  const float scale = static_cast<float>(grad_scale);
  if (logits.dtype() == DType::kBF16) {
    CrossEntropyBackwardKernel<__nv_bfloat16><<<n, kRowThreads, 0, ComputeStream()>>>(
        Ptr<__nv_bfloat16>(logits), Ptr<int32_t>(targets), v, eps, ignore_index,
        Ptr<float>(saved.logsumexp), scale, Ptr<__nv_bfloat16>(dlogits));
  } else {
    CrossEntropyBackwardKernel<float><<<n, kRowThreads, 0, ComputeStream()>>>(
        Ptr<float>(logits), Ptr<int32_t>(targets), v, eps, ignore_index,
        Ptr<float>(saved.logsumexp), scale, Ptr<float>(dlogits));
  }
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("CrossEntropyBackwardKernel"));
  return dlogits;
}

}  // namespace pipetrain::ops::cuda
