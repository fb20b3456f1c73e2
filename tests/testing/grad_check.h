// Finite-difference gradient checking in fp64, shared by every op and layer test.
//
// The scalar under test is always L = Σ w ⊙ f(inputs) for a fixed random
// weighting w (so every output element matters). The analytic gradient of L
// comes from the op's backward with dy = w; the numeric one from central
// differences, (L(x + h) − L(x − h)) / 2h, element by element.
#ifndef PIPETRAIN_TESTS_TESTING_GRAD_CHECK_H_
#define PIPETRAIN_TESTS_TESTING_GRAD_CHECK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace pipetrain::testing {

// f64 tensor of `shape` with N(0, scale²) entries, deterministic in `seed`.
Tensor RandomTensor(const Shape& shape, uint64_t seed, double scale = 1.0);

// Central-difference gradient of `loss` with respect to every element of `x`
// (f64, modified in place and restored).
Tensor NumericGradient(const std::function<double()>& loss, Tensor& x, double h = 1e-5);

// max |a − n| / max(max |n|, floor): the error relative to the gradient's scale.
// The floor keeps an all-zero gradient from dividing by zero.
//
// A NaN or Inf in either tensor, or a different element count, is a test
// failure (reported here, naming the first bad element) and the result is NaN,
// so the caller's EXPECT_LT / EXPECT_GT on it fails too, with the caller's
// context. Without this, std::max would drop every NaN and an all-NaN gradient
// would measure as error 0.
double RelativeError(const Tensor& analytic, const Tensor& numeric, double floor = 1e-8);

// Σ w ⊙ y in double.
double WeightedSum(const Tensor& y, const Tensor& w);

// max |a − b| over elements. Shapes that differ, or a NaN or Inf in either
// tensor, fail the test and give NaN, as in RelativeError.
double MaxAbsDiff(const Tensor& a, const Tensor& b);
// a − b as f64.
Tensor Minus(const Tensor& a, const Tensor& b);
// Keeps a measured error in the XML report (--gtest_output=xml).
void RecordError(const std::string& name, double err);
bool IsInvalid(const absl::Status& s);

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_GRAD_CHECK_H_
