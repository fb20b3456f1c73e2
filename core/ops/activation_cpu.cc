// CPU kernels of the activations.
#include <cmath>
#include <cstdint>

#include "core/ops/activation.h"

namespace pipetrain::ops::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;

// Exact GELU, x·Φ(x), and its derivative Φ(x) + x·φ(x).
template <typename T>
T Gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
}

template <typename T>
T GeluGrad(T x) {
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
  const T pdf = T(0.5 * M_2_SQRTPI * M_SQRT1_2) * std::exp(T(-0.5) * x * x);
  return cdf + x * pdf;
}

}  // namespace

template <typename T>
void ActivationForward(ActivationKind kind, const T* x, int64_t n, T* y) {
  if (kind == ActivationKind::kGelu) {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = Gelu(x[i]);
  } else {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
  }
}

template <typename T>
void ActivationBackward(ActivationKind kind, const T* x, const T* dy, int64_t n, T* dx) {
  if (kind == ActivationKind::kGelu) {
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] = GeluGrad(x[i]) * dy[i];
  } else {
    // The subgradient at 0 is taken as 0, as the forward's flat side.
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
  }
}

template void ActivationForward<float>(ActivationKind, const float*, int64_t, float*);
template void ActivationForward<double>(ActivationKind, const double*, int64_t, double*);
template void ActivationBackward<float>(ActivationKind, const float*, const float*, int64_t,
                                        float*);
template void ActivationBackward<double>(ActivationKind, const double*, const double*, int64_t,
                                         double*);

}  // namespace pipetrain::ops::cpu
