// CPU kernels of the embedding ops.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace pipetrain::ops::cpu {

template <typename T>
void EmbeddingForward(const int32_t* ids, int64_t n, const T* table, int64_t d, T scale, T* y) {
#pragma omp parallel for if (n * d > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    const T* src = table + static_cast<int64_t>(ids[i]) * d;
    T* dst = y + i * d;
    for (int64_t j = 0; j < d; ++j) dst[j] = scale * src[j];
  }
}

template <typename T>
void EmbeddingBackwardWeight(const int32_t* ids, int64_t n, const T* dy, int64_t d, T scale,
                             T* dtable) {
  // Repeated ids make rows collide, so threads split the feature columns, not
  // the tokens: each column still sees the tokens in index order, whatever the
  // thread count.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (d + kBlock - 1) / kBlock;
#pragma omp parallel for if (n * d > (1 << 16))
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(d, j0 + kBlock);
    for (int64_t i = 0; i < n; ++i) {
      T* dst = dtable + static_cast<int64_t>(ids[i]) * d;
      const T* src = dy + i * d;
      for (int64_t j = j0; j < j1; ++j) dst[j] += scale * src[j];
    }
  }
}

template <typename T>
void AddSinusoidalPositions(int64_t batch, int64_t len, int64_t d, T* x) {
  // One [len, d] table in double, shared by the whole batch.
  std::vector<double> pe(static_cast<size_t>(len * d));
  std::vector<double> inv_freq(static_cast<size_t>((d + 1) / 2));
  for (int64_t i = 0; 2 * i < d; ++i) {
    inv_freq[i] = std::pow(10000.0, -static_cast<double>(2 * i) / static_cast<double>(d));
  }
#pragma omp parallel for if (len * d > (1 << 14))
  for (int64_t t = 0; t < len; ++t) {
    for (int64_t j = 0; j < d; ++j) {
      const double angle = static_cast<double>(t) * inv_freq[j / 2];
      pe[t * d + j] = (j % 2 == 0) ? std::sin(angle) : std::cos(angle);
    }
  }
#pragma omp parallel for if (batch * len * d > (1 << 16))
  for (int64_t row = 0; row < batch * len; ++row) {
    const double* p = pe.data() + (row % len) * d;
    T* dst = x + row * d;
    for (int64_t j = 0; j < d; ++j) dst[j] = static_cast<T>(dst[j] + p[j]);
  }
}

template void EmbeddingForward<float>(const int32_t*, int64_t, const float*, int64_t, float,
                                      float*);
template void EmbeddingForward<double>(const int32_t*, int64_t, const double*, int64_t, double,
                                       double*);
template void EmbeddingBackwardWeight<float>(const int32_t*, int64_t, const float*, int64_t, float,
                                             float*);
template void EmbeddingBackwardWeight<double>(const int32_t*, int64_t, const double*, int64_t,
                                              double, double*);
template void AddSinusoidalPositions<float>(int64_t, int64_t, int64_t, float*);
template void AddSinusoidalPositions<double>(int64_t, int64_t, int64_t, double*);

}  // namespace pipetrain::ops::cpu
