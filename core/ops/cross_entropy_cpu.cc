// CPU label-smoothed cross-entropy. Rows are independent and run in
// parallel; per-row results go to a buffer that is summed serially, so the
// totals do not depend on the number of threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/ops/cross_entropy.h"

namespace pipetrain::ops::cpu {

// Below this many logits a parallel region costs more than it saves.
constexpr int64_t kMinParallelElements = int64_t{1} << 14;

template <typename T>
CrossEntropyStats CrossEntropyForward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                                      double smoothing, int32_t ignore_index, T* logsumexp,
                                      double* rows) {
  std::vector<double> row_loss(n, 0.0);
  std::vector<double> row_nll(n, 0.0);
#pragma omp parallel for schedule(static) if (n * v >= kMinParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const T* x = logits + r * v;
    double max = x[0];
    for (int64_t j = 1; j < v; ++j) max = std::max(max, static_cast<double>(x[j]));
    double sum_exp = 0.0;
    double sum_x = 0.0;
    for (int64_t j = 0; j < v; ++j) {
      sum_exp += std::exp(static_cast<double>(x[j]) - max);
      sum_x += x[j];
    }
    const double lse = max + std::log(sum_exp);
    logsumexp[r] = static_cast<T>(lse);
    if (targets[r] == ignore_index) continue;
    // −Σ q_v (x_v − lse) with q = (1 − ε)·onehot + ε/V, using Σ q = 1.
    const double nll = lse - static_cast<double>(x[targets[r]]);
    row_nll[r] = nll;
    row_loss[r] = (1.0 - smoothing) * nll + smoothing * (lse - sum_x / static_cast<double>(v));
  }
  if (rows != nullptr) {
    for (int64_t r = 0; r < n; ++r) {
      const bool counted = targets[r] != ignore_index;
      rows[3 * r] = counted ? row_loss[r] : 0.0;
      rows[3 * r + 1] = counted ? row_nll[r] : 0.0;
      rows[3 * r + 2] = counted ? 1.0 : 0.0;
    }
  }
  CrossEntropyStats stats;
  for (int64_t r = 0; r < n; ++r) {
    if (targets[r] == ignore_index) continue;
    stats.loss_sum += row_loss[r];
    stats.nll_sum += row_nll[r];
    ++stats.tokens;
  }
  return stats;
}

template <typename T>
void CrossEntropyBackward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                          double smoothing, int32_t ignore_index, const T* logsumexp,
                          double grad_scale, T* dlogits) {
  const double uniform = smoothing / static_cast<double>(v);
#pragma omp parallel for schedule(static) if (n * v >= kMinParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    T* d = dlogits + r * v;
    if (targets[r] == ignore_index) {
      std::fill(d, d + v, T(0));
      continue;
    }
    const T* x = logits + r * v;
    const double lse = logsumexp[r];
    const int64_t t = targets[r];
    // ∂loss/∂x_v = softmax_v − q_v.
    for (int64_t j = 0; j < v; ++j) {
      const double q = j == t ? uniform + (1.0 - smoothing) : uniform;
      d[j] = static_cast<T>(grad_scale * (std::exp(static_cast<double>(x[j]) - lse) - q));
    }
  }
}

template CrossEntropyStats CrossEntropyForward<float>(const float*, const int32_t*, int64_t,
                                                      int64_t, double, int32_t, float*, double*);
template CrossEntropyStats CrossEntropyForward<double>(const double*, const int32_t*, int64_t,
                                                       int64_t, double, int32_t, double*, double*);
template void CrossEntropyBackward<float>(const float*, const int32_t*, int64_t, int64_t, double,
                                          int32_t, const float*, double, float*);
template void CrossEntropyBackward<double>(const double*, const int32_t*, int64_t, int64_t, double,
                                           int32_t, const double*, double, double*);

}  // namespace pipetrain::ops::cpu
