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

__global__ void AdamWKernel(AdamWArgs a, int64_t n, float* params, const float* grads, float* m,
                            float* v) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float g = grads[i];
    const float mi = a.beta1 * m[i] + (1.f - a.beta1) * g;
    const float vi = a.beta2 * v[i] + (1.f - a.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float m_hat = mi / a.correction1;
    const float v_hat = vi / a.correction2;
    const float p = params[i];
    params[i] = p - a.lr * (m_hat / (sqrtf(v_hat) + a.eps) + a.decay * p);
  }
}

}  // namespace

absl::Status AdamWStep(const AdamWHyper& hyper, int64_t step, Tensor& params, const Tensor& grads,
                       Tensor& m, Tensor& v) {
  const int64_t n = params.numel();
  if (n == 0) return absl::OkStatus();
  AdamWArgs a;
  a.beta1 = static_cast<float>(hyper.beta1);
  a.beta2 = static_cast<float>(hyper.beta2);
  a.lr = static_cast<float>(hyper.lr);
  a.eps = static_cast<float>(hyper.epsilon);
  a.decay = static_cast<float>(hyper.weight_decay);
  a.correction1 = static_cast<float>(1.0 - std::pow(hyper.beta1, static_cast<double>(step)));
  a.correction2 = static_cast<float>(1.0 - std::pow(hyper.beta2, static_cast<double>(step)));
  AdamWKernel<<<GridFor(n, kThreads), kThreads, 0, ComputeStream()>>>(
      a, n, static_cast<float*>(params.raw_data()), static_cast<const float*>(grads.raw_data()),
      static_cast<float*>(m.raw_data()), static_cast<float*>(v.raw_data()));
  return CheckLaunch("AdamWKernel");
}

}  // namespace pipetrain::cuda
