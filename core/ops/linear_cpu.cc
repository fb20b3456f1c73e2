// CPU kernels of the linear op: the GEMMs go to OpenBLAS.
#include <cblas.h>

#include <algorithm>
#include <cstdint>

namespace pipetrain::ops::cpu {
namespace {

// Row-major C = alpha·op(A)·op(B) + beta·C, with op(A) [m, k] and op(B) [k, n],
// on one thread.
void Gemm1(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void Gemm1(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The same GEMM, bitwise independent of the thread count. OpenBLAS's own
// threading splits the work differently for each thread count, and its
// results change in the last bits with it (measured: forward and weight
// gradients of the tiny model differ between 1 and 2 threads). So the
// parallelism is ours: C is cut into tiles of kTileRows rows fixed by the
// shape alone, each computed by one call with the whole k. The calls run
// inside an active parallel region, where OpenBLAS's OpenMP build computes
// single-threaded (with one OpenMP thread it has one thread anyway), so every
// element is computed the same way on any thread count. The region is always
// entered: a skipped region would let OpenBLAS thread that call itself.
// (openblas_set_num_threads is no way out: in the OpenMP build it sets the
// OpenMP thread count of the whole process.)
template <typename T>
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  constexpr int64_t kTileRows = 64;
  const int64_t tiles = (m + kTileRows - 1) / kTileRows;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t r0 = t * kTileRows, rows = std::min(kTileRows, m - r0);
    // Row r of op(A) starts at a + r·lda untransposed, at a + r transposed.
    const T* a_tile = trans_a ? a + r0 : a + r0 * lda;
    Gemm1(trans_a, trans_b, rows, n, k, alpha, a_tile, lda, b, ldb, beta, c + r0 * ldc, ldc);
  }
}

}  // namespace

template <typename T>
void LinearForward(const T* x, const T* w, const T* b, int64_t rows, int64_t in, int64_t out,
                   T* y) {
  if (rows == 0) return;
  if (b != nullptr) {
    // Seed every row with the bias so one GEMM with beta = 1 adds x·wᵀ onto it.
#pragma omp parallel for if (rows * out > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) std::copy(b, b + out, y + r * out);
  }
  Gemm(false, true, rows, out, in, T(1), x, in, w, in, b != nullptr ? T(1) : T(0), y, out);
}

template <typename T>
void LinearBackwardInput(const T* dy, const T* w, int64_t rows, int64_t in, int64_t out, T* dx) {
  if (rows == 0) return;
  Gemm(false, false, rows, in, out, T(1), dy, out, w, in, T(0), dx, in);
}

template <typename T>
void LinearBackwardWeight(const T* x, const T* dy, int64_t rows, int64_t in, int64_t out, T* dw,
                          T* db) {
  if (rows == 0) return;
  // beta = 1: parameter gradients accumulate across micro-batches.
  Gemm(true, false, out, in, rows, T(1), dy, out, x, in, T(1), dw, in);
  if (db == nullptr) return;
  // Each thread owns a block of columns and walks the rows in order, so the
  // sums do not depend on the thread count. Double accumulators keep an f32
  // sum over many thousand rows accurate.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (out + kBlock - 1) / kBlock;
#pragma omp parallel for if (rows * out > (1 << 16))
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(out, j0 + kBlock);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = dy + r * out;
      for (int64_t j = j0; j < j1; ++j) acc[j - j0] += row[j];
    }
    for (int64_t j = j0; j < j1; ++j) db[j] = static_cast<T>(db[j] + acc[j - j0]);
  }
}

template void LinearForward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                   int64_t, float*);
template void LinearForward<double>(const double*, const double*, const double*, int64_t, int64_t,
                                    int64_t, double*);
template void LinearBackwardInput<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                         float*);
template void LinearBackwardInput<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                          double*);
template void LinearBackwardWeight<float>(const float*, const float*, int64_t, int64_t, int64_t,
                                          float*, float*);
template void LinearBackwardWeight<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                           double*, double*);

}  // namespace pipetrain::ops::cpu
