#include "core/optim/adamw.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#if PIPETRAIN_WITH_CUDA
#include "core/optim/adamw_cuda.h"
#endif
#include "core/status_macros.h"

namespace pipetrain {
namespace {

// Below this a parallel region costs more than the update it splits.
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

// Each element is updated on its own, with the arithmetic in double, so the
// result does not depend on how the loop is split over threads. With kWrite
// false nothing is stored: the loop only counts the elements whose new
// parameter, m or v would not be finite (the same arithmetic, so the dry run
// and the update agree on every element).
template <typename T, bool kWrite>
int64_t Update(const AdamWHyper& hyper, int64_t step, int64_t n, T* params, const T* grads, T* m,
               T* v) {
  const double beta1 = hyper.beta1;
  const double beta2 = hyper.beta2;
  const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const double lr = hyper.lr;
  const double eps = hyper.epsilon;
  const double decay = hyper.weight_decay;
  int64_t nonfinite = 0;
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements) reduction(+ : nonfinite)
  for (int64_t i = 0; i < n; ++i) {
    const double g = grads[i];
    const double mi = beta1 * m[i] + (1.0 - beta1) * g;
    const double vi = beta2 * v[i] + (1.0 - beta2) * g * g;
    const T new_m = static_cast<T>(mi);
    const T new_v = static_cast<T>(vi);
    const double m_hat = mi / correction1;
    const double v_hat = vi / correction2;
    const double p = params[i];
    const T new_p = static_cast<T>(p - lr * (m_hat / (std::sqrt(v_hat) + eps) + decay * p));
    if constexpr (kWrite) {
      m[i] = new_m;
      v[i] = new_v;
      params[i] = new_p;
    } else {
      nonfinite += !(std::isfinite(new_m) && std::isfinite(new_v) && std::isfinite(new_p));
    }
  }
  return nonfinite;
}

// The arguments both entry points take, checked once here.
absl::Status CheckAdamWArgs(const AdamWHyper& hyper, int64_t step, const Tensor& params,
                            const Tensor& grads, const Tensor& m, const Tensor& v) {
  PT_CHECK_ARG(step >= 1, "AdamW: step = ", step, " must be >= 1 (1 is the first update)");
  PT_CHECK_ARG(std::isfinite(hyper.lr) && hyper.lr >= 0.0, "AdamW: lr = ", hyper.lr,
               " must be finite and >= 0");
  PT_CHECK_ARG(hyper.beta1 >= 0.0 && hyper.beta1 < 1.0, "AdamW: beta1 = ", hyper.beta1,
               " is outside [0, 1)");
  PT_CHECK_ARG(hyper.beta2 >= 0.0 && hyper.beta2 < 1.0, "AdamW: beta2 = ", hyper.beta2,
               " is outside [0, 1)");
  PT_CHECK_ARG(std::isfinite(hyper.epsilon) && hyper.epsilon > 0.0,
               "AdamW: epsilon = ", hyper.epsilon, " must be finite and > 0");
  PT_CHECK_ARG(std::isfinite(hyper.weight_decay) && hyper.weight_decay >= 0.0,
               "AdamW: weight_decay = ", hyper.weight_decay, " must be finite and >= 0");
  PT_CHECK_ARG(params.defined() && grads.defined() && m.defined() && v.defined(),
               "AdamW: params, grads, m and v must all be set");
  const DType dtype = params.dtype();
  // The GPU keeps f32 master weights and optimizer state (no f64 there).
  const bool on_gpu = params.device() == Device::kCuda;
  if (on_gpu) {
    PT_CHECK_ARG(dtype == DType::kF32, "AdamW: params have dtype ", DTypeName(dtype),
                 "; expected f32 on the GPU");
  }
  PT_CHECK_ARG(dtype == DType::kF32 || dtype == DType::kF64, "AdamW: params have dtype ",
               DTypeName(dtype), "; expected f32 or f64");
  struct Named {
    const char* name;
    const Tensor* t;
  };
  for (const Named& x :
       {Named{"params", &params}, Named{"grads", &grads}, Named{"m", &m}, Named{"v", &v}}) {
    if (on_gpu) {
      PT_CHECK_ARG(x.t->device() == Device::kCuda, "AdamW: ", x.name, " is ", x.t->DebugString(),
                   " but params are on ", DeviceName(params.device()));
    } else if (x.t->device() != params.device()) {
      return absl::InvalidArgumentError(absl::StrCat("AdamW: ", x.name, " is ", x.t->DebugString(),
                                                     " but params are on ",
                                                     DeviceName(params.device())));
    }
    PT_CHECK_ARG(x.t->dtype() == dtype && x.t->numel() == params.numel(), "AdamW: ", x.name, " is ",
                 x.t->DebugString(), "; expected ", DTypeName(dtype), " with ", params.numel(),
                 " elements like params");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AdamWStep(const AdamWHyper& hyper, int64_t step, Tensor& params, const Tensor& grads,
                       Tensor& m, Tensor& v) {
  PT_RETURN_IF_ERROR(CheckAdamWArgs(hyper, step, params, grads, m, v));
#if PIPETRAIN_WITH_CUDA
  if (params.device() == Device::kCuda) return cuda::AdamWStep(hyper, step, params, grads, m, v);
#endif
  const EmulatedKernelScope kernel(params.device());  // the CPU kernel, on emulated tensors too
  if (params.dtype() == DType::kF32) {
    Update<float, true>(hyper, step, params.numel(), params.data<float>(), grads.data<float>(),
                        m.data<float>(), v.data<float>());
  } else {
    Update<double, true>(hyper, step, params.numel(), params.data<double>(), grads.data<double>(),
                         m.data<double>(), v.data<double>());
  }
  return absl::OkStatus();
}

absl::Status CountNonFiniteAdamWResults(const AdamWHyper& hyper, int64_t step, const Tensor& params,
                                        const Tensor& grads, const Tensor& m, const Tensor& v,
                                        Tensor& nonfinite) {
  PT_RETURN_IF_ERROR(CheckAdamWArgs(hyper, step, params, grads, m, v));
  PT_CHECK_ARG(nonfinite.defined() && nonfinite.dtype() == DType::kF64 && nonfinite.numel() == 1 &&
                   nonfinite.device() == params.device(),
               "CountNonFiniteAdamWResults: the counter must be f64 [1] on ",
               DeviceName(params.device()), ", not ", nonfinite.DebugString());
#if PIPETRAIN_WITH_CUDA
  if (params.device() == Device::kCuda) {
    return cuda::CountNonFiniteAdamWResults(hyper, step, params, grads, m, v, nonfinite);
  }
#endif
  const EmulatedKernelScope kernel(params.device());
  // The dry run takes the update's pointers (a const Tensor still hands out
  // writable ones); with kWrite false nothing is stored through them.
  int64_t count;
  if (params.dtype() == DType::kF32) {
    count = Update<float, false>(hyper, step, params.numel(), params.data<float>(),
                                 grads.data<float>(), m.data<float>(), v.data<float>());
  } else {
    count = Update<double, false>(hyper, step, params.numel(), params.data<double>(),
                                  grads.data<double>(), m.data<double>(), v.data<double>());
  }
  nonfinite.data<double>()[0] += static_cast<double>(count);
  return absl::OkStatus();
}

}  // namespace pipetrain
