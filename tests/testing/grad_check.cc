#include "tests/testing/grad_check.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "core/philox.h"
#include "gtest/gtest.h"

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

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Fails the test, naming the first element where `a` or `b` is NaN or Inf;
// true when every element of both is finite. One failure per call, however
// many elements are bad, so the message stays readable (and a test of this
// check can expect exactly one).
bool AllFinite(const char* helper, const char* a_name, const Tensor& a, const char* b_name,
               const Tensor& b) {
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double va = a.At(i), vb = b.At(i);
    if (std::isfinite(va) && std::isfinite(vb)) continue;
    ADD_FAILURE() << helper << ": element " << i << " is not finite: " << a_name << "[" << i
                  << "] = " << va << ", " << b_name << "[" << i << "] = " << vb;
    return false;
  }
  return true;
}

}  // namespace

double RelativeError(const Tensor& analytic, const Tensor& numeric, double floor) {
  if (analytic.numel() != numeric.numel()) {
    ADD_FAILURE() << "RelativeError: analytic has " << analytic.numel() << " elements, numeric has "
                  << numeric.numel();
    return kNaN;
  }
  if (!AllFinite("RelativeError", "analytic", analytic, "numeric", numeric)) return kNaN;
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

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) {
    ADD_FAILURE() << "MaxAbsDiff: shapes differ: " << ShapeString(a.shape()) << " vs "
                  << ShapeString(b.shape());
    return kNaN;
  }
  if (!AllFinite("MaxAbsDiff", "a", a, "b", b)) return kNaN;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.At(i) - b.At(i)));
  return m;
}

Tensor Minus(const Tensor& a, const Tensor& b) {
  Tensor d = Tensor::Empty(a.shape(), DType::kF64);
  for (int64_t i = 0; i < a.numel(); ++i) d.data<double>()[i] = a.At(i) - b.At(i);
  return d;
}

void RecordError(const std::string& name, double err) {
  ::testing::Test::RecordProperty(name, absl::StrFormat("%.2e", err));
}

bool IsInvalid(const absl::Status& s) { return s.code() == absl::StatusCode::kInvalidArgument; }

}  // namespace pipetrain::testing
