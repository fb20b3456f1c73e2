#include "tests/testing/grad_check.h"

#include <algorithm>
#include <cmath>

#include "core/philox.h"

namespace pipetrain::testing {

Tensor RandomTensor(const Shape& shape, uint64_t seed, double scale) {
  Tensor t = Tensor::Empty(shape, DType::kF64);
  PhiloxStream stream(RngKey{.seed = seed, .site = 977});
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * stream.Normal(i);
  return t;
}

Tensor NumericGradient(const std::function<double()>& loss, Tensor& x, double h) {
  Tensor g = Tensor::Zeros(x.shape(), DType::kF64);
  double* px = x.data<double>();
  double* pg = g.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double saved = px[i];
    px[i] = saved + h;
    const double up = loss();
    px[i] = saved - h;
    const double down = loss();
    px[i] = saved;
    pg[i] = (up - down) / (2 * h);
  }
  return g;
}

double RelativeError(const Tensor& analytic, const Tensor& numeric, double floor) {
  double max_diff = 0, max_ref = floor;
  for (int64_t i = 0; i < numeric.numel(); ++i) {
    max_diff = std::max(max_diff, std::abs(analytic.At(i) - numeric.At(i)));
    max_ref = std::max(max_ref, std::abs(numeric.At(i)));
  }
  return max_diff / max_ref;
}

double WeightedSum(const Tensor& y, const Tensor& w) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += y.At(i) * w.At(i);
  return s;
}

}  // namespace pipetrain::testing
