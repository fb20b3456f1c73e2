// CPU kernels of the elementwise ops.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace pipetrain::ops::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;
// Dot sums fixed-size chunks, then the chunk sums in order: the grouping, and
// so the rounding, is the same for any thread count.
constexpr int64_t kDotChunk = 4096;

}  // namespace

template <typename T>
void AddScaled(T a, const T* x, T b, const T* y, int64_t n, T* out) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a * x[i] + b * y[i];
}

template <typename T>
void Axpy(T a, const T* x, int64_t n, T* y) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <typename T>
double Dot(const T* x, const T* y, int64_t n) {
  const int64_t chunks = (n + kDotChunk - 1) / kDotChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    const int64_t end = std::min(n, (c + 1) * kDotChunk);
    for (int64_t i = c * kDotChunk; i < end; ++i) s += static_cast<double>(x[i]) * y[i];
    partial[c] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

template <typename T>
void HeadScale(const T* x, const T* s, int64_t rows, int64_t heads, int64_t head_dim, T* y) {
  const int64_t width = heads * head_dim;
#pragma omp parallel for if (rows * width > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t base = r * width + h * head_dim;
      for (int64_t k = 0; k < head_dim; ++k) y[base + k] = s[h] * x[base + k];
    }
  }
}

template <typename T>
void HeadScaleBackwardWeight(const T* x, const T* dy, int64_t rows, int64_t heads, int64_t head_dim,
                             T* ds) {
  // One thread per head, rows in order: deterministic for any thread count.
  const int64_t width = heads * head_dim;
#pragma omp parallel for if (rows * width > kParallelMin)
  for (int64_t h = 0; h < heads; ++h) {
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t base = r * width + h * head_dim;
      for (int64_t k = 0; k < head_dim; ++k) acc += static_cast<double>(x[base + k]) * dy[base + k];
    }
    ds[h] = static_cast<T>(ds[h] + acc);
  }
}

template void AddScaled<float>(float, const float*, float, const float*, int64_t, float*);
template void AddScaled<double>(double, const double*, double, const double*, int64_t, double*);
template void Axpy<float>(float, const float*, int64_t, float*);
template void Axpy<double>(double, const double*, int64_t, double*);
template double Dot<float>(const float*, const float*, int64_t);
template double Dot<double>(const double*, const double*, int64_t);
template void HeadScale<float>(const float*, const float*, int64_t, int64_t, int64_t, float*);
template void HeadScale<double>(const double*, const double*, int64_t, int64_t, int64_t, double*);
template void HeadScaleBackwardWeight<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                             float*);
template void HeadScaleBackwardWeight<double>(const double*, const double*, int64_t, int64_t,
                                              int64_t, double*);

}  // namespace pipetrain::ops::cpu
