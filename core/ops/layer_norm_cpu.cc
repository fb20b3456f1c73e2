// CPU kernels of LayerNorm and PowerNorm. Row statistics and the row sums of
// the backward passes are taken in double whatever T is: a Post-LN stack
// normalises hundreds of times per step and f32 sums over d = 1024 lose bits.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace pipetrain::ops::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 14;

// Mean and biased variance of one row, two-pass.
template <typename T>
void RowMoments(const T* x, int64_t d, double* mean, double* var) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += x[j];
  const double m = s / static_cast<double>(d);
  double ss = 0;
  for (int64_t j = 0; j < d; ++j) {
    const double c = x[j] - m;
    ss += c * c;
  }
  *mean = m;
  *var = ss / static_cast<double>(d);
}

}  // namespace

template <typename T>
void LayerNormForward(const T* x, const T* gamma, const T* beta, int64_t rows, int64_t d,
                      double eps, T* y, T* mean, T* rstd) {
#pragma omp parallel for if (rows * d > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    double m, var;
    RowMoments(xr, d, &m, &var);
    const double rs = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < d; ++j) {
      yr[j] = static_cast<T>((xr[j] - m) * rs * gamma[j] + beta[j]);
    }
    if (mean != nullptr) mean[r] = static_cast<T>(m);
    if (rstd != nullptr) rstd[r] = static_cast<T>(rs);
  }
}

template <typename T>
void LayerNormBackwardInput(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                            int64_t rows, int64_t d, T* dx) {
  // With x̂ = (x − mean)·rstd and g = dy·γ:
  //   dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)).
#pragma omp parallel for if (rows * d > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    const T* dyr = dy + r * d;
    T* dxr = dx + r * d;
    const double m = mean[r], rs = rstd[r];
    double sum_g = 0, sum_gx = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double g = static_cast<double>(dyr[j]) * gamma[j];
      sum_g += g;
      sum_gx += g * (xr[j] - m) * rs;
    }
    const double mean_g = sum_g / static_cast<double>(d);
    const double mean_gx = sum_gx / static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) {
      const double g = static_cast<double>(dyr[j]) * gamma[j];
      const double xhat = (xr[j] - m) * rs;
      dxr[j] = static_cast<T>(rs * (g - mean_g - xhat * mean_gx));
    }
  }
}

template <typename T>
void LayerNormBackwardWeight(const T* x, const T* mean, const T* rstd, const T* dy, int64_t rows,
                             int64_t d, T* dgamma, T* dbeta) {
  // Threads split the features; each feature sums its rows in order, so the
  // result does not depend on the thread count.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for if (rows * d > kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(d, j0 + kBlock);
    double acc_g[kBlock] = {}, acc_b[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * d;
      const T* dyr = dy + r * d;
      const double m = mean[r], rs = rstd[r];
      for (int64_t j = j0; j < j1; ++j) {
        acc_g[j - j0] += dyr[j] * ((xr[j] - m) * rs);
        acc_b[j - j0] += dyr[j];
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      dgamma[j] = static_cast<T>(dgamma[j] + acc_g[j - j0]);
      dbeta[j] = static_cast<T>(dbeta[j] + acc_b[j - j0]);
    }
  }
}

template <typename T>
void PowerNormForward(const T* x, int64_t rows, int64_t d, double power, double eps, T* y, T* mean,
                      T* sigma) {
#pragma omp parallel for if (rows * d > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    double m, var;
    RowMoments(xr, d, &m, &var);
    const double s = std::sqrt(var + eps);
    const double scale = std::pow(s, -power);
    for (int64_t j = 0; j < d; ++j) yr[j] = static_cast<T>((xr[j] - m) * scale);
    if (mean != nullptr) mean[r] = static_cast<T>(m);
    if (sigma != nullptr) sigma[r] = static_cast<T>(s);
  }
}

template <typename T>
void PowerNormBackward(const T* x, const T* mean, const T* sigma, double power, const T* dy,
                       int64_t rows, int64_t d, T* dx) {
  // y = c·σ^−p with c = x − mean and ∂σ/∂x_k = c_k / (d·σ), so
  //   dx = σ^−p · (dy − mean(dy)) − p · σ^(−p−2) · c · mean(dy · c).
  // (The same as g − mean(g) with g = σ^−p·dy − p·σ^(−p−2)·c·mean(dy·c),
  // since mean(c) = 0, without relying on that cancellation numerically.)
#pragma omp parallel for if (rows * d > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    const T* dyr = dy + r * d;
    T* dxr = dx + r * d;
    const double m = mean[r], s = sigma[r];
    double sum_dy = 0, sum_dyc = 0;
    for (int64_t j = 0; j < d; ++j) {
      sum_dy += dyr[j];
      sum_dyc += dyr[j] * (xr[j] - m);
    }
    const double mean_dy = sum_dy / static_cast<double>(d);
    const double mean_dyc = sum_dyc / static_cast<double>(d);
    const double s_p = std::pow(s, -power);
    const double k = power * s_p / (s * s) * mean_dyc;
    for (int64_t j = 0; j < d; ++j) {
      dxr[j] = static_cast<T>(s_p * (dyr[j] - mean_dy) - k * (xr[j] - m));
    }
  }
}

template void LayerNormForward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                      double, float*, float*, float*);
template void LayerNormForward<double>(const double*, const double*, const double*, int64_t,
                                       int64_t, double, double*, double*, double*);
template void LayerNormBackwardInput<float>(const float*, const float*, const float*, const float*,
                                            const float*, int64_t, int64_t, float*);
template void LayerNormBackwardInput<double>(const double*, const double*, const double*,
                                             const double*, const double*, int64_t, int64_t,
                                             double*);
template void LayerNormBackwardWeight<float>(const float*, const float*, const float*, const float*,
                                             int64_t, int64_t, float*, float*);
template void LayerNormBackwardWeight<double>(const double*, const double*, const double*,
                                              const double*, int64_t, int64_t, double*, double*);
template void PowerNormForward<float>(const float*, int64_t, int64_t, double, double, float*,
                                      float*, float*);
template void PowerNormForward<double>(const double*, int64_t, int64_t, double, double, double*,
                                       double*, double*);
template void PowerNormBackward<float>(const float*, const float*, const float*, double,
                                       const float*, int64_t, int64_t, float*);
template void PowerNormBackward<double>(const double*, const double*, const double*, double,
                                        const double*, int64_t, int64_t, double*);

}  // namespace pipetrain::ops::cpu
