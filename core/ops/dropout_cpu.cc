// CPU dropout. The mask is a pure function of (rng, element index), so the
// loop can be split over threads in any way without changing the result.
#include <cstdint>

#include "core/philox.h"

namespace pipetrain::ops::cpu {

// Below this a parallel region costs more than the Philox draws it splits.
constexpr int64_t kMinParallelElements = int64_t{1} << 14;

template <typename T>
void DropoutApply(const T* in, T* out, int64_t n, double p, const RngKey& rng) {
  const PhiloxStream stream(rng);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    // The comparison is made in double so that every backend agrees on the
    // boundary: Uniform is a multiple of 2^-24, p is not rounded to float.
    const bool dropped = static_cast<double>(stream.Uniform(static_cast<uint64_t>(i))) < p;
    out[i] = dropped ? T(0) : in[i] * scale;
  }
}

template void DropoutApply<float>(const float*, float*, int64_t, double, const RngKey&);
template void DropoutApply<double>(const double*, double*, int64_t, double, const RngKey&);

}  // namespace pipetrain::ops::cpu
