// CPU attention: one (batch, head) pair at a time, in parallel over pairs.
// Each pair reads and writes only its own slices, and every GEMM and row
// reduction inside it runs on one thread in a fixed order, so results do not
// depend on the number of threads.
//
// Keys at or past a sequence's length are left out of the GEMMs altogether
// (their probabilities and gradients are exactly zero), so padded batches
// cost what their real lengths cost.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/philox.h"

namespace pipetrain::ops::cpu {
namespace {

// Row-major C = alpha · op(A) · op(B) + beta · C.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The (batch, head) pairs are the parallelism here, so each GEMM should run on
// the thread that calls it. The pthreads build of OpenBLAS would instead hand
// every call to its own pool; calls from several OpenMP threads then queue for
// that pool and oversubscribe the cores (2.5x to 6x slower, measured on 2
// cores). Its thread count is process-wide, so it is lowered for the op and
// restored after. The OpenMP build needs nothing: inside a parallel region it
// stays on the calling thread by itself, and there the setter would change
// OpenMP's own thread count.
class BlasOnCallingThread {
 public:
  BlasOnCallingThread() : saved_(openblas_get_parallel() == 1 ? openblas_get_num_threads() : 1) {
    if (saved_ != 1) openblas_set_num_threads(1);
  }
  ~BlasOnCallingThread() {
    if (saved_ != 1) openblas_set_num_threads(saved_);
  }
  BlasOnCallingThread(const BlasOnCallingThread&) = delete;
  BlasOnCallingThread& operator=(const BlasOnCallingThread&) = delete;

 private:
  int saved_;
};

// Below this many multiply-adds (B·H·Tq·Tk·Dh) a parallel region costs more
// than it saves; tiny calls (gradient checks, decoding one token) stay serial.
constexpr int64_t kMinParallelWork = int64_t{1} << 16;

// Where one (batch, head) pair lives in the [B, T, H·Dh] and [B, H, Tq, Tk] layouts.
struct Pair {
  int64_t q_offset;      // of q, context, dq, dcontext
  int64_t kv_offset;     // of k, v, dk, dv
  int64_t probs_offset;  // of probs; also the base of the dropout index
  int64_t keys;          // valid keys of this sequence
};

Pair Locate(int64_t bh, int64_t tq, int64_t tk, int64_t heads, int64_t head_dim,
            const int32_t* key_lengths) {
  const int64_t b = bh / heads;
  const int64_t h = bh % heads;
  const int64_t width = heads * head_dim;
  return Pair{b * tq * width + h * head_dim, b * tk * width + h * head_dim, bh * tq * tk,
              key_lengths != nullptr ? key_lengths[b] : tk};
}

// Keys visible to query i: the sequence's keys, and with a causal mask only j <= i.
inline int64_t VisibleKeys(int64_t i, int64_t keys, bool causal) {
  return causal ? std::min(keys, i + 1) : keys;
}

// Over the keys each query sees, factor = 0 for a dropped probability and
// 1/(1 − p) for a kept one, and dropped = probs ⊙ factor; dropped is zero for
// the other columns below `keys`. The dropout index is the flat position in
// [B, H, Tq, Tk], so forward, backward and recomputation agree, and masked
// positions cost no random numbers.
template <typename T>
void ApplyDropout(const PhiloxStream& stream, const T* probs, int64_t base, int64_t tq, int64_t tk,
                  int64_t keys, bool causal, double p, T* factor, T* dropped) {
  const T keep = static_cast<T>(1.0 / (1.0 - p));
  for (int64_t i = 0; i < tq; ++i) {
    const int64_t visible = VisibleKeys(i, keys, causal);
    for (int64_t j = 0; j < visible; ++j) {
      const uint64_t index = static_cast<uint64_t>(base + i * tk + j);
      const T f = static_cast<double>(stream.Uniform(index)) < p ? T(0) : keep;
      factor[i * tk + j] = f;
      dropped[i * tk + j] = probs[i * tk + j] * f;
    }
    std::fill(dropped + i * tk + visible, dropped + i * tk + keys, T(0));
  }
}

}  // namespace

template <typename T>
void AttentionForward(const T* q, const T* k, const T* v, int64_t batch, int64_t tq, int64_t tk,
                      int64_t heads, int64_t head_dim, bool causal, const int32_t* key_lengths,
                      double dropout, const RngKey& rng, T* probs, T* context) {
  const int64_t width = heads * head_dim;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const PhiloxStream stream(rng);
  const BlasOnCallingThread blas_guard;
  const bool parallel = batch * heads * tq * tk * head_dim >= kMinParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<T> factor;
    std::vector<T> dropped;
    if (dropout > 0.0) {
      factor.resize(tq * tk);
      dropped.resize(tq * tk);
    }
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < batch * heads; ++bh) {
      const Pair at = Locate(bh, tq, tk, heads, head_dim, key_lengths);
      T* p = probs + at.probs_offset;
      // Scores of the valid keys, straight into the probability rows.
      Gemm(false, true, tq, at.keys, head_dim, scale, q + at.q_offset, width, k + at.kv_offset,
           width, T(0), p, tk);
      for (int64_t i = 0; i < tq; ++i) {
        T* row = p + i * tk;
        const int64_t visible = VisibleKeys(i, at.keys, causal);
        double max = row[0];
        for (int64_t j = 1; j < visible; ++j) max = std::max(max, static_cast<double>(row[j]));
        double sum = 0.0;
        for (int64_t j = 0; j < visible; ++j) {
          const double e = std::exp(static_cast<double>(row[j]) - max);
          row[j] = static_cast<T>(e);
          sum += e;
        }
        const double inv = 1.0 / sum;
        for (int64_t j = 0; j < visible; ++j) row[j] = static_cast<T>(row[j] * inv);
        std::fill(row + visible, row + tk, T(0));
      }
      const T* weights = p;
      if (dropout > 0.0) {
        ApplyDropout(stream, p, at.probs_offset, tq, tk, at.keys, causal, dropout, factor.data(),
                     dropped.data());
        weights = dropped.data();
      }
      Gemm(false, false, tq, head_dim, at.keys, T(1), weights, tk, v + at.kv_offset, width, T(0),
           context + at.q_offset, width);
    }
  }
}

template <typename T>
void AttentionBackward(const T* q, const T* k, const T* v, int64_t batch, int64_t tq, int64_t tk,
                       int64_t heads, int64_t head_dim, bool causal, const int32_t* key_lengths,
                       double dropout, const RngKey& rng, const T* probs, const T* dcontext, T* dq,
                       T* dk, T* dv) {
  const int64_t width = heads * head_dim;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const PhiloxStream stream(rng);
  const BlasOnCallingThread blas_guard;
  const bool parallel = batch * heads * tq * tk * head_dim >= kMinParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<T> grad(tq * tk);  // dP, then dS in place
    std::vector<T> factor;
    std::vector<T> dropped;
    if (dropout > 0.0) {
      factor.resize(tq * tk);
      dropped.resize(tq * tk);
    }
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < batch * heads; ++bh) {
      const Pair at = Locate(bh, tq, tk, heads, head_dim, key_lengths);
      const T* p = probs + at.probs_offset;
      const T* dctx = dcontext + at.q_offset;
      T* ds = grad.data();
      const T* weights = p;
      if (dropout > 0.0) {
        ApplyDropout(stream, p, at.probs_offset, tq, tk, at.keys, causal, dropout, factor.data(),
                     dropped.data());
        weights = dropped.data();
      }
      // dV = P_dropᵀ · dctx; padded keys get exactly zero.
      T* dv_pair = dv + at.kv_offset;
      Gemm(true, false, at.keys, head_dim, tq, T(1), weights, tk, dctx, width, T(0), dv_pair,
           width);
      for (int64_t j = at.keys; j < tk; ++j) {
        std::fill(dv_pair + j * width, dv_pair + j * width + head_dim, T(0));
      }
      // dP = dctx · Vᵀ, then back through the dropout mask.
      Gemm(false, true, tq, at.keys, head_dim, T(1), dctx, width, v + at.kv_offset, width, T(0), ds,
           tk);
      // Softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)); masked entries are set
      // to zero rather than computed, so they stay exactly zero.
      for (int64_t i = 0; i < tq; ++i) {
        const T* prow = p + i * tk;
        T* row = ds + i * tk;
        const int64_t visible = VisibleKeys(i, at.keys, causal);
        if (dropout > 0.0) {
          const T* frow = factor.data() + i * tk;
          for (int64_t j = 0; j < visible; ++j) row[j] *= frow[j];
        }
        double dot = 0.0;
        for (int64_t j = 0; j < visible; ++j) {
          dot += static_cast<double>(row[j]) * static_cast<double>(prow[j]);
        }
        for (int64_t j = 0; j < visible; ++j) {
          row[j] = static_cast<T>(static_cast<double>(prow[j]) * (row[j] - dot));
        }
        std::fill(row + visible, row + at.keys, T(0));
      }
      // dQ = dS · K / sqrt(Dh); dK = dSᵀ · Q / sqrt(Dh).
      Gemm(false, false, tq, head_dim, at.keys, scale, ds, tk, k + at.kv_offset, width, T(0),
           dq + at.q_offset, width);
      T* dk_pair = dk + at.kv_offset;
      Gemm(true, false, at.keys, head_dim, tq, scale, ds, tk, q + at.q_offset, width, T(0), dk_pair,
           width);
      for (int64_t j = at.keys; j < tk; ++j) {
        std::fill(dk_pair + j * width, dk_pair + j * width + head_dim, T(0));
      }
    }
  }
}

template void AttentionForward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, bool, const int32_t*, double,
                                      const RngKey&, float*, float*);
template void AttentionForward<double>(const double*, const double*, const double*, int64_t,
                                       int64_t, int64_t, int64_t, int64_t, bool, const int32_t*,
                                       double, const RngKey&, double*, double*);
template void AttentionBackward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                       int64_t, int64_t, int64_t, bool, const int32_t*, double,
                                       const RngKey&, const float*, const float*, float*, float*,
                                       float*);
template void AttentionBackward<double>(const double*, const double*, const double*, int64_t,
                                        int64_t, int64_t, int64_t, int64_t, bool, const int32_t*,
                                        double, const RngKey&, const double*, const double*,
                                        double*, double*, double*);

}  // namespace pipetrain::ops::cpu
