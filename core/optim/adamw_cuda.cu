// CUDA AdamW on flat f32 buffers: the CPU update (adamw.cc) in f32, element
// by element, with the bias corrections computed once in double on the host.
#include <cmath>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/optim/adamw_cuda.h"

namespace pipetrain::cuda {
namespace {

constexpr int kThreads = 256;

struct AdamWArgs {
  float beta1, beta2, lr, eps, decay;
  float correction1, correction2;  // 1 − β^step
};

// One element's update, shared by the update and its dry run so both agree.
struct Updated {
  float p, m, v;
};
__device__ __forceinline__ Updated UpdateElement(const AdamWArgs& a, float p, float g, float m,
                                                 float v) {
  const float mi = a.beta1 * m + (1.f - a.beta1) * g;
  const float vi = a.beta2 * v + (1.f - a.beta2) * g * g;
  const float m_hat = mi / a.correction1;
  const float v_hat = vi / a.correction2;
  return {p - a.lr * (m_hat / (sqrtf(v_hat) + a.eps) + a.decay * p), mi, vi};
}

__global__ void AdamWKernel(AdamWArgs a, int64_t n, float* params, const float* grads, float* m,
                            float* v) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const Updated u = UpdateElement(a, params[i], grads[i], m[i], v[i]);
    m[i] = u.m;
    v[i] = u.v;
    params[i] = u.p;
  }
}

// Counts the elements the update would make non-finite: one atomic per
// block that found any (a healthy step finds none, so the atomics cost
// nothing then).
__global__ void CountNonFiniteKernel(AdamWArgs a, int64_t n, const float* params,
                                     const float* grads, const float* m, const float* v,
                                     double* nonfinite) {
  __shared__ unsigned int block_count;
  if (threadIdx.x == 0) block_count = 0;
  __syncthreads();
  unsigned int mine = 0;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const Updated u = UpdateElement(a, params[i], grads[i], m[i], v[i]);
    mine += !(isfinite(u.p) && isfinite(u.m) && isfinite(u.v));
  }
  if (mine > 0) atomicAdd(&block_count, mine);
  __syncthreads();
  if (threadIdx.x == 0 && block_count > 0) atomicAdd(nonfinite, static_cast<double>(block_count));
}

AdamWArgs ArgsFor(const AdamWHyper& hyper, int64_t step) {
  AdamWArgs a;
  a.beta1 = static_cast<float>(hyper.beta1);
  a.beta2 = static_cast<float>(hyper.beta2);
  a.lr = static_cast<float>(hyper.lr);
  a.eps = static_cast<float>(hyper.epsilon);
  a.decay = static_cast<float>(hyper.weight_decay);
  a.correction1 = static_cast<float>(1.0 - std::pow(hyper.beta1, static_cast<double>(step)));
  a.correction2 = static_cast<float>(1.0 - std::pow(hyper.beta2, static_cast<double>(step)));
  return a;
}

}  // namespace

absl::Status AdamWStep(const AdamWHyper& hyper, int64_t step, Tensor& params, const Tensor& grads,
                       Tensor& m, Tensor& v) {
  const int64_t n = params.numel();
  if (n == 0) return absl::OkStatus();
  AdamWKernel<<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
      ArgsFor(hyper, step), n, static_cast<float*>(params.raw_data()),
      static_cast<const float*>(grads.raw_data()), static_cast<float*>(m.raw_data()),
      static_cast<float*>(v.raw_data()));
  return CheckLaunch("AdamWKernel");
}

absl::Status CountNonFiniteAdamWResults(const AdamWHyper& hyper, int64_t step, const Tensor& params,
                                        const Tensor& grads, const Tensor& m, const Tensor& v,
                                        Tensor& nonfinite) {
  const int64_t n = params.numel();
  if (n == 0) return absl::OkStatus();
  CountNonFiniteKernel<<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
      ArgsFor(hyper, step), n, static_cast<const float*>(params.raw_data()),
      static_cast<const float*>(grads.raw_data()), static_cast<const float*>(m.raw_data()),
      static_cast<const float*>(v.raw_data()), static_cast<double*>(nonfinite.raw_data()));
  return CheckLaunch("CountNonFiniteKernel");
}

}  // namespace pipetrain::cuda
